/*
** cmd_verify.c -- `fieldsync-admin verify`: the central database and the
** last commit of its ledger agree.
**
** Every live record's canonical JSON (fs_replica_dump, the form the ledger
** stores) must equal its file TABLE/xx/ID.json, every conflict its file
** conflicts/ID.json, the ledger must hold no other file, and its
** high-water mark must be the end of the database's log.  Every
** difference is printed; the exit code is 1 if there is any.
*/
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "ledger.h"
#include "org.h"

typedef struct vctx {
	fs_replica *r;
	git_repository *repo;
	git_tree *tree;
	sqlite3_stmt *ids;
	char **seen;         /* paths the database has */
	size_t nseen, capseen;
	unsigned long diffs, records, conflicts;
	int oom;
} vctx;

static int add_seen(vctx *x, const char *path)
{
	if (x->nseen == x->capseen) {
		size_t cap = x->capseen ? x->capseen * 2 : 256;
		char **p = realloc(x->seen, cap * sizeof(*p));
		if (!p)
			return -1;
		x->seen = p;
		x->capseen = cap;
	}
	if (!(x->seen[x->nseen] = strdup(path)))
		return -1;
	x->nseen++;
	return 0;
}

/* Compares one database file content with the ledger's. */
static int check(vctx *x, const char *path, const char *json)
{
	git_tree_entry *te = NULL;
	git_blob *blob = NULL;
	size_t n = strlen(json);

	if (add_seen(x, path) < 0) {
		x->oom = 1;
		return -1;
	}
	if (!x->tree || git_tree_entry_bypath(&te, x->tree, path) < 0) {
		printf("missing from the ledger: %s\n  database: %s\n", path, json);
		x->diffs++;
		return 0;
	}
	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB ||
	    git_blob_lookup(&blob, x->repo, git_tree_entry_id(te)) < 0) {
		printf("unreadable in the ledger: %s: %s\n", path,
		       fs_ledger__git_msg());
		x->diffs++;
	} else if ((size_t)git_blob_rawsize(blob) != n ||
	           memcmp(git_blob_rawcontent(blob), json, n)) {
		printf("differs: %s\n  database: %s\n  ledger:   %.*s\n", path, json,
		       (int)git_blob_rawsize(blob),
		       (const char *)git_blob_rawcontent(blob));
		x->diffs++;
	}
	git_blob_free(blob);
	git_tree_entry_free(te);
	return 0;
}

static int on_record(const char *json, void *payload)
{
	vctx *x = payload;
	char path[200];
	int rc;

	sqlite3_reset(x->ids);
	sqlite3_bind_text(x->ids, 1, json, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(x->ids)) != SQLITE_ROW)
		return -1;
	x->records++;
	if (fs_ledger__path(path, sizeof(path),
	                    (const char *)sqlite3_column_text(x->ids, 0),
	                    (const char *)sqlite3_column_text(x->ids, 1)) < 0) {
		printf("cannot be in the ledger (bad id): %s\n", json);
		x->diffs++;
		return 0;
	}
	return check(x, path, json);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int on_file(const char *root, const git_tree_entry *te, void *payload)
{
	vctx *x = payload;
	char path[600], *key = path;

	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB)
		return 0;
	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(te));
	if (!bsearch(&key, x->seen, x->nseen, sizeof(*x->seen), str_cmp)) {
		printf("only in the ledger: %s\n", path);
		x->diffs++;
	}
	return 0;
}

int admin_cmd_verify(const char *dir)
{
	fs_replica *r = NULL;
	git_repository *repo = NULL;
	git_commit *head = NULL;
	sqlite3_stmt *st = NULL;
	vctx x;
	char path[1200], seq[64];
	int64_t lo = 0, hwm = 0, end = 0;
	git_oid id;
	size_t i;
	int rc = 1, grc, git_on = 0;

	memset(&x, 0, sizeof(x));
	if (admin_open_db(&r, dir, 0))
		return 1;
	if (git_libgit2_init() < 0)
		goto done;
	git_on = 1;
	snprintf(path, sizeof(path), "%s/" FS_LEDGER_DIR, dir);
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH |
	                            GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
		admin_fail("no readable ledger at %s: %s", path, fs_ledger__git_msg());
		goto done;
	}
	grc = git_reference_name_to_id(&id, repo, FS_LEDGER_BRANCH);
	if (grc < 0 && grc != GIT_ENOTFOUND) {
		admin_fail("ledger %s: %s", path, fs_ledger__git_msg());
		goto done;
	}
	if (grc == 0) {
		if (git_commit_lookup(&head, repo, &id) < 0 ||
		    git_commit_tree(&x.tree, head) < 0) {
			admin_fail("ledger %s is corrupt: %s", path, fs_ledger__git_msg());
			goto done;
		}
		if (fs_ledger__trailer(seq, sizeof(seq), git_commit_message(head),
		                       "Fieldsync-Seq") < 0 ||
		    fs_ledger__range(&lo, &hwm, seq) < 0) {
			admin_fail("ledger %s: the last commit has no Fieldsync-Seq "
			           "trailer%s", path, "");
			goto done;
		}
	}
	x.r = r;
	x.repo = repo;
	if (fs_replica__prepare(&st, r, "SELECT coalesce(max(seq), 0) FROM "
	                        "fs_log") < 0)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW)
		end = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	st = NULL;
	if (end != hwm) {
		printf("high-water mark: the ledger holds the log up to seq %lld, "
		       "the database's log ends at %lld\n", (long long)hwm,
		       (long long)end);
		x.diffs++;
	}
	if (sqlite3_prepare_v2(r->db, "SELECT json_extract(?1, '$.table'), "
	                       "json_extract(?1, '$.id')", -1, &x.ids,
	                       NULL) != SQLITE_OK)
		goto sqlfail;
	if (fs_replica__exec(r, "BEGIN", "reading the database") < 0)
		goto sqlfail;
	rc = fs_replica_dump(r, on_record, &x);
	if (rc == 0) {
		if (fs_replica__prepare(&st, r, "SELECT CAST(id AS TEXT) FROM "
		                        "fs_conflict ORDER BY id") < 0)
			rc = -1;
		while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
			char *json = NULL;
			const char *cid = (const char *)sqlite3_column_text(st, 0);
			char cpath[100];

			if (fs_ledger__conflict_json(&json, r, cid) < 0 || !json) {
				rc = -1;
				break;
			}
			snprintf(cpath, sizeof(cpath), "conflicts/%s.json", cid);
			x.conflicts++;
			rc = check(&x, cpath, json);
			free(json);
		}
		fs_replica__finish(r, st);
		st = NULL;
	}
	if (rc == 0 && x.tree) {
		/* The organisation, in ledgers that hold it (those started
		** before it was recorded hold it from its next change on). */
		git_tree_entry *te = NULL;
		char *depts = NULL, *users = NULL;
		if (git_tree_entry_bypath(&te, x.tree, FS_ORG_DEPTS) == 0) {
			git_tree_entry_free(te);
			if (fs_org__json(&depts, &users, r) < 0)
				rc = -1;
			else if (check(&x, FS_ORG_DEPTS, depts) < 0 ||
			         check(&x, FS_ORG_USERS, users) < 0)
				rc = -1;
			free(depts);
			free(users);
		}
	}
	fs_replica__exec(r, "COMMIT", "reading the database");
	if (rc != 0) {
		if (x.oom)
			admin_fail("out of memory%s%s", "", "");
		else
			admin_fail("reading the database: %s%s", fs_replica_errmsg(r), "");
		rc = 1;
		goto done;
	}
	if (x.nseen > 1)
		qsort(x.seen, x.nseen, sizeof(*x.seen), str_cmp);
	if (x.tree && git_tree_walk(x.tree, GIT_TREEWALK_PRE, on_file, &x) < 0) {
		admin_fail("reading the ledger: %s%s", fs_ledger__git_msg(), "");
		rc = 1;
		goto done;
	}
	if (x.diffs) {
		printf("%lu difference(s) between the database and the ledger\n",
		       x.diffs);
		rc = 1;
	} else {
		printf("database and ledger agree: %lu records, %lu conflicts, log "
		       "up to seq %lld\n", x.records, x.conflicts, (long long)hwm);
		rc = 0;
	}
	goto done;
sqlfail:
	rc = admin_fail("%s%s", fs_replica_errmsg(r), "");
done:
	fs_replica__finish(r, st);
	sqlite3_finalize(x.ids);
	for (i = 0; i < x.nseen; i++)
		free(x.seen[i]);
	free(x.seen);
	git_tree_free(x.tree);
	git_commit_free(head);
	git_repository_free(repo);
	if (git_on)
		git_libgit2_shutdown();
	fs_replica_close(r);
	return rc;
}
