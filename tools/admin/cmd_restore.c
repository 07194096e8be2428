/*
** cmd_restore.c -- `fieldsync-admin restore --ledger PATH --to NEWDIR
** [--as-of DATE|COMMIT]`: a working server directory rebuilt from a ledger
** alone; and `fieldsync-admin ledger init`, a new ledger for a server
** directory that has none.
**
** Restore (docs/ledger.md, "Restore"):
**  1. the target commit: the branch's last, a commit id, or the last
**     commit written at or before DATE (UTC);
**  2. a new server directory, as `init` makes it (a new company CA: the
**     ledger holds no keys nor devices -- enrol them again), with the
**     departments, users and scopes of the ledger's org/ files;
**  3. every record file of the target tree into the database (tables in
**     schema order, parents first), every conflict file into fs_conflict;
**  4. for every record a log entry 'I' (seq just above the ledger's
**     high-water mark, so every device pulls the restored state, whatever
**     its cursor) and its version (fs_clock), at the target's greatest HLC;
**  5. NEWDIR/ledger.git: a copy of the ledger, its branch at the target,
**     plus one commit saying what was restored, whose Fieldsync-Seq
**     covers the entries of step 4 -- the restored server's ledger and
**     database agree from the start.
*/
#include <dirent.h>
#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "json.h"
#include "ledger.h"
#include "org.h"

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) into *out. */
static int parse_date(time_t *out, const char *s)
{
	struct tm tm;
	int y, mo, d, h = 23, mi = 59, se = 59, n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	if (s[10]) {
		int m = 0;
		se = 0;
		if ((s[10] != 'T' && s[10] != ' ') ||
		    sscanf(s + 11, "%2d:%2d%n", &h, &mi, &m) != 2)
			return -1;
		s += 11 + m;
		if (*s == ':') {
			if (sscanf(s + 1, "%2d%n", &se, &m) != 1)
				return -1;
			s += 1 + m;
		}
		if (*s == 'Z')
			s++;
		if (*s)
			return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = timegm(&tm);
	return 0;
}

/* The commit to restore: branch head, a revision, or as of a date. */
static int find_target(git_commit **out, git_repository *repo,
                       const char *as_of)
{
	git_object *obj = NULL;
	git_revwalk *walk = NULL;
	git_oid id;
	time_t when;
	int rc;

	*out = NULL;
	if (!as_of) {
		if (git_reference_name_to_id(&id, repo, FS_LEDGER_BRANCH) < 0)
			return admin_fail("the ledger has no commit: %s%s",
			                  fs_ledger__git_msg(), "");
		if (git_commit_lookup(out, repo, &id) < 0)
			return admin_fail("the ledger is corrupt: %s%s",
			                  fs_ledger__git_msg(), "");
		return 0;
	}
	if (parse_date(&when, as_of) < 0) {
		if (git_revparse_single(&obj, repo, as_of) < 0 ||
		    git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT) < 0) {
			git_object_free(obj);
			return admin_fail("--as-of '%s' is neither a date (YYYY-MM-DD"
			                  "[THH:MM:SS]) nor a commit of the ledger: %s",
			                  as_of, fs_ledger__git_msg());
		}
		git_object_free(obj);
		return 0;
	}
	/* Newest first: the first commit the server wrote by then. */
	if (git_reference_name_to_id(&id, repo, FS_LEDGER_BRANCH) < 0 ||
	    git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL) < 0 ||
	    git_revwalk_push(walk, &id) < 0) {
		git_revwalk_free(walk);
		return admin_fail("reading the ledger: %s%s", fs_ledger__git_msg(),
		                  "");
	}
	while ((rc = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL;
		if (git_commit_lookup(&c, repo, &id) < 0)
			break;
		if (git_commit_time(c) <= (git_time_t)when) {
			*out = c;
			break;
		}
		git_commit_free(c);
	}
	git_revwalk_free(walk);
	if (!*out)
		return admin_fail("the ledger has no commit as of %s%s", as_of, "");
	return 0;
}

typedef struct rctx {
	fs_replica *r;
	git_repository *repo;
	int64_t seq;         /* last log seq written */
	int64_t hlc;
	unsigned long records, conflicts;
} rctx;

static int blob_text(char **out, git_repository *repo, const git_oid *id)
{
	git_blob *b = NULL;
	size_t n;

	*out = NULL;
	if (git_blob_lookup(&b, repo, id) < 0)
		return -1;
	n = (size_t)git_blob_rawsize(b);
	if ((*out = malloc(n + 1))) {
		memcpy(*out, git_blob_rawcontent(b), n);
		(*out)[n] = '\0';
	}
	git_blob_free(b);
	return *out ? 0 : -1;
}

/* The ledger's file holds the canonical dump form (what people type:
** 86.50, 13 for 13 %); the database and the wire hold stored forms (8650
** minor units, 1300 basis points).  Each field goes through the same
** conversion as typed input; the result is a JSON object of stored values,
** as a pushed creation carries it. */
static int stored_json(fs_buf *out, fs_replica *r, const fs_table *t,
                       const char *json)
{
	sqlite3_stmt *st = NULL;
	int rc, first = 1;

	if ((rc = fs_replica__prepare(&st, r,
	        "SELECT key, CASE WHEN type = 'text' THEN value ELSE ?1 -> "
	        "('$.\"' || key || '\"') END FROM json_each(?1) "
	        "WHERE type <> 'null'")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	fs_buf_clear(out);
	fs_buf_putc(out, '{');
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const fs_column *c = fs_schema__column(t, k);
		fs_value v;

		if (!c || !strcmp(k, "id") || !strcmp(k, "table"))
			continue;
		if (fs_replica__convert(&v, r, t, c,
		                        (const char *)sqlite3_column_text(st, 1)) < 0) {
			fs_replica__finish(r, st);
			return r->err.code;
		}
		if (!first)
			fs_buf_putc(out, ',');
		first = 0;
		fs_json__str(out, c->name);
		fs_buf_putc(out, ':');
		if (v.type == SQLITE_INTEGER)
			fs_buf_printf(out, "%lld", (long long)v.i);
		else if (v.type == SQLITE_TEXT)
			fs_json__str(out, v.s);
		else
			fs_buf_puts(out, "null");
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading a record file");
	fs_buf_putc(out, '}');
	if (out->failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	return 0;
}

/* One record file: the row, its log entry and its version. */
static int restore_record(rctx *x, const fs_table *t, const char *name,
                          const git_oid *blob)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	fs_buf val = FS_BUF_INIT;
	char rid[64], *json = NULL;
	size_t n = strlen(name);
	int rc;

	if (n < 6 || n - 5 >= sizeof(rid) || strcmp(name + n - 5, ".json"))
		return admin_fail("unexpected file %s in the ledger's %s tree",
		                  name, t->name), -1;
	memcpy(rid, name, n - 5);
	rid[n - 5] = '\0';
	if (blob_text(&json, x->repo, blob) < 0)
		return admin_fail("reading %s: %s", name, fs_ledger__git_msg()), -1;
	if ((rc = stored_json(&val, r, t, json)) < 0 ||
	    (rc = fs_replica__apply_insert(r, t, rid, val.ptr)) < 0)
		goto done;
	x->seq++;
	if ((rc = fs_replica__prepare(&st, r,
	        "INSERT INTO fs_log(seq, tbl, rid, op, col, val, hlc, device, "
	        "author) VALUES (?, ?, ?, 'I', NULL, ?, ?, '', "
	        "'fieldsync-admin restore')")) < 0)
		goto done;
	sqlite3_bind_int64(st, 1, x->seq);
	sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, val.ptr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, x->hlc);
	rc = fs_replica__step_done(r, st, "restoring the log");
	fs_replica__finish(r, st);
	st = NULL;
	if (rc < 0)
		goto done;
	if ((rc = fs_replica__prepare(&st, r,
	        "INSERT INTO fs_clock(tbl, rid, col, hlc, device, seq) "
	        "VALUES (?, ?, '', ?, '', ?)")) < 0)
		goto done;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, x->hlc);
	sqlite3_bind_int64(st, 4, x->seq);
	rc = fs_replica__step_done(r, st, "restoring a version");
	x->records++;
done:
	fs_replica__finish(r, st);
	if (rc < 0)
		admin_fail("restoring %s: %s", name, fs_replica_errmsg(r));
	free(json);
	fs_buf_free(&val);
	return rc;
}

static int restore_conflict(rctx *x, const git_oid *blob, const char *name)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	char *json = NULL;
	int rc;

	if (blob_text(&json, x->repo, blob) < 0)
		return admin_fail("reading conflicts/%s: %s", name,
		                  fs_ledger__git_msg()), -1;
#define JV(k) "CASE WHEN coalesce(json_type(?1, '$." k "'), 'null') = 'null' " \
              "THEN NULL ELSE json_quote(json_extract(?1, '$." k "')) END"
	rc = fs_replica__prepare(&st, r,
	        "INSERT INTO fs_conflict(id, tbl, rid, col, reason, winner_value, "
	        "winner_hlc, winner_device, winner_author, loser_value, loser_hlc, "
	        "loser_device, loser_author, created_at, resolved_at, resolved_by, "
	        "resolution) SELECT json_extract(?1, '$.id'), json_extract(?1, "
	        "'$.table'), json_extract(?1, '$.record'), json_extract(?1, "
	        "'$.field'), json_extract(?1, '$.reason'), " JV("winner_value")
	        ", json_extract(?1, '$.winner_hlc'), json_extract(?1, "
	        "'$.winner_device'), json_extract(?1, '$.winner_author'), "
	        JV("loser_value") ", json_extract(?1, '$.loser_hlc'), "
	        "json_extract(?1, '$.loser_device'), json_extract(?1, "
	        "'$.loser_author'), json_extract(?1, '$.created_at'), "
	        "json_extract(?1, '$.resolved_at'), json_extract(?1, "
	        "'$.resolved_by'), " JV("resolution"));
#undef JV
	if (rc == 0) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(r, st, "restoring a conflict");
	}
	fs_replica__finish(r, st);
	free(json);
	if (rc < 0)
		return admin_fail("restoring conflicts/%s: %s", name,
		                  fs_replica_errmsg(r)), -1;
	x->conflicts++;
	return 0;
}

/* Every file of subtree (TABLE or conflicts, two levels or one). */
static int restore_tree(rctx *x, const fs_table *t, git_tree *tree)
{
	size_t i, j, n = git_tree_entrycount(tree);

	for (i = 0; i < n; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		git_tree *shard = NULL;

		if (!t) {
			if (git_tree_entry_type(te) == GIT_OBJECT_BLOB &&
			    restore_conflict(x, git_tree_entry_id(te),
			                     git_tree_entry_name(te)) < 0)
				return -1;
			continue;
		}
		if (git_tree_entry_type(te) != GIT_OBJECT_TREE)
			continue;
		if (git_tree_lookup(&shard, x->repo, git_tree_entry_id(te)) < 0)
			return admin_fail("reading %s: %s", t->name,
			                  fs_ledger__git_msg()), -1;
		for (j = 0; j < git_tree_entrycount(shard); j++) {
			const git_tree_entry *f = git_tree_entry_byindex(shard, j);
			if (git_tree_entry_type(f) != GIT_OBJECT_BLOB)
				continue;
			if (restore_record(x, t, git_tree_entry_name(f),
			                   git_tree_entry_id(f)) < 0) {
				git_tree_free(shard);
				return -1;
			}
		}
		git_tree_free(shard);
	}
	return 0;
}

/* Copies every file under src into dst (made as needed).  A plain copy
** of the object store: git_clone would do, but libgit2 1.5's clone leaks
** pcre2 match data (seen by LeakSanitizer). */
static int copy_dir(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return admin_fail("cannot read %s: %s", src, strerror(errno));
	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		closedir(d);
		return admin_fail("cannot create %s: %s", dst, strerror(errno));
	}
	while (rc == 0 && (de = readdir(d))) {
		char from[1200], to[1200];
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", dst, de->d_name);
		if (stat(from, &sb) < 0) {
			rc = admin_fail("cannot read %s: %s", from, strerror(errno));
		} else if (S_ISDIR(sb.st_mode)) {
			rc = copy_dir(from, to);
		} else if (S_ISREG(sb.st_mode)) {
			FILE *in = fopen(from, "rb"), *out = NULL;
			char buf[65536];
			size_t n;

			if (!in || !(out = fopen(to, "wb")))
				rc = admin_fail("cannot copy %s: %s", from, strerror(errno));
			while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
				if (fwrite(buf, 1, n, out) != n)
					rc = admin_fail("cannot write %s: %s", to,
					                strerror(errno));
			if (rc == 0 && in && ferror(in))
				rc = admin_fail("cannot read %s: %s", from, strerror(errno));
			if (in)
				fclose(in);
			if (out && fclose(out) != 0 && rc == 0)
				rc = admin_fail("cannot write %s: %s", to, strerror(errno));
		}
	}
	closedir(d);
	return rc;
}

/* The restored directory's ledger: the source's commits, the branch at
** the target, and the restore commit on top. */
static int copy_ledger(git_repository *source, const char *dir,
                       git_commit *target,
                       int64_t lo, int64_t hi, int64_t hlc, const char *as_of)
{
	git_repository *repo = NULL;
	git_repository_init_options io;
	git_reference *ref = NULL;
	git_commit *parent = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	char path[1200], from[1200], to[1300], cid[GIT_OID_HEXSZ + 1], msg[1500];
	git_oid id;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/" FS_LEDGER_DIR, dir);
	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
	           GIT_REPOSITORY_INIT_NO_REINIT;
	io.initial_head = "main";
	if (git_repository_init_ext(&repo, path, &io) < 0) {
		admin_fail("creating %s: %s", path, fs_ledger__git_msg());
		goto done;
	}
	snprintf(from, sizeof(from), "%s/objects", git_repository_path(source));
	snprintf(to, sizeof(to), "%s/objects", path);
	if (copy_dir(from, to) < 0)
		goto done;
	git_repository_free(repo);   /* reopen: it sees the copied packs */
	repo = NULL;
	if (git_repository_open_bare(&repo, path) < 0) {
		admin_fail("opening %s: %s", path, fs_ledger__git_msg());
		goto done;
	}
	git_oid_tostr(cid, sizeof(cid), git_commit_id(target));
	if (git_reference_create(&ref, repo, FS_LEDGER_BRANCH,
	                         git_commit_id(target), 1, "restore") < 0 ||
	    git_repository_set_head(repo, FS_LEDGER_BRANCH) < 0 ||
	    git_commit_lookup(&parent, repo, git_commit_id(target)) < 0 ||
	    git_commit_tree(&tree, parent) < 0 ||
	    git_signature_now(&sig, "fieldsync-admin",
	                      "fieldsync-admin@server.fieldsync") < 0) {
		admin_fail("setting up the restored ledger: %s%s",
		           fs_ledger__git_msg(), "");
		goto done;
	}
	snprintf(msg, sizeof(msg),
	         "Restore: a new server directory from ledger commit %.12s\n\n"
	         "The database of this server was rebuilt from the ledger%s%s.\n"
	         "Every record was logged again as a creation (seq %lld..%lld) so "
	         "that every device pulls the restored state.\n\n"
	         "Fieldsync-Restored-From: %s\n"
	         "Fieldsync-Device: -\nFieldsync-User: -\n"
	         "Fieldsync-HLC: %lld..%lld\nFieldsync-Seq: %lld..%lld\n", cid,
	         as_of ? " as of " : "", as_of ? as_of : "", (long long)lo,
	         (long long)hi, cid, (long long)hlc, (long long)hlc,
	         (long long)lo, (long long)hi);
	if (git_commit_create(&id, repo, FS_LEDGER_BRANCH, sig, sig, "UTF-8", msg,
	                      tree, 1, (const git_commit **)&parent) < 0) {
		admin_fail("writing the restore commit: %s%s", fs_ledger__git_msg(),
		           "");
		goto done;
	}
	rc = 0;
done:
	git_signature_free(sig);
	git_tree_free(tree);
	git_commit_free(parent);
	git_reference_free(ref);
	git_repository_free(repo);
	return rc;
}

int admin_cmd_restore(int argc, char **argv)
{
	const char *src = admin_opt(argc, argv, "--ledger");
	const char *to = admin_opt(argc, argv, "--to");
	const char *as_of = admin_opt(argc, argv, "--as-of");
	git_repository *repo = NULL;
	git_commit *target = NULL;
	git_tree *root = NULL;
	fs_replica *r = NULL;
	sqlite3_stmt *st = NULL;
	rctx x;
	char trailer[100], cid[GIT_OID_HEXSZ + 1];
	int64_t lo, hwm, hlo, hhi;
	size_t i;
	int rc = 1, git_on = 0, in_tx = 0, ndepts = 0, nusers = 0;
	char *init_argv[1] = { NULL };

	memset(&x, 0, sizeof(x));
	if (!src || !to)
		return admin_usage("restore --ledger PATH --to NEWDIR "
		                   "[--as-of DATE|COMMIT]%s", "");
	if (git_libgit2_init() < 0)
		return admin_fail("libgit2 does not initialise%s%s", "", "");
	git_on = 1;
	if (git_repository_open_ext(&repo, src, GIT_REPOSITORY_OPEN_NO_SEARCH |
	                            GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
		admin_fail("no readable ledger at %s: %s", src, fs_ledger__git_msg());
		goto done;
	}
	if (find_target(&target, repo, as_of))
		goto done;
	git_oid_tostr(cid, sizeof(cid), git_commit_id(target));
	if (fs_ledger__trailer(trailer, sizeof(trailer),
	                       git_commit_message(target), "Fieldsync-Seq") < 0 ||
	    fs_ledger__range(&lo, &hwm, trailer) < 0 ||
	    fs_ledger__trailer(trailer, sizeof(trailer),
	                       git_commit_message(target), "Fieldsync-HLC") < 0 ||
	    fs_ledger__range(&hlo, &hhi, trailer) < 0) {
		admin_fail("commit %s of %s is not a Fieldsync ledger commit (no "
		           "Fieldsync-Seq or Fieldsync-HLC trailer)", cid, src);
		goto done;
	}
	if (git_commit_tree(&root, target) < 0) {
		admin_fail("the ledger is corrupt: %s%s", fs_ledger__git_msg(), "");
		goto done;
	}
	if (admin_init_dir(to, 0, init_argv, 0))
		goto done;
	if (admin_open_db(&r, to, 0))
		goto done;
	x.r = r;
	x.repo = repo;
	x.seq = hwm;
	x.hlc = hhi;
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "restoring") < 0)
		goto sqlfail;
	in_tx = 1;
	/* Parents first, as the schema lists the tables. */
	for (i = 0; i < r->schema.ntables; i++) {
		const fs_table *t = &r->schema.tables[i];
		git_tree_entry *te = NULL;
		git_tree *sub = NULL;

		if (git_tree_entry_bypath(&te, root, t->name) < 0)
			continue;
		rc = git_tree_lookup(&sub, repo, git_tree_entry_id(te));
		git_tree_entry_free(te);
		if (rc < 0) {
			admin_fail("reading %s: %s", t->name, fs_ledger__git_msg());
			rc = 1;
			goto done;
		}
		rc = restore_tree(&x, t, sub);
		git_tree_free(sub);
		if (rc < 0) {
			rc = 1;
			goto done;
		}
	}
	{
		git_tree_entry *te = NULL;
		git_tree *sub = NULL;
		if (git_tree_entry_bypath(&te, root, "conflicts") == 0) {
			rc = git_tree_lookup(&sub, repo, git_tree_entry_id(te));
			git_tree_entry_free(te);
			if (rc < 0 || restore_tree(&x, NULL, sub) < 0) {
				git_tree_free(sub);
				rc = 1;
				goto done;
			}
			git_tree_free(sub);
		}
	}
	/* The organisation: departments, users, their scopes. */
	{
		git_tree_entry *de = NULL, *ue = NULL;
		char *depts = NULL, *users = NULL;
		if (git_tree_entry_bypath(&de, root, FS_ORG_DEPTS) == 0 &&
		    git_tree_entry_bypath(&ue, root, FS_ORG_USERS) == 0) {
			if (blob_text(&depts, repo, git_tree_entry_id(de)) < 0 ||
			    blob_text(&users, repo, git_tree_entry_id(ue)) < 0)
				rc = admin_fail("reading the organisation: %s%s",
				                fs_ledger__git_msg(), "");
			else if (fs_org__restore(r, depts, users, &ndepts,
			                         &nusers) < 0)
				rc = admin_fail("restoring the organisation: %s%s",
				                fs_replica_errmsg(r), "");
			else
				rc = 0;
		} else {
			rc = 0;
		}
		git_tree_entry_free(de);
		git_tree_entry_free(ue);
		free(depts);
		free(users);
		if (rc) {
			rc = 1;
			goto done;
		}
	}
	if (x.records == 0 && hwm > 0) {
		/* Nothing live: the log must still continue after hwm, or devices
		** whose cursor is there would miss what comes next.  A marker row
		** at hwm: an update of no record, which pulls never send. */
		if (fs_replica__prepare(&st, r,
		        "INSERT INTO fs_log(seq, tbl, rid, op, col, val, hlc, device, "
		        "author) VALUES (?, 'fs_ledger', 'restore', 'U', 'restored', "
		        "json_quote(?), ?, '', 'fieldsync-admin restore')") < 0)
			goto sqlfail;
		sqlite3_bind_int64(st, 1, hwm);
		sqlite3_bind_text(st, 2, cid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, hhi);
		if (fs_replica__step_done(r, st, "restoring the log") < 0)
			goto sqlfail;
		fs_replica__finish(r, st);
		st = NULL;
	}
	if (fs_replica__meta_hlc(r, hhi, "restoring the clock") < 0)
		goto sqlfail;
	if (fs_replica__exec(r, "COMMIT", "restoring") < 0)
		goto sqlfail;
	in_tx = 0;
	if (copy_ledger(repo, to, target, x.records ? hwm + 1 : hwm, x.seq, hhi,
	                as_of) < 0) {
		rc = 1;
		goto done;
	}
	printf("restored %s from ledger commit %.12s (log up to seq %lld): %lu "
	       "records, %lu conflicts, %d departments, %d users.\nThe directory "
	       "has a new company CA: enrol the devices again%s (docs/ledger.md)."
	       "\n", to, cid, (long long)hwm, x.records, x.conflicts, ndepts,
	       nusers, nusers ? "" : ", after adding the users");
	rc = 0;
	goto done;
sqlfail:
	rc = admin_fail("%s%s", fs_replica_errmsg(r), "");
done:
	fs_replica__finish(r, st);
	if (in_tx)
		fs_replica__exec(r, "ROLLBACK", "restoring");
	fs_replica_close(r);
	git_tree_free(root);
	git_commit_free(target);
	git_repository_free(repo);
	if (git_on)
		git_libgit2_shutdown();
	return rc;
}

int admin_cmd_ledger(const char *dir, int argc, char **argv)
{
	fs_ledger_options lo = FS_LEDGER_OPTIONS_INIT;
	fs_ledger *l = NULL;
	fs_replica *r = NULL;
	char path[1200], db[1200];
	fs_err e;
	int n = 0;

	if (argc != 1 || strcmp(argv[0], "init"))
		return admin_usage("ledger init%s", "");
	if (admin_open_db(&r, dir, 0))
		return 1;
	fs_replica_close(r);
	snprintf(path, sizeof(path), "%s/" FS_LEDGER_DIR, dir);
	snprintf(db, sizeof(db), "%s/server.db", dir);
	if (fs_ledger_open(&l, path, db, &lo, &e) == 0) {
		fs_ledger_free(l);
		return admin_fail("%s already has a ledger%s", path, "");
	}
	if (e.code != FS_ENOTFOUND)
		return admin_fail("%s (not replacing it)%s", e.msg, "");
	lo.create = 1;
	if (fs_ledger_open(&l, path, db, &lo, &e) < 0 ||
	    fs_ledger_catch_up(l, &n, &e) < 0) {
		fs_ledger_free(l);
		return admin_fail("%s%s", e.msg, "");
	}
	printf("ledger %s started: %d commit(s), log up to seq %lld (the current "
	       "state of every record; the history before it is not known)\n",
	       path, n, (long long)fs_ledger_mark(l));
	fs_ledger_free(l);
	return 0;
}
