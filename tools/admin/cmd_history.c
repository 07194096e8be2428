/*
** cmd_history.c -- `fieldsync-admin history TABLE ID [--json]`: every
** version of one record, newest first, read from the ledger.
**
** Walks the ledger's branch from its last commit; a commit whose file for
** the record differs from its parent's is a version: created (no file
** before), updated, or deleted (no file after).  Its author is the rep,
** the Fieldsync-Device trailer the device, the Fieldsync-HLC trailer the
** time of the change; the fields that changed come from comparing the two
** JSON objects (SQLite's json_each does the parsing; values are shown as
** the file has them, 50000.00 stays 50000.00).
*/
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "json.h"
#include "ledger.h"
#include "value.h"

/* The content of path in tree, or NULL (and *oid zeroed) if absent. */
static int file_at(git_blob **out, git_oid *oid, git_repository *repo,
                   git_tree *tree, const char *path)
{
	git_tree_entry *te = NULL;
	int rc = 0;

	*out = NULL;
	memset(oid, 0, sizeof(*oid));
	if (!tree || git_tree_entry_bypath(&te, tree, path) < 0)
		return 0;
	git_oid_cpy(oid, git_tree_entry_id(te));
	if (git_blob_lookup(out, repo, oid) < 0)
		rc = -1;
	git_tree_entry_free(te);
	return rc;
}

static char *blob_text(git_blob *b)
{
	size_t n;
	char *s;

	if (!b)
		return NULL;
	n = (size_t)git_blob_rawsize(b);
	if (!(s = malloc(n + 1)))
		return NULL;
	memcpy(s, git_blob_rawcontent(b), n);
	s[n] = '\0';
	return s;
}

int admin_cmd_history(const char *dir, int argc, char **argv)
{
	int json = admin_has_flag(argc, argv, "--json");
	const char *tname = NULL, *rid = NULL;
	const fs_table *t;
	fs_replica *r = NULL;
	git_repository *repo = NULL;
	git_revwalk *walk = NULL;
	sqlite3_stmt *diff = NULL;
	fs_buf out = FS_BUF_INIT;
	char path[200], repo_path[1200];
	git_oid id;
	unsigned long versions = 0;
	int i, rc = 1, git_on = 0, grc;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (!tname)
			tname = argv[i];
		else if (!rid)
			rid = argv[i];
		else
			return admin_usage("history TABLE ID [--json]: unexpected '%s'",
			                   argv[i]);
	}
	if (!tname || !rid)
		return admin_usage("history TABLE ID [--json]%s", "");
	if (admin_open_db(&r, dir, 0))
		return 1;
	if (!(t = fs_schema__table(&r->schema, tname))) {
		rc = admin_fail("no table or entity '%s'%s", tname, "");
		goto done;
	}
	if (fs_ledger__path(path, sizeof(path), t->name, rid) < 0) {
		rc = admin_fail("'%s' is not a record id%s", rid, "");
		goto done;
	}
	if (git_libgit2_init() < 0)
		goto done;
	git_on = 1;
	snprintf(repo_path, sizeof(repo_path), "%s/" FS_LEDGER_DIR, dir);
	if (git_repository_open_ext(&repo, repo_path,
	                            GIT_REPOSITORY_OPEN_NO_SEARCH |
	                            GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
		admin_fail("no readable ledger at %s: %s", repo_path,
		           fs_ledger__git_msg());
		goto done;
	}
	/* old and new JSON objects in, the changed fields out. */
	if (sqlite3_prepare_v2(r->db,
	        "WITH o(k, v) AS (SELECT key, ?1 -> ('$.\"' || key || '\"') "
	        "FROM json_each(coalesce(?1, '{}'))), n(k, v) AS (SELECT key, "
	        "?2 -> ('$.\"' || key || '\"') FROM json_each(coalesce(?2, "
	        "'{}'))), "
	        "ks(k) AS (SELECT k FROM o UNION SELECT k FROM n) "
	        "SELECT k, (SELECT v FROM o WHERE o.k = ks.k), "
	        "(SELECT v FROM n WHERE n.k = ks.k) FROM ks "
	        "WHERE k NOT IN ('id', 'table') AND (SELECT v FROM o WHERE "
	        "o.k = ks.k) IS NOT (SELECT v FROM n WHERE n.k = ks.k) "
	        "ORDER BY k", -1, &diff, NULL) != SQLITE_OK) {
		admin_fail("%s%s", sqlite3_errmsg(r->db), "");
		goto done;
	}
	grc = git_reference_name_to_id(&id, repo, FS_LEDGER_BRANCH);
	if (grc == GIT_ENOTFOUND) {
		rc = admin_fail("the ledger is empty: no history of %s %s", t->noun,
		                rid);
		goto done;
	}
	if (grc < 0 || git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL) < 0 ||
	    git_revwalk_push(walk, &id) < 0) {
		admin_fail("reading the ledger: %s%s", fs_ledger__git_msg(), "");
		goto done;
	}
	if (json)
		fs_buf_putc(&out, '[');
	while ((grc = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL, *p = NULL;
		git_tree *ct = NULL, *pt = NULL;
		git_blob *nb = NULL, *ob = NULL;
		git_oid noid, ooid;
		char *ntext = NULL, *otext = NULL, dev[80], hlc[64], when[24];
		const char *action;
		int64_t hlo = 0, hhi = 0;
		int bad = 0, sqlrc;

		if (git_commit_lookup(&c, repo, &id) < 0 ||
		    git_commit_tree(&ct, c) < 0 ||
		    (git_commit_parentcount(c) > 0 &&
		     (git_commit_parent(&p, c, 0) < 0 ||
		      git_commit_tree(&pt, p) < 0)) ||
		    file_at(&nb, &noid, repo, ct, path) < 0 ||
		    file_at(&ob, &ooid, repo, pt, path) < 0)
			bad = 1;
		if (bad || git_oid_equal(&noid, &ooid))
			goto next;
		ntext = blob_text(nb);
		otext = blob_text(ob);
		if ((nb && !ntext) || (ob && !otext)) {
			bad = 2;
			goto next;
		}
		action = !otext ? "created" : !ntext ? "deleted" : "updated";
		if (fs_ledger__trailer(dev, sizeof(dev), git_commit_message(c),
		                       "Fieldsync-Device") < 0 || !strcmp(dev, "-"))
			snprintf(dev, sizeof(dev), "(server)");
		if (fs_ledger__trailer(hlc, sizeof(hlc), git_commit_message(c),
		                       "Fieldsync-HLC") == 0 &&
		    fs_ledger__range(&hlo, &hhi, hlc) == 0 && hhi > 0)
			fs_value__format_time(when, FS_HLC_MS((uint64_t)hhi));
		else
			fs_value__format_time(when,
			                      (uint64_t)git_commit_time(c) * 1000);
		if (json) {
			char cid[GIT_OID_HEXSZ + 1];
			git_oid_tostr(cid, sizeof(cid), &id);
			fs_buf_printf(&out, "%s\n{\"commit\":\"%s\",\"time\":\"%s\","
			              "\"action\":\"%s\",\"author\":", versions ? "," : "",
			              cid, when, action);
			fs_json__str(&out, git_commit_author(c)->name);
			fs_buf_puts(&out, ",\"device\":");
			fs_json__str(&out, dev);
			fs_buf_puts(&out, ",\"changes\":[");
		} else {
			char cid[9];
			git_oid_tostr(cid, sizeof(cid), &id);
			fs_buf_printf(&out, "%s%s  %s by %s on device %s  (commit %s)\n",
			              versions ? "\n" : "", when, action,
			              git_commit_author(c)->name, dev, cid);
		}
		sqlite3_reset(diff);
		sqlite3_bind_text(diff, 1, otext, -1, SQLITE_STATIC);
		sqlite3_bind_text(diff, 2, ntext, -1, SQLITE_STATIC);
		{
			int first = 1;
			while ((sqlrc = sqlite3_step(diff)) == SQLITE_ROW) {
				const char *k = (const char *)sqlite3_column_text(diff, 0);
				const char *o = (const char *)sqlite3_column_text(diff, 1);
				const char *n = (const char *)sqlite3_column_text(diff, 2);
				if (json) {
					fs_buf_printf(&out, "%s{\"field\":", first ? "" : ",");
					fs_json__str(&out, k);
					fs_buf_printf(&out, ",\"old\":%s,\"new\":%s}",
					              o ? o : "null", n ? n : "null");
				} else if (!o) {
					fs_buf_printf(&out, "    %s: %s\n", k, n);
				} else {
					fs_buf_printf(&out, "    %s: %s -> %s\n", k, o,
					              n ? n : "(none)");
				}
				first = 0;
			}
			if (sqlrc != SQLITE_DONE)
				bad = 3;
		}
		if (json)
			fs_buf_puts(&out, "]}");
		versions++;
next:
		free(ntext);
		free(otext);
		git_blob_free(nb);
		git_blob_free(ob);
		git_tree_free(ct);
		git_tree_free(pt);
		git_commit_free(p);
		git_commit_free(c);
		if (bad) {
			admin_fail("reading the ledger: %s%s", bad == 3
			           ? sqlite3_errmsg(r->db) : fs_ledger__git_msg(), "");
			goto done;
		}
	}
	if (grc != GIT_ITEROVER) {
		admin_fail("reading the ledger: %s%s", fs_ledger__git_msg(), "");
		goto done;
	}
	if (json)
		fs_buf_puts(&out, versions ? "\n]\n" : "]\n");
	if (out.failed) {
		admin_fail("out of memory%s%s", "", "");
		goto done;
	}
	if (!versions && !json) {
		rc = admin_fail("the ledger has no version of %s %s", t->noun, rid);
		goto done;
	}
	fputs(out.ptr ? out.ptr : "", stdout);
	rc = 0;
done:
	fs_buf_free(&out);
	sqlite3_finalize(diff);
	git_revwalk_free(walk);
	git_repository_free(repo);
	if (git_on)
		git_libgit2_shutdown();
	fs_replica_close(r);
	return rc;
}
