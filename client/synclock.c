/*
** synclock.c -- one sync at a time per replica.
**
** Two syncs of one replica at once (an app and its sync service, two CLI
** calls) would each push the same pending rows; the first ACK deletes
** them, and new changes then reuse their positions (fs_change.seq is the
** rowid), so the second ACK would delete a change it never sent (found by
** a reviewer with a held connection).  A sync therefore holds an
** exclusive flock() on the file DB-sync beside the replica (like SQLite's
** -wal and -shm) from before it reads the log until it is done.  The lock
** goes with the process: a sync killed at any line leaves none behind.
** flock() locks belong to the open file, so two handles of one process
** exclude each other too.  A replica without a file (":memory:") has no
** lock and no other process.
** The file gets the replica's permissions and, made by root, its owner
** (as SQLite does for -wal and -shm), so that a sync run once by another
** user does not lock the app's own user out; a lock file that cannot be
** written is opened read-only, which flock() allows.  A file system
** without flock() (some network shares) syncs without the lock, as
** before it existed.
*/
#define _DEFAULT_SOURCE

#include "replica_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_replica__sync_lock(fs_replica *r, int *fd)
{
	const char *db = sqlite3_db_filename(r->db, "main");
	struct stat st;
	char *path;
	size_t n;
	int known;

	*fd = -1;
	if (!db || !*db)
		return 0;
	n = strlen(db) + sizeof("-sync");
	if (!(path = malloc(n)))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	snprintf(path, n, "%s-sync", db);
	known = stat(db, &st) == 0;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC,
	           known ? st.st_mode & 0666 : 0600);
	/* Made by root: the replica owner's (best effort, as SQLite's
	** robust_open). */
	if (*fd >= 0 && known && geteuid() == 0 &&
	    fchown(*fd, st.st_uid, st.st_gid) < 0)
		errno = 0;
	if (*fd < 0 && (errno == EACCES || errno == EROFS))
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		fs_err__set(&r->err, FS_ERROR, "cannot open %s: %s", path,
		            strerror(errno));
		free(path);
		return r->err.code;
	}
	free(path);
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		if (err == EINTR)
			continue;
		close(*fd);
		*fd = -1;
		if (err == ENOTSUP || err == ENOLCK || err == EINVAL)
			return 0;   /* no flock() here: no lock */
		if (err == EWOULDBLOCK)
			return fs_err__set(&r->err, FS_EBUSY, "another sync of this "
			                   "replica is running; try again when it "
			                   "is done");
		return fs_err__set(&r->err, FS_ERROR, "cannot lock the replica "
		                   "for a sync: %s", strerror(err));
	}
	return 0;
}

void fs_replica__sync_unlock(int fd)
{
	if (fd >= 0)
		close(fd);   /* releases the lock */
}
