/*
** ledger.h -- the server's ledger: every accepted change, as commits of a
** bare git repository (DIR/ledger.git) that stock git can clone and log.
**
** The tree of a commit holds one file per live record, in the canonical
** JSON of `fieldsync dump`, at TABLE/xx/ID.json (xx = the last two hex
** digits of the id: UUIDv7 ids share their leading time bits, their tail
** is random), and one file per recorded conflict at conflicts/ID.json.
** Each commit covers a range of the central log (fs_log) written by one
** device, and says so in its trailer; the last commit's trailer is the
** ledger's high-water mark.  docs/ledger.md is the full description.
**
** Life of a server's ledger:
**   fs_ledger_open()      open (or create) the repository and a database
**                         connection; reads the high-water mark
**   fs_ledger_catch_up()  commit every log row above the mark (startup,
**                         shutdown: no other writer runs)
**   fs_ledger_start()     start the writer thread
**   fs_ledger_capture()   after each pushed batch commits, with the
**                         server's write lock still held: read the rows of
**                         the batch and the records they left, queue them
**   fs_ledger_stop()      write what is queued, stop the thread
**   fs_ledger_free()
** Capturing under the write lock is what makes every commit exact: the
** records are read in the state the batch left them, before any other
** batch can change them.  The git work happens on the writer thread.
*/
#ifndef FS_LEDGER_H
#define FS_LEDGER_H

#include <stdint.h>

#include "err.h"
#include "fieldsync.h"

typedef struct fs_ledger fs_ledger;

#define FS_LEDGER_DIR "ledger.git"
#define FS_LEDGER_BRANCH "refs/heads/main"

typedef struct fs_ledger_options {
	unsigned int version;
	int create;          /* create the repository if it does not exist */
	int delay_ms;        /* test hook: the writer waits this long before
	                        each commit (a window to kill the server in) */
	void (*log)(void *payload, const char *msg);  /* writer messages */
	void *log_payload;
} fs_ledger_options;

#define FS_LEDGER_OPTIONS_VERSION 1
#define FS_LEDGER_OPTIONS_INIT { FS_LEDGER_OPTIONS_VERSION, 0, 0, NULL, NULL }

/* Opens the ledger at repo_path for the central database db_path.
** FS_ENOTFOUND if the repository does not exist (and opts->create is 0),
** FS_ECORRUPT if it is not a readable ledger or is ahead of the database.
** On failure *out is NULL and e says why. */
int fs_ledger_open(fs_ledger **out, const char *repo_path,
                   const char *db_path, const fs_ledger_options *opts,
                   fs_err *e);

/* The last fs_log seq the ledger holds (0 for an empty ledger). */
int64_t fs_ledger_mark(fs_ledger *l);

/* Commits every log row above the mark, in commits of at most a few
** thousand rows; *written (may be NULL) receives the number of commits.
** Only while nothing else writes the database.  0 or <0 (e set). */
int fs_ledger_catch_up(fs_ledger *l, int *written, fs_err *e);

/* Starts the writer thread.  0 or <0. */
int fs_ledger_start(fs_ledger *l, fs_err *e);

/* Queues the log rows above the last capture, as one commit by device
** (user) naming the pushed batch (its id).  The caller holds the lock
** that serialises database writes.
** Blocks while the queue is over its memory cap (the writer is behind).
** A failure is logged and leaves the rows to the next catch-up. */
void fs_ledger_capture(fs_ledger *l, const char *device, const char *user,
                       const char *batch);

/* Writes everything queued, then stops the writer thread. */
void fs_ledger_stop(fs_ledger *l);

void fs_ledger_free(fs_ledger *l);

/* ------------------------------------------------ helpers for the tools */

/* "TABLE/xx/ID.json" into out; FS_EINVALID if table or id hold anything
** but [A-Za-z0-9_-] or are too long. */
int fs_ledger__path(char *out, size_t size, const char *table,
                    const char *id);

/* The value of trailer key ("Fieldsync-Seq") in a commit message, into
** out; FS_ENOTFOUND if absent. */
int fs_ledger__trailer(char *out, size_t size, const char *message,
                       const char *key);

/* Parses "A..B" into *lo, *hi.  0 or FS_ECORRUPT. */
int fs_ledger__range(int64_t *lo, int64_t *hi, const char *text);

/* The file content of conflict id (keys sorted, SQLite's JSON); *out
** NULL if there is no such conflict.  0 or <0 (r's error set). */
int fs_ledger__conflict_json(char **out, fs_replica *r, const char *id);

/* The message of the last libgit2 error, never NULL. */
const char *fs_ledger__git_msg(void);

#endif
