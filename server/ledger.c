/*
** ledger.c -- writing the server's change log into a bare git repository.
**
** See ledger.h for the life of a ledger and docs/ledger.md for the layout
** and the commit format.  Two sides:
**  - capture (connection threads, under the server's write lock, right
**    after a batch committed): read the log rows above the last capture
**    and the current canonical JSON of every record and conflict they
**    touched, into an item on a queue.  The JSON comes from
**    fs_replica_dump() itself (the one canonical serializer): this
**    module's database connection shadows every record table with a TEMP
**    VIEW that keeps only the records listed in temp.fs_ledger_want, so
**    the dump of that connection is the dump of just those records.
**  - writing (one writer thread, or catch-up when nothing else runs):
**    blobs for the files, git_tree_create_updated() on the previous tree
**    (only the trees on the changed paths are rewritten), one commit per
**    item -- consecutive items of one device are merged into one commit
**    when the writer is behind -- and the branch moved to it.
** The high-water mark is the Fieldsync-Seq trailer of the branch's last
** commit: commit and mark move together, atomically, with the ref.
*/
#include "ledger.h"

#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../client/replica_int.h"
#include "ledger_pack.h"
#include "hlc.h"
#include "org.h"
#include "value.h"

#define QUEUE_MAX_BYTES ((size_t)64 << 20)   /* capture waits above this */
#define MERGE_MAX_ROWS 20000                 /* rows per merged commit */
#define CATCH_UP_ROWS 20000                  /* rows per catch-up commit */
#define PACK_MIN_FILES 256                   /* commits this big go as a pack */

typedef struct change {
	char *path;
	char *json;          /* NULL: the file is removed */
	size_t ord;          /* arrival order: the last one for a path wins */
} change;

typedef struct item {
	struct item *next;
	char device[64];     /* "" when the rows came from several devices */
	char user[128];
	char devices[400];   /* every device, for the message */
	char batches[400];   /* the pushed batches' ids ("" for a catch-up) */
	int64_t seq_lo, seq_hi;
	uint64_t hlc_lo, hlc_hi;
	unsigned long n_ins, n_upd, n_del, n_conf, n_res, n_rows;
	int backlog;         /* part of a catch-up longer than one commit */
	change *ch;
	size_t nch, capch;
	size_t bytes;
} item;

typedef struct want {
	const char *tbl;     /* schema's table name (borrowed) */
	char rid[64];
	int found;
} want;

struct fs_ledger {
	fs_ledger_options opts;
	char *repo_path;
	git_repository *repo;
	git_repository *fast;  /* the same repository, writing to memory */
	git_odb_backend *mp;   /* fast's in-memory store (ledger_pack.c; the
	                          odb owns it) */
	fs_replica *r;       /* capture's connection (views installed) */
	git_oid head;
	int has_head;
	git_oid tree;        /* the head commit's tree */
	int64_t mark;        /* last seq committed to git */
	int64_t captured;    /* last seq queued */
	int git_inited;
	/* queue, shared by capture and the writer thread */
	pthread_mutex_t lock;
	pthread_cond_t work, room;
	int sync_inited;
	pthread_t th;
	int running, stopping, broken;
	item *qh, *qt;
	size_t qbytes;
};

const char *fs_ledger__git_msg(void)
{
	const git_error *ge = git_error_last();
	return ge && ge->message ? ge->message : "unknown libgit2 error";
}

static int git_fail(fs_err *e, int code, const char *what)
{
	return fs_err__set(e, code, "ledger: %s: %s", what, fs_ledger__git_msg());
}

static void logmsg(fs_ledger *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logmsg(fs_ledger *l, const char *fmt, ...)
{
	char m[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (l->opts.log)
		l->opts.log(l->opts.log_payload, m);
}

static int safe_name(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return 0;
	for (; *s; s++, n++) {
		char c = *s;
		if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                  (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int fs_ledger__path(char *out, size_t size, const char *table,
                    const char *id)
{
	size_t n;
	int w;

	if (!safe_name(table, 63) || !safe_name(id, 63) || strlen(id) < 2)
		return FS_EINVALID;
	n = strlen(id);
	w = snprintf(out, size, "%s/%c%c/%s.json", table, id[n - 2], id[n - 1],
	             id);
	return w < 0 || (size_t)w >= size ? FS_EINVALID : 0;
}

int fs_ledger__trailer(char *out, size_t size, const char *message,
                       const char *key)
{
	const char *p = message, *found = NULL;
	size_t klen = strlen(key);

	/* The last line starting with "key: " (trailers end the message). */
	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':' && p[klen + 1] == ' ')
			found = p + klen + 2;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!found)
		return FS_ENOTFOUND;
	snprintf(out, size, "%.*s", (int)strcspn(found, "\r\n"), found);
	return 0;
}

int fs_ledger__range(int64_t *lo, int64_t *hi, const char *text)
{
	char *end;
	long long a, b;

	a = strtoll(text, &end, 10);
	if (end == text || end[0] != '.' || end[1] != '.')
		return FS_ECORRUPT;
	text = end + 2;
	b = strtoll(text, &end, 10);
	if (end == text || *end || a < 0 || b < a)
		return FS_ECORRUPT;
	*lo = a;
	*hi = b;
	return 0;
}

/* ------------------------------------------------------------- items */

static void item_free(item *it)
{
	size_t i;

	if (!it)
		return;
	for (i = 0; i < it->nch; i++) {
		free(it->ch[i].path);
		free(it->ch[i].json);
	}
	free(it->ch);
	free(it);
}

static int item_add(item *it, const char *path, const char *json)
{
	change *c;

	if (it->nch == it->capch) {
		size_t cap = it->capch ? it->capch * 2 : 64;
		change *p = realloc(it->ch, cap * sizeof(*p));
		if (!p)
			return -1;
		it->ch = p;
		it->capch = cap;
	}
	c = &it->ch[it->nch];
	c->path = strdup(path);
	c->json = json ? strdup(json) : NULL;
	c->ord = it->nch;
	if (!c->path || (json && !c->json)) {
		free(c->path);
		free(c->json);
		return -1;
	}
	it->nch++;
	it->bytes += strlen(path) + (json ? strlen(json) : 0) + sizeof(*c) + 32;
	return 0;
}

static int change_cmp(const void *a, const void *b)
{
	const change *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Sorts the changes by path and keeps the last one of each path. */
static void item_settle(item *it)
{
	size_t i, n = 0;

	if (it->nch > 1)
		qsort(it->ch, it->nch, sizeof(*it->ch), change_cmp);
	for (i = 0; i < it->nch; i++) {
		if (i + 1 < it->nch && !strcmp(it->ch[i].path, it->ch[i + 1].path)) {
			free(it->ch[i].path);
			free(it->ch[i].json);
			continue;
		}
		it->ch[n++] = it->ch[i];
	}
	it->nch = n;
	for (i = 0; i < n; i++)
		it->ch[i].ord = i;
}

static void note_device(item *it, const char *dev, const char *user)
{
	if (!*dev)
		return;   /* conflict announcements are the server's */
	if (!it->devices[0]) {
		snprintf(it->device, sizeof(it->device), "%s", dev);
		snprintf(it->user, sizeof(it->user), "%s", user);
		snprintf(it->devices, sizeof(it->devices), "%s (%s)", dev, user);
	} else if (it->device[0] && strcmp(it->device, dev)) {
		it->device[0] = '\0';
	}
	if (!strstr(it->devices, dev)) {
		size_t n = strlen(it->devices);
		snprintf(it->devices + n, sizeof(it->devices) - n, ", %s (%s)", dev,
		         user);
	}
}

/* Appends batch id(s) to the item's list (cut short with "..."). */
static void add_batch(item *it, const char *batch)
{
	size_t n = strlen(it->batches);

	if (!batch || !*batch)
		return;
	if (n + strlen(batch) + 3 >= sizeof(it->batches)) {
		if (!strstr(it->batches, "..."))
			snprintf(it->batches + n, sizeof(it->batches) - n, ", ...");
		return;
	}
	snprintf(it->batches + n, sizeof(it->batches) - n, "%s%s", n ? ", " : "",
	         batch);
}

/* Moves b's changes and ranges into a (same device, b after a). */
static int item_merge(item *a, item *b)
{
	size_t i;

	if (a->nch + b->nch > a->capch) {
		change *p = realloc(a->ch, (a->nch + b->nch) * sizeof(*p));
		if (!p)
			return -1;
		a->ch = p;
		a->capch = a->nch + b->nch;
	}
	for (i = 0; i < b->nch; i++) {
		a->ch[a->nch] = b->ch[i];
		a->ch[a->nch].ord = a->nch;
		a->nch++;
	}
	b->nch = 0;
	item_settle(a);
	a->seq_hi = b->seq_hi;
	if (b->hlc_lo && (!a->hlc_lo || b->hlc_lo < a->hlc_lo))
		a->hlc_lo = b->hlc_lo;
	if (b->hlc_hi > a->hlc_hi)
		a->hlc_hi = b->hlc_hi;
	a->n_ins += b->n_ins;
	a->n_upd += b->n_upd;
	a->n_del += b->n_del;
	a->n_conf += b->n_conf;
	a->n_res += b->n_res;
	a->n_rows += b->n_rows;
	a->bytes += b->bytes;
	add_batch(a, b->batches);
	return 0;
}

/* ----------------------------------------------------------- capture */

typedef struct dump_ctx {
	fs_ledger *l;
	item *it;
	want *w;
	size_t nw;
	sqlite3_stmt *ids;
	int rc;
} dump_ctx;

static int want_cmp(const void *a, const void *b)
{
	const want *x = a, *y = b;
	int c = strcmp(x->tbl, y->tbl);
	return c ? c : strcmp(x->rid, y->rid);
}

static int on_dump(const char *json, void *payload)
{
	dump_ctx *x = payload;
	fs_replica *r = x->l->r;
	want key, *w;
	char path[200];
	int rc;

	/* The table and id of the line, read back by SQLite. */
	sqlite3_reset(x->ids);
	sqlite3_bind_text(x->ids, 1, json, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(x->ids)) != SQLITE_ROW) {
		x->rc = fs_err__sqlite(&r->err, r->db, rc, "reading a dump line");
		return 1;
	}
	memset(&key, 0, sizeof(key));
	key.tbl = (const char *)sqlite3_column_text(x->ids, 0);
	snprintf(key.rid, sizeof(key.rid), "%s",
	         (const char *)sqlite3_column_text(x->ids, 1));
	if (!key.tbl)
		key.tbl = "";
	w = bsearch(&key, x->w, x->nw, sizeof(*x->w), want_cmp);
	if (!w)
		return 0;   /* not asked for: cannot happen with the views */
	w->found = 1;
	if (fs_ledger__path(path, sizeof(path), w->tbl, w->rid) < 0 ||
	    item_add(x->it, path, json) < 0) {
		x->rc = fs_err__set(&r->err, FS_ERROR, "ledger: out of memory");
		return 1;
	}
	return 0;
}

int fs_ledger__conflict_json(char **out, fs_replica *r, const char *id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
#define JV(c) "CASE WHEN json_valid(" c ") THEN json(" c ") ELSE " c " END"
	if (fs_replica__prepare(&st, r,
	        "SELECT json_object('created_at', created_at, 'field', col, "
	        "'id', id, 'loser_author', loser_author, 'loser_device', "
	        "loser_device, 'loser_hlc', loser_hlc, 'loser_value', "
	        JV("loser_value") ", 'reason', reason, 'record', rid, "
	        "'resolution', " JV("resolution") ", 'resolved_at', resolved_at, "
	        "'resolved_by', resolved_by, 'table', tbl, 'winner_author', "
	        "winner_author, 'winner_device', winner_device, 'winner_hlc', "
	        "winner_hlc, 'winner_value', " JV("winner_value") ") "
	        "FROM fs_conflict WHERE id = ?") < 0)
		return r->err.code;
#undef JV
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = strdup((const char *)sqlite3_column_text(st, 0));
		rc = *out ? 0 : fs_err__set(&r->err, FS_ERROR, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading a conflict");
	}
	fs_replica__finish(r, st);
	return rc;
}

/* Reads the log rows above seq lo (at most max of them) and the state
** they left into a new item; *out NULL when there are none.  Runs in one
** read transaction: rows and records are one consistent snapshot. */
static int build_item(item **out, fs_ledger *l, int64_t lo, int64_t max,
                      const char *device, const char *user)
{
	fs_replica *r = l->r;
	sqlite3_stmt *st = NULL;
	item *it = NULL;
	want *w = NULL;
	char **conf = NULL;
	size_t nw = 0, capw = 0, nconf = 0, capconf = 0, i;
	dump_ctx x;
	int rc, error = -1, in_tx = 0, org = 0;

	*out = NULL;
	memset(&x, 0, sizeof(x));
	if ((rc = fs_replica__exec(r, "BEGIN", "ledger: reading the log")) < 0)
		return rc;
	in_tx = 1;
	if (!(it = calloc(1, sizeof(*it)))) {
		fs_err__set(&r->err, FS_ERROR, "ledger: out of memory");
		goto done;
	}
	if (fs_replica__prepare(&st, r,
	        "SELECT seq, tbl, rid, op, hlc, device, author FROM fs_log "
	        "WHERE seq > ? ORDER BY seq LIMIT ?") < 0)
		goto done;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *tbl = (const char *)sqlite3_column_text(st, 1);
		const char *rid = (const char *)sqlite3_column_text(st, 2);
		char op = ((const char *)sqlite3_column_text(st, 3))[0];
		uint64_t hlc = (uint64_t)sqlite3_column_int64(st, 4);
		int is_org = !strcmp(tbl, FS_ORG_TABLE);

		/* An organisation change is a commit of its own (its author is
		** the admin, not the rep whose batch follows). */
		if (it->n_rows && is_org != org) {
			rc = SQLITE_DONE;
			break;
		}
		org = is_org;
		if (!it->n_rows)
			it->seq_lo = seq;
		it->seq_hi = seq;
		it->n_rows++;
		if (hlc && (!it->hlc_lo || hlc < it->hlc_lo))
			it->hlc_lo = hlc;
		if (hlc > it->hlc_hi)
			it->hlc_hi = hlc;
		note_device(it, (const char *)sqlite3_column_text(st, 5),
		            (const char *)sqlite3_column_text(st, 6));
		if (op == 'C' || op == 'R') {
			op == 'C' ? it->n_conf++ : it->n_res++;
			if (nconf == capconf) {
				size_t cap = capconf ? capconf * 2 : 16;
				char **p = realloc(conf, cap * sizeof(*p));
				if (!p)
					goto oom;
				conf = p;
				capconf = cap;
			}
			if (!(conf[nconf] = strdup(rid)))
				goto oom;
			nconf++;
			continue;
		}
		if (is_org)
			continue;   /* its files below */
		op == 'I' ? it->n_ins++ : op == 'D' ? it->n_del++ : it->n_upd++;
		{
			const fs_table *t = fs_schema__table(&r->schema, tbl);
			if (!t || strcmp(t->name, tbl) || strlen(rid) >= 64)
				continue;   /* nothing the ledger can hold */
			if (nw == capw) {
				size_t cap = capw ? capw * 2 : 64;
				want *p = realloc(w, cap * sizeof(*p));
				if (!p)
					goto oom;
				w = p;
				capw = cap;
			}
			w[nw].tbl = t->name;
			snprintf(w[nw].rid, sizeof(w[nw].rid), "%s", rid);
			w[nw].found = 0;
			nw++;
		}
	}
	fs_replica__finish(r, st);
	st = NULL;
	if (rc != SQLITE_DONE) {
		fs_err__sqlite(&r->err, r->db, rc, "ledger: reading the log");
		goto done;
	}
	if (!it->n_rows) {
		error = 0;
		goto done;
	}
	if (!it->devices[0] && device) {
		/* Only conflict announcements: the pusher's batch caused them. */
		note_device(it, device, user ? user : device);
	}
	/* The records: the wanted ids into the temp table, then the dump. */
	if (nw) {
		size_t n = 0;
		qsort(w, nw, sizeof(*w), want_cmp);
		for (i = 0; i < nw; i++)
			if (!n || want_cmp(&w[n - 1], &w[i]))
				w[n++] = w[i];
		nw = n;
		if (fs_replica__exec(r, "DELETE FROM temp.fs_ledger_want",
		                     "ledger: clearing the wanted records") < 0 ||
		    fs_replica__prepare(&st, r,
		        "INSERT INTO temp.fs_ledger_want(tbl, rid) VALUES (?, ?)") < 0)
			goto done;
		for (i = 0; i < nw; i++) {
			sqlite3_bind_text(st, 1, w[i].tbl, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, w[i].rid, -1, SQLITE_STATIC);
			if (fs_replica__step_done(r, st, "ledger: listing a record") < 0)
				goto done;
			sqlite3_reset(st);
		}
		fs_replica__finish(r, st);
		st = NULL;
		if (sqlite3_prepare_v2(r->db, "SELECT json_extract(?1, '$.table'), "
		                       "json_extract(?1, '$.id')", -1, &x.ids,
		                       NULL) != SQLITE_OK) {
			fs_err__sqlite(&r->err, r->db, sqlite3_errcode(r->db),
			               "ledger: preparing");
			goto done;
		}
		x.l = l;
		x.it = it;
		x.w = w;
		x.nw = nw;
		rc = fs_replica_dump(r, on_dump, &x);
		if (rc != 0) {
			if (x.rc == 0)
				fs_err__prefix(&r->err, "ledger: ");
			goto done;
		}
		for (i = 0; i < nw; i++) {
			char path[200];
			if (w[i].found)
				continue;
			if (fs_ledger__path(path, sizeof(path), w[i].tbl, w[i].rid) < 0)
				continue;
			if (item_add(it, path, NULL) < 0)
				goto oom;
		}
	}
	if (org || lo == 0) {
		/* The organisation: when it changed, and in the first commit. */
		char *depts = NULL, *users = NULL;
		if (fs_org__json(&depts, &users, r) < 0)
			goto done;
		rc = item_add(it, FS_ORG_DEPTS, depts);
		if (rc == 0)
			rc = item_add(it, FS_ORG_USERS, users);
		free(depts);
		free(users);
		if (rc < 0)
			goto oom;
	}
	for (i = 0; i < nconf; i++) {
		char path[200], *json = NULL;
		if (!safe_name(conf[i], 40))
			continue;
		snprintf(path, sizeof(path), "conflicts/%s.json", conf[i]);
		if (fs_ledger__conflict_json(&json, r, conf[i]) < 0)
			goto done;
		rc = item_add(it, path, json);
		free(json);
		if (rc < 0)
			goto oom;
	}
	item_settle(it);
	*out = it;
	it = NULL;
	error = 0;
	goto done;
oom:
	fs_err__set(&r->err, FS_ERROR, "ledger: out of memory");
done:
	fs_replica__finish(r, st);
	sqlite3_finalize(x.ids);
	if (in_tx) {
		fs_err keep = r->err;
		fs_replica__exec(r, "COMMIT", "ledger: ending a read");
		r->err = keep;
	}
	item_free(it);
	free(w);
	for (i = 0; i < nconf; i++)
		free(conf[i]);
	free(conf);
	return error < 0 ? (r->err.code ? r->err.code : FS_ERROR) : 0;
}

/* ------------------------------------------------------------ writing */

static void sanitize(char *out, size_t size, const char *in, int email)
{
	size_t i = 0;

	for (; *in && i + 1 < size; in++) {
		char c = *in;
		if (c == '<' || c == '>' || c == '\n' || c == '\r' ||
		    (email && (c == ' ' || c == '@')))
			c = email ? '.' : '_';
		out[i++] = c;
	}
	out[i] = '\0';
	if (!i)
		snprintf(out, size, "unknown");
}

static void fmt_hlc(char *out, size_t size, uint64_t hlc)
{
	fs_hlc_format(out, size, hlc);
}

/* Writes what the in-memory store holds as one pack file into the
** repository, then empties it.  Objects first, the ref after: a crash in
** between leaves objects nothing points to, never a ref to nothing. */
static int flush_pack(fs_ledger *l, fs_err *e)
{
	git_odb *odb = NULL;
	int rc;

	if (git_repository_odb(&odb, l->repo) < 0)
		return git_fail(e, FS_ERROR, "opening the object store");
	rc = fs_ledger__mem_flush(l->mp, odb, e);
	git_odb_free(odb);
	return rc;
}

static int write_item(fs_ledger *l, item *it, fs_err *e)
{
	/* A big commit (a whole batch of creations) is written to memory and
	** then as one pack (ledger_pack.c): one file instead of one per
	** object, which is what costs on a file system.  Small ones go as
	** loose objects. */
	git_repository *repo = it->nch >= PACK_MIN_FILES ? l->fast : l->repo;
	git_tree *base = NULL, *tree = NULL;
	git_treebuilder *tb = NULL;
	git_signature *author = NULL, *committer = NULL;
	git_commit *parent = NULL;
	git_tree_update *up = NULL;
	fs_buf msg = FS_BUF_INIT;
	git_oid base_id, tree_id, commit_id;
	size_t i, nup = 0;
	int error = -1;

	/* The baseline: the head's tree, or an empty one. */
	if (l->has_head) {
		if (git_tree_lookup(&base, repo, &l->tree) < 0) {
			git_fail(e, FS_ECORRUPT, "reading the last tree");
			goto done;
		}
	} else {
		if (git_treebuilder_new(&tb, repo, NULL) < 0 ||
		    git_treebuilder_write(&base_id, tb) < 0 ||
		    git_tree_lookup(&base, repo, &base_id) < 0) {
			git_fail(e, FS_ERROR, "writing the empty tree");
			goto done;
		}
	}
	if (it->nch && !(up = calloc(it->nch, sizeof(*up)))) {
		fs_err__set(e, FS_ERROR, "ledger: out of memory");
		goto done;
	}
	for (i = 0; i < it->nch; i++) {
		const change *c = &it->ch[i];
		if (c->json) {
			if (repo == l->fast
			    ? fs_ledger__mem_put(&up[nup].id, l->mp, c->json,
			                         strlen(c->json), GIT_OBJECT_BLOB) < 0
			    : git_blob_create_from_buffer(&up[nup].id, repo, c->json,
			                                  strlen(c->json)) < 0) {
				git_fail(e, FS_ERROR, "writing a record");
				goto done;
			}
			up[nup].action = GIT_TREE_UPDATE_UPSERT;
			up[nup].filemode = GIT_FILEMODE_BLOB;
		} else {
			git_tree_entry *te = NULL;
			/* Only what is there can be removed (a record created and
			** deleted within one commit never was). */
			if (git_tree_entry_bypath(&te, base, c->path) < 0)
				continue;
			git_tree_entry_free(te);
			up[nup].action = GIT_TREE_UPDATE_REMOVE;
		}
		up[nup].path = c->path;
		nup++;
	}
	if (nup) {
		if (git_tree_create_updated(&tree_id, repo, base, nup, up) < 0) {
			git_fail(e, FS_ERROR, "writing the trees");
			goto done;
		}
	} else {
		git_oid_cpy(&tree_id, git_tree_id(base));
	}
	if (git_tree_lookup(&tree, repo, &tree_id) < 0) {
		git_fail(e, FS_ERROR, "reading the new tree");
		goto done;
	}
	/* Who and when: the rep (at the clock of the last change), and the
	** server (now). */
	{
		char name[160], mail[300], u[130], d[70], lo[48], hi[48];
		int64_t when = (int64_t)(FS_HLC_MS(it->hlc_hi) / 1000);

		if (it->device[0]) {
			sanitize(u, sizeof(u), it->user, 0);
			snprintf(name, sizeof(name), "%s", u);
			sanitize(u, sizeof(u), it->user, 1);
			sanitize(d, sizeof(d), it->device, 1);
			snprintf(mail, sizeof(mail), "%s@%s.fieldsync", u, d);
		} else {
			snprintf(name, sizeof(name), "fieldsyncd");
			snprintf(mail, sizeof(mail), "fieldsyncd@server.fieldsync");
		}
		if (!it->hlc_hi)
			when = (int64_t)time(NULL);
		if (git_signature_new(&author, name, mail, when, 0) < 0 ||
		    git_signature_now(&committer, "fieldsyncd",
		                      "fieldsyncd@server.fieldsync") < 0) {
			git_fail(e, FS_ERROR, "making the signatures");
			goto done;
		}
		fmt_hlc(lo, sizeof(lo), it->hlc_lo);
		fmt_hlc(hi, sizeof(hi), it->hlc_hi);
		if (it->device[0])
			fs_buf_printf(&msg, "%s on device %s: ", it->user, it->device);
		else if (it->backlog)
			fs_buf_printf(&msg, "Catch-up: ");
		else if (it->devices[0])
			fs_buf_printf(&msg, "Several devices: ");
		else
			fs_buf_printf(&msg, "Server: ");
		fs_buf_printf(&msg, "%lu created, %lu updated, %lu deleted, "
		              "%lu conflicts, %lu resolved\n\n", it->n_ins,
		              it->n_upd, it->n_del, it->n_conf, it->n_res);
		fs_buf_printf(&msg, "Device: %s\n", it->devices[0] ? it->devices
		                                                   : "(server)");
		fs_buf_printf(&msg, "Batch: %s\n", it->batches[0] ? it->batches
		              : "(none: an organisation change, or written by a "
		                "catch-up)");
		fs_buf_printf(&msg, "Log: seq %lld..%lld (%lu entries, %zu files)\n",
		              (long long)it->seq_lo, (long long)it->seq_hi,
		              it->n_rows, it->nch);
		fs_buf_printf(&msg, "Clock: %s .. %s\n", lo, hi);
		if (it->backlog)
			fs_buf_printf(&msg, "Part of a catch-up of more log than one "
			              "commit holds: the files hold the records as the "
			              "database had them at the catch-up, which may "
			              "include changes of later parts.\n");
		fs_buf_putc(&msg, '\n');
		fs_buf_printf(&msg, "Fieldsync-Device: %s\n",
		              it->device[0] ? it->device : "-");
		fs_buf_printf(&msg, "Fieldsync-User: %s\n",
		              it->device[0] ? it->user : "-");
		fs_buf_printf(&msg, "Fieldsync-Batch: %s\n",
		              it->batches[0] ? it->batches : "-");
		fs_buf_printf(&msg, "Fieldsync-HLC: %llu..%llu\n",
		              (unsigned long long)it->hlc_lo,
		              (unsigned long long)it->hlc_hi);
		fs_buf_printf(&msg, "Fieldsync-Seq: %lld..%lld\n",
		              (long long)it->seq_lo, (long long)it->seq_hi);
		if (msg.failed) {
			fs_err__set(e, FS_ERROR, "ledger: out of memory");
			goto done;
		}
	}
	if (l->has_head && git_commit_lookup(&parent, repo, &l->head) < 0) {
		git_fail(e, FS_ECORRUPT, "reading the last commit");
		goto done;
	}
	if (git_commit_create(&commit_id, repo,
	                      repo == l->fast ? NULL : FS_LEDGER_BRANCH, author,
	                      committer, "UTF-8", msg.ptr, tree,
	                      parent ? 1 : 0,
	                      (const git_commit **)&parent) < 0) {
		git_fail(e, FS_ERROR, "writing the commit");
		goto done;
	}
	if (repo == l->fast) {
		git_reference *ref = NULL;
		if (flush_pack(l, e) < 0)
			goto done;
		if (git_reference_create(&ref, l->repo, FS_LEDGER_BRANCH, &commit_id,
		                         1, NULL) < 0) {
			git_fail(e, FS_ERROR, "moving the branch");
			goto done;
		}
		git_reference_free(ref);
	}
	git_oid_cpy(&l->head, &commit_id);
	git_oid_cpy(&l->tree, &tree_id);
	l->has_head = 1;
	l->mark = it->seq_hi;
	error = 0;
done:
	git_treebuilder_free(tb);
	git_tree_free(base);
	git_tree_free(tree);
	git_commit_free(parent);
	git_signature_free(author);
	git_signature_free(committer);
	free(up);
	fs_buf_free(&msg);
	return error < 0 ? (e->code ? e->code : FS_ERROR) : 0;
}

/* ----------------------------------------------------- open and close */

static int install_views(fs_ledger *l, fs_err *e)
{
	fs_replica *r = l->r;
	fs_buf sql = FS_BUF_INIT;
	size_t i;

	fs_buf_puts(&sql, "CREATE TEMP TABLE fs_ledger_want(tbl TEXT NOT NULL, "
	            "rid TEXT NOT NULL, PRIMARY KEY (tbl, rid)) WITHOUT ROWID;");
	for (i = 0; i < r->schema.ntables; i++) {
		const char *t = r->schema.tables[i].name;
		fs_buf_printf(&sql, "CREATE TEMP VIEW \"%s\" AS SELECT * FROM "
		              "main.\"%s\" WHERE id IN (SELECT rid FROM "
		              "temp.fs_ledger_want WHERE tbl = '%s');", t, t, t);
	}
	if (sql.failed) {
		fs_buf_free(&sql);
		return fs_err__set(e, FS_ERROR, "ledger: out of memory");
	}
	if (fs_replica__exec(r, sql.ptr, "ledger: preparing the views") < 0) {
		*e = r->err;
		fs_buf_free(&sql);
		return e->code;
	}
	fs_buf_free(&sql);
	return 0;
}

static int read_head(fs_ledger *l, fs_err *e)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	char seq[64];
	int64_t lo, hi;
	int rc;

	rc = git_reference_name_to_id(&l->head, l->repo, FS_LEDGER_BRANCH);
	if (rc == GIT_ENOTFOUND) {
		l->has_head = 0;
		l->mark = 0;
		return 0;
	}
	if (rc < 0)
		return git_fail(e, FS_ECORRUPT, "reading " FS_LEDGER_BRANCH);
	if (git_commit_lookup(&c, l->repo, &l->head) < 0 ||
	    git_tree_lookup(&t, l->repo, git_commit_tree_id(c)) < 0) {
		git_commit_free(c);
		return fs_err__set(e, FS_ECORRUPT, "ledger %s is corrupt: its last "
		                   "commit cannot be read: %s", l->repo_path,
		                   fs_ledger__git_msg());
	}
	git_oid_cpy(&l->tree, git_tree_id(t));
	git_tree_free(t);
	rc = fs_ledger__trailer(seq, sizeof(seq), git_commit_message(c),
	                        "Fieldsync-Seq");
	git_commit_free(c);
	if (rc < 0 || fs_ledger__range(&lo, &hi, seq) < 0)
		return fs_err__set(e, FS_ECORRUPT, "ledger %s: the last commit has "
		                   "no Fieldsync-Seq trailer: not a Fieldsync "
		                   "ledger", l->repo_path);
	l->has_head = 1;
	l->mark = hi;
	return 0;
}

int fs_ledger_open(fs_ledger **out, const char *repo_path,
                   const char *db_path, const fs_ledger_options *opts,
                   fs_err *e)
{
	fs_ledger *l = NULL;
	sqlite3_stmt *st = NULL;
	int64_t end = 0;
	int error = -1, rc;

	*out = NULL;
	fs_err__clear(e);
	if (!(l = calloc(1, sizeof(*l))) || !(l->repo_path = strdup(repo_path))) {
		free(l);
		return fs_err__set(e, FS_ERROR, "ledger: out of memory");
	}
	if (opts)
		l->opts = *opts;
	if (git_libgit2_init() < 0) {
		fs_err__set(e, FS_ERROR, "ledger: libgit2 does not initialise");
		goto done;
	}
	l->git_inited = 1;
	/* Every big commit adds a pack, and libgit2 maps the packs it reads
	** (the trees each commit updates) up to 8 GB by default: the server's
	** memory then grew with everything ever pushed (tools/bench/pending.sh:
	** 1 GB after 1M changes).  Bound the mapped windows and open packs.
	** These are process-wide libgit2 settings; fieldsyncd is the process. */
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)(64 << 20));
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, (unsigned int)64);
	rc = git_repository_open_ext(&l->repo, repo_path,
	                             GIT_REPOSITORY_OPEN_NO_SEARCH |
	                             GIT_REPOSITORY_OPEN_BARE, NULL);
	if (rc == GIT_ENOTFOUND && l->opts.create) {
		git_repository_init_options io;

		git_repository_init_options_init(&io,
		                                 GIT_REPOSITORY_INIT_OPTIONS_VERSION);
		io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		           GIT_REPOSITORY_INIT_NO_REINIT;
		io.initial_head = "main";
		io.description = "Fieldsync ledger: every accepted change to the "
		                 "CRM records (docs/ledger.md)";
		if (git_repository_init_ext(&l->repo, repo_path, &io) < 0) {
			git_fail(e, FS_ERROR, "creating the repository");
			goto done;
		}
	} else if (rc == GIT_ENOTFOUND) {
		fs_err__set(e, FS_ENOTFOUND, "no ledger at %s", repo_path);
		goto done;
	} else if (rc < 0) {
		fs_err__set(e, FS_ECORRUPT, "ledger %s is not a readable git "
		            "repository: %s", repo_path, fs_ledger__git_msg());
		goto done;
	}
	{
		/* HEAD must be readable (stock git needs it), even if unborn. */
		git_reference *h = NULL;
		if (git_reference_lookup(&h, l->repo, "HEAD") < 0) {
			fs_err__set(e, FS_ECORRUPT, "ledger %s is corrupt: HEAD: %s",
			            repo_path, fs_ledger__git_msg());
			goto done;
		}
		git_reference_free(h);
	}
	if (!git_repository_is_bare(l->repo)) {
		fs_err__set(e, FS_ECORRUPT, "ledger %s is not a bare repository",
		            repo_path);
		goto done;
	}
	if (read_head(l, e) < 0)
		goto done;
	{
		git_odb *odb = NULL;
		if (git_repository_open_ext(&l->fast, repo_path,
		                            GIT_REPOSITORY_OPEN_NO_SEARCH |
		                            GIT_REPOSITORY_OPEN_BARE, NULL) < 0 ||
		    fs_ledger__mem_new(&l->mp) < 0 ||
		    git_repository_odb(&odb, l->fast) < 0 ||
		    git_odb_add_backend(odb, l->mp, 1000) < 0) {
			git_odb_free(odb);
			if (l->mp)
				l->mp->free(l->mp);
			l->mp = NULL;
			git_fail(e, FS_ERROR, "opening the repository for writing");
			goto done;
		}
		git_odb_free(odb);
	}
	if (db_path) {
		if (fs_replica__open_server(&l->r, db_path, 0) < 0) {
			fs_err__set(e, l->r ? l->r->err.code : FS_ERROR, "ledger: %s",
			            fs_replica_errmsg(l->r));
			goto done;
		}
		if (install_views(l, e) < 0)
			goto done;
		if (fs_replica__prepare(&st, l->r,
		        "SELECT coalesce(max(seq), 0) FROM fs_log") < 0) {
			*e = l->r->err;
			goto done;
		}
		if (sqlite3_step(st) == SQLITE_ROW)
			end = sqlite3_column_int64(st, 0);
		fs_replica__finish(l->r, st);
		if (l->mark > end) {
			fs_err__set(e, FS_ECORRUPT, "ledger %s is ahead of the database "
			            "(ledger at log seq %lld, database at %lld): the "
			            "database is older than its ledger; restore it with "
			            "fieldsync-admin restore", repo_path,
			            (long long)l->mark, (long long)end);
			goto done;
		}
	}
	l->captured = l->mark;
	if (pthread_mutex_init(&l->lock, NULL) != 0 ||
	    pthread_cond_init(&l->work, NULL) != 0 ||
	    pthread_cond_init(&l->room, NULL) != 0) {
		fs_err__set(e, FS_ERROR, "ledger: cannot make its locks");
		goto done;
	}
	l->sync_inited = 1;
	*out = l;
	l = NULL;
	error = 0;
done:
	fs_ledger_free(l);
	return error < 0 ? (e->code ? e->code : FS_ERROR) : 0;
}

int64_t fs_ledger_mark(fs_ledger *l)
{
	return l ? l->mark : 0;
}

int fs_ledger_catch_up(fs_ledger *l, int *written, fs_err *e)
{
	int n = 0, rc = 0;

	int backlog = 0;

	fs_err__clear(e);
	for (;;) {
		item *it = NULL;

		if ((rc = build_item(&it, l, l->mark, CATCH_UP_ROWS, NULL, NULL)) < 0) {
			*e = l->r->err;
			break;
		}
		if (!it)
			break;
		/* The records are read as they are now: when the backlog takes
		** more than one commit, an early commit may show a later change,
		** so no rep is named as its author. */
		if (it->n_rows >= CATCH_UP_ROWS)
			backlog = 1;
		if (backlog) {
			it->backlog = 1;
			it->device[0] = '\0';
		}
		rc = write_item(l, it, e);
		item_free(it);
		if (rc < 0)
			break;
		n++;
	}
	l->captured = l->mark;
	if (written)
		*written = n;
	return rc;
}

void fs_ledger_capture(fs_ledger *l, const char *device, const char *user,
                       const char *batch)
{
	item *it = NULL;
	int rc;

	if (!l)
		return;
	for (;;) {     /* an organisation change cuts the rows in two items */
		pthread_mutex_lock(&l->lock);
		while (l->running && !l->broken && l->qbytes > QUEUE_MAX_BYTES)
			pthread_cond_wait(&l->room, &l->lock);
		rc = l->broken || !l->running;
		pthread_mutex_unlock(&l->lock);
		if (rc)
			return;   /* left to the next catch-up */
		if ((rc = build_item(&it, l, l->captured, INT64_MAX, device,
		                     user)) < 0) {
			logmsg(l, "capturing log rows after seq %lld: %s (left to the "
			       "next catch-up)", (long long)l->captured,
			       fs_replica_errmsg(l->r));
			return;
		}
		if (!it)
			return;
		if (it->devices[0] && device && strstr(it->devices, device)) {
			add_batch(it, batch);    /* the item with the pusher's rows */
			batch = NULL;
		}
		l->captured = it->seq_hi;
		pthread_mutex_lock(&l->lock);
		if (l->qt)
			l->qt->next = it;
		else
			l->qh = it;
		l->qt = it;
		l->qbytes += it->bytes;
		pthread_cond_signal(&l->work);
		pthread_mutex_unlock(&l->lock);
		it = NULL;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void *writer_main(void *arg)
{
	fs_ledger *l = arg;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		item *it;
		fs_err e;

		while (!l->qh && !l->stopping)
			pthread_cond_wait(&l->work, &l->lock);
		if (!l->qh)
			break;
		it = l->qh;
		l->qh = it->next;
		it->next = NULL;
		/* Behind: one device's consecutive batches become one commit. */
		while (l->qh && it->device[0] && !strcmp(l->qh->device, it->device) &&
		       it->n_rows + l->qh->n_rows <= MERGE_MAX_ROWS) {
			item *b = l->qh;
			if (item_merge(it, b) < 0)
				break;
			l->qh = b->next;
			item_free(b);
		}
		if (!l->qh)
			l->qt = NULL;
		pthread_mutex_unlock(&l->lock);
		if (l->opts.delay_ms > 0)
			sleep_ms(l->opts.delay_ms);
		memset(&e, 0, sizeof(e));
		if (write_item(l, it, &e) < 0) {
			logmsg(l, "%s; the ledger stops here (at log seq %lld) and "
			       "catches up when the server restarts", e.msg,
			       (long long)l->mark);
			pthread_mutex_lock(&l->lock);
			l->broken = 1;
			while (l->qh) {
				item *b = l->qh;
				l->qh = b->next;
				item_free(b);
			}
			l->qt = NULL;
			l->qbytes = 0;
			pthread_cond_broadcast(&l->room);
			item_free(it);
			continue;
		}
		pthread_mutex_lock(&l->lock);
		l->qbytes = l->qbytes > it->bytes ? l->qbytes - it->bytes : 0;
		item_free(it);
		if (!l->qh)
			l->qbytes = 0;
		pthread_cond_broadcast(&l->room);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int fs_ledger_start(fs_ledger *l, fs_err *e)
{
	pthread_mutex_lock(&l->lock);
	l->stopping = 0;
	l->broken = 0;
	if (pthread_create(&l->th, NULL, writer_main, l) != 0) {
		pthread_mutex_unlock(&l->lock);
		return fs_err__set(e, FS_ERROR, "ledger: cannot start its thread");
	}
	l->running = 1;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void fs_ledger_stop(fs_ledger *l)
{
	if (!l || !l->running)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_cond_broadcast(&l->work);
	pthread_cond_broadcast(&l->room);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->th, NULL);
	pthread_mutex_lock(&l->lock);
	l->running = 0;
	pthread_mutex_unlock(&l->lock);
}

void fs_ledger_free(fs_ledger *l)
{
	if (!l)
		return;
	fs_ledger_stop(l);
	while (l->qh) {
		item *b = l->qh;
		l->qh = b->next;
		item_free(b);
	}
	if (l->sync_inited) {
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->work);
		pthread_cond_destroy(&l->room);
	}
	fs_replica_close(l->r);
	git_repository_free(l->fast);
	git_repository_free(l->repo);
	if (l->git_inited)
		git_libgit2_shutdown();
	free(l->repo_path);
	free(l);
}
