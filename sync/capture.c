/*
** capture.c -- change capture: the pre-update hook that notes every write
** to a synced table, the flush that logs the notes, and the settling of
** creations before a push.  See capture.h for the design.
*/
#include "capture.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fieldsync.h"
#include "json.h"

/* Folds the greatest HLC stored in the database into the clock.  Local
** HLCs grow with seq, so the last change-log row holds the greatest one;
** fs_meta 'hlc' keeps it once acknowledged rows are gone. */
static int sync_clock(fs_capture *cap)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cap->db,
	        "SELECT max(coalesce((SELECT hlc FROM fs_change ORDER BY seq DESC "
	        "LIMIT 1), 0), coalesce((SELECT v FROM fs_meta WHERE k = 'hlc'), "
	        "0)), coalesce((SELECT v FROM fs_meta WHERE k = 'cursor'), 0)",
	        -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_hlc__observe(&cap->clock, (uint64_t)sqlite3_column_int64(st, 0));
		cap->base = sqlite3_column_int64(st, 1);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The clock synced with the database once per write transaction, before
** its first stamp (see fs_capture.synced). */
static int clock_ready(fs_capture *cap)
{
	int rc;

	if (cap->synced)
		return SQLITE_OK;
	if ((rc = sync_clock(cap)) == SQLITE_OK)
		cap->synced = 1;
	return rc;
}

static void fn_hlc_next(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	if (clock_ready(cap) != SQLITE_OK) {
		sqlite3_result_error(ctx, "cannot read the change clock", -1);
		return;
	}
	sqlite3_result_int64(ctx,
	        (sqlite3_int64)fs_hlc__next(&cap->clock, fs_hlc__wall_ms()));
}

/* The server-log position this replica has seen (read with the clock at
** the first stamp of each transaction, so it is current). */
static void fn_base(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	sqlite3_result_int64(ctx, cap->base);
}

static void fn_device(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	sqlite3_result_text(ctx, cap->device, -1, SQLITE_STATIC);
}

/* A transaction must not commit with notes not yet in fs_change: that
** would put a write on disk without its log rows.  Returning non-zero
** turns the COMMIT into a ROLLBACK. */
static int on_commit(void *p)
{
	fs_capture *cap = p;

	cap->synced = 0;
	return cap->n != 0 || cap->failed;
}

static void on_rollback(void *p)
{
	fs_capture *cap = p;

	cap->synced = 0;
	fs_capture__discard(cap, 0);
	cap->failed = 0;
}

/* ------------------------------------------------------------ the hook */

static void note_fail(fs_capture *cap, const char *why)
{
	if (!cap->failed)
		snprintf(cap->why, sizeof(cap->why), "%s", why);
	cap->failed = 1;
}

/* The bytes of a text value, without the terminating NUL that
** sqlite3_value_text() would copy the value to add (a value read in the
** hook points into the record).  Call sqlite3_value_bytes() after it. */
static const char *text_of(sqlite3_value *v)
{
	const char *p = sqlite3_value_blob(v);

	return p ? p : "";
}

/* Appends v as JSON to b, as json_quote() writes it; -1 for a blob. */
static int put_value(fs_buf *b, sqlite3_value *v)
{
	char num[64];
	const char *p;

	switch (sqlite3_value_type(v)) {
	case SQLITE_NULL:
		return fs_buf_put(b, "null", 4);
	case SQLITE_INTEGER:
		snprintf(num, sizeof(num), "%lld",
		         (long long)sqlite3_value_int64(v));
		return fs_buf_puts(b, num);
	case SQLITE_FLOAT:
		sqlite3_snprintf((int)sizeof(num), num, "%!0.15g",
		                 sqlite3_value_double(v));
		return fs_buf_puts(b, num);
	case SQLITE_TEXT:
		p = text_of(v);
		return fs_json__strn(b, p, (size_t)sqlite3_value_bytes(v));
	default:
		return -1;
	}
}

/* Appends v's JSON to the arena as string *s. */
static int note_value(fs_capture *cap, fs_capture_str *s, sqlite3_value *v)
{
	s->off = cap->arena.len;
	if (put_value(&cap->arena, v) < 0) {
		note_fail(cap, "a field holds binary data, which JSON cannot");
		return -1;
	}
	s->len = cap->arena.len - s->off;
	return 0;
}

/* old IS NOT new, for two values of one column. */
static int differ(sqlite3_value *a, sqlite3_value *b)
{
	int t = sqlite3_value_type(a), n;
	const void *pa, *pb;

	if (t != sqlite3_value_type(b))
		return 1;
	switch (t) {
	case SQLITE_NULL:
		return 0;
	case SQLITE_INTEGER:
		return sqlite3_value_int64(a) != sqlite3_value_int64(b);
	case SQLITE_FLOAT:
		return sqlite3_value_double(a) != sqlite3_value_double(b);
	default:
		pa = sqlite3_value_blob(a);
		pb = sqlite3_value_blob(b);
		break;
	}
	n = sqlite3_value_bytes(a);
	return n != sqlite3_value_bytes(b) ||
	       (n && memcmp(pa, pb, (size_t)n) != 0);
}

/* Starts a note of op on the record whose id is id. */
static fs_capture_note *note_add(fs_capture *cap, const fs_table *t, char op,
                                 sqlite3_value *id)
{
	static const fs_capture_str none = { (size_t)-1, 0 };
	fs_capture_note *x;
	const char *rid;

	if (cap->n == cap->alloc) {
		size_t want = cap->alloc ? cap->alloc * 2 : 256;
		fs_capture_note *p = realloc(cap->notes, want * sizeof(*p));
		if (!p) {
			note_fail(cap, "out of memory noting a change");
			return NULL;
		}
		cap->notes = p;
		cap->alloc = want;
	}
	x = &cap->notes[cap->n];
	x->t = t;
	x->op = op;
	x->col = -1;
	x->val = x->old = none;
	x->rid.off = cap->arena.len;
	rid = text_of(id);
	x->rid.len = (size_t)sqlite3_value_bytes(id);
	if (fs_buf_put(&cap->arena, rid, x->rid.len) < 0) {
		note_fail(cap, "out of memory noting a change");
		return NULL;
	}
	cap->n++;
	return x;
}

/* The deleted row's fields, as one JSON object. */
static void note_deleted(fs_capture *cap, sqlite3 *db, size_t ti,
                         fs_capture_note *x)
{
	const fs_table *t = x->t;
	sqlite3_value *v;
	size_t i, at = cap->arena.len;

	fs_buf_putc(&cap->arena, '{');
	for (i = 0; i < t->ncols; i++) {
		if (sqlite3_preupdate_old(db, cap->pos[ti][i], &v) != SQLITE_OK) {
			note_fail(cap, "cannot read the row being deleted");
			return;
		}
		if (i)
			fs_buf_putc(&cap->arena, ',');
		fs_json__str(&cap->arena, t->cols[i].name);
		fs_buf_putc(&cap->arena, ':');
		if (put_value(&cap->arena, v) < 0) {
			note_fail(cap, "a field holds binary data, which JSON cannot");
			return;
		}
	}
	fs_buf_putc(&cap->arena, '}');
	x->val.off = at;
	x->val.len = cap->arena.len - at;
}

/* A 'U' note of field i of record id, if its value changed from a to b;
** -1 when it cannot be noted (cap->why says why). */
static int note_field(fs_capture *cap, const fs_table *t, sqlite3_value *id,
                      size_t i, sqlite3_value *a, sqlite3_value *b)
{
	fs_capture_note *x;

	if (!differ(a, b))
		return 0;
	if (!(x = note_add(cap, t, 'U', id)))
		return -1;
	x->col = (int)i;
	if (note_value(cap, &x->val, b) < 0 || note_value(cap, &x->old, a) < 0)
		return -1;
	return 0;
}

/* One 'U' note per field whose value changed. */
static void note_updated(fs_capture *cap, sqlite3 *db, size_t ti,
                         const fs_table *t, sqlite3_value *id)
{
	sqlite3_value *a, *b;
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		if (sqlite3_preupdate_old(db, cap->pos[ti][i], &a) != SQLITE_OK ||
		    sqlite3_preupdate_new(db, cap->pos[ti][i], &b) != SQLITE_OK) {
			note_fail(cap, "cannot read the row being updated");
			return;
		}
		if (note_field(cap, t, id, i, a, b) < 0)
			return;
	}
}

static void on_preupdate(void *p, sqlite3 *db, int op, const char *zdb,
                         const char *ztab, sqlite3_int64 k1, sqlite3_int64 k2)
{
	fs_capture *cap = p;
	const fs_schema *s = cap->schema;
	const fs_table *t = NULL;
	fs_capture_note *x;
	sqlite3_value *id;
	size_t ti;
	int rc;

	(void)k1;
	(void)k2;
	if (!cap->on || !s || cap->failed || strcmp(zdb, "main"))
		return;
	/* The table of the last row first: a statement writes one. */
	ti = cap->last_ti;
	if (ti >= s->ntables || strcmp(s->tables[ti].name, ztab)) {
		for (ti = 0; ti < s->ntables; ti++)
			if (!strcmp(s->tables[ti].name, ztab))
				break;
		if (ti == s->ntables)
			return;
		cap->last_ti = ti;
	}
	t = &s->tables[ti];
	/* The row the library's UPDATE noted in its WHERE clause (only it:
	** any other row the statement wrote is noted here as usual). */
	if (op == SQLITE_UPDATE && t == cap->self_t && cap->self_noted &&
	    k1 == cap->self_rowid)
		return;
	rc = op == SQLITE_INSERT
	     ? sqlite3_preupdate_new(db, cap->idpos[ti], &id)
	     : sqlite3_preupdate_old(db, cap->idpos[ti], &id);
	if (rc != SQLITE_OK || sqlite3_value_type(id) != SQLITE_TEXT) {
		note_fail(cap, rc != SQLITE_OK ? "cannot read the row being "
		          "written" : "a record's id is not text");
		return;
	}
	if (op == SQLITE_INSERT)
		note_add(cap, t, 'I', id);
	else if (op == SQLITE_DELETE && (x = note_add(cap, t, 'D', id)) != NULL)
		note_deleted(cap, db, ti, x);
	else if (op == SQLITE_UPDATE)
		note_updated(cap, db, ti, t, id);
}

/* Installs the hook while capture is on and bound, removes it otherwise:
** off, SQLite need not prepare a pre-update call for each row (a
** snapshot of a million records, a server's connections, the log's own
** rows while they are flushed). */
static void hook_set(fs_capture *cap)
{
	int on = cap->on && cap->schema;

	sqlite3_preupdate_hook(cap->db, on ? on_preupdate : NULL,
	                       on ? cap : NULL);
}

/* Whether v, bound for field c, is stored as it is: the library binds
** every field in the type its column stores (client/replica.c,
** fs_replica__convert: text for text fields, dates and times, which never
** look like numbers; integers for the rest), and fs_capture__bind()
** checked that the text fields' columns keep text as text. */
static int stored_as_bound(const fs_column *c, sqlite3_value *v)
{
	int type = sqlite3_value_type(v);
	int text = c->kind == FS_KIND_TEXT || c->kind == FS_KIND_DATE ||
	           c->kind == FS_KIND_TIMESTAMP;

	return type == SQLITE_NULL ||
	       type == (text ? SQLITE_TEXT : SQLITE_INTEGER);
}

/* fs_note_update(TABLE, ROWID, ROW_ID, ID, FIELD, NEW, OLD [, FIELD, NEW,
** OLD]...) notes the fields an UPDATE of the library changes on record
** ID, from the statement's WHERE clause, where the row's old values cost
** nothing to read; it returns 1.  TABLE and FIELD are indexes into the
** schema; ROWID and ROW_ID are the row's rowid and id column: only the row
** whose id is ID is noted, however SQLite evaluates the clause, and the
** hook then leaves that row (by its rowid) alone.  Only the library's
** UPDATE may call it (fs_capture__self names its table): a call from
** other SQL would note a change nothing made.  Reading the old row in the
** hook was most of capture's cost on an update: sqlite3_preupdate_old()
** unpacks every column, sqlite3_preupdate_new() copies the new ones
** (callgrind, BENCHMARKS.md).  A wide update calls it once per
** FS_CAPTURE_NOTE_FIELDS fields (SQLite caps a call's arguments). */
static void fn_note_update(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);
	const fs_schema *s = cap->schema;
	const fs_table *t;
	sqlite3_int64 ti, i;
	int k;

	sqlite3_result_int(ctx, 1);
	if (argc < 7 || (argc - 4) % 3 || !s ||
	    (ti = sqlite3_value_int64(argv[0])) < 0 || (size_t)ti >= s->ntables) {
		sqlite3_result_error(ctx, "fs_note_update: bad arguments", -1);
		return;
	}
	t = &s->tables[ti];
	if (t != cap->self_t) {
		sqlite3_result_error(ctx, "fs_note_update: only the library's "
		                     "updates call it", -1);
		return;
	}
	if (!cap->on || cap->failed)
		return;
	if (sqlite3_value_type(argv[2]) != SQLITE_TEXT ||
	    differ(argv[2], argv[3]))
		return;   /* not the row whose id is ID */
	cap->self_rowid = sqlite3_value_int64(argv[1]);
	cap->self_noted = 1;
	for (k = 4; k < argc; k += 3) {
		i = sqlite3_value_int64(argv[k]);
		if (i < 0 || (size_t)i >= t->ncols) {
			sqlite3_result_error(ctx, "fs_note_update: bad arguments", -1);
			return;
		}
		if (!stored_as_bound(&t->cols[i], argv[k + 1])) {
			sqlite3_result_error(ctx, "a field was given in a type its "
			                     "column does not store", -1);
			return;
		}
		/* The statement fails, and its notes go with it (the hook
		** cannot fail its statement, so it fails the transaction). */
		if (note_field(cap, t, argv[3], (size_t)i, argv[k + 2],
		               argv[k + 1]) < 0) {
			sqlite3_result_error(ctx, cap->why, -1);
			cap->failed = 0;
			return;
		}
	}
}

int fs_capture__register(sqlite3 *db, fs_capture *cap, fs_err *e)
{
	int rc;

	cap->db = db;
	cap->synced = 0;
	sqlite3_commit_hook(db, on_commit, cap);
	sqlite3_rollback_hook(db, on_rollback, cap);

	rc = sqlite3_create_function(db, "fs_hlc_next", 0, SQLITE_UTF8, cap,
	                             fn_hlc_next, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "fs_device", 0, SQLITE_UTF8, cap,
		                             fn_device, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "fs_base", 0, SQLITE_UTF8, cap,
		                             fn_base, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "fs_note_update", -1,
		                             SQLITE_UTF8 | SQLITE_DIRECTONLY, cap,
		                             fn_note_update, NULL, NULL);
	if (rc != SQLITE_OK)
		return fs_err__sqlite(e, db, rc, "registering capture functions");
	return 0;
}

/* ----------------------------------------------------------- binding */

static void unbind(fs_capture *cap)
{
	size_t i;

	if (cap->pos && cap->schema)
		for (i = 0; i < cap->schema->ntables; i++)
			free(cap->pos[i]);
	free(cap->pos);
	free(cap->idpos);
	cap->pos = NULL;
	cap->idpos = NULL;
	cap->schema = NULL;
}

/* Whether a column declared decl keeps text as text (TEXT or BLOB
** affinity, by SQLite's rules), as fs_note_update() relies on. */
static int keeps_text(const char *decl)
{
	char up[64];
	size_t i;

	for (i = 0; decl && decl[i] && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)decl[i]);
	up[i] = '\0';
	if (strstr(up, "INT"))
		return 0;
	return !up[0] || strstr(up, "CHAR") || strstr(up, "CLOB") ||
	       strstr(up, "TEXT") || strstr(up, "BLOB");
}

/* Where table t's id and fields sit in its SQL row. */
static int bind_table(fs_capture *cap, size_t ti, const fs_table *t,
                      fs_err *e)
{
	sqlite3_stmt *st = NULL;
	const char *bad = NULL;
	size_t j;
	int rc;

	cap->idpos[ti] = -1;
	if (!(cap->pos[ti] = malloc((t->ncols ? t->ncols : 1) * sizeof(int))))
		return fs_err__set(e, FS_ERROR, "out of memory");
	for (j = 0; j < t->ncols; j++)
		cap->pos[ti][j] = -1;
	rc = sqlite3_prepare_v2(cap->db, "SELECT cid, name, type FROM "
	                        "pragma_table_info(?)", -1, &st, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		int cid = sqlite3_column_int(st, 0);

		rc = SQLITE_OK;
		if (name && !strcmp(name, "id"))
			cap->idpos[ti] = cid;
		for (j = 0; name && j < t->ncols; j++)
			if (!strcmp(t->cols[j].name, name)) {
				cap->pos[ti][j] = cid;
				if (t->cols[j].kind == FS_KIND_TEXT &&
				    !keeps_text((const char *)sqlite3_column_text(st, 2)))
					bad = t->cols[j].name;
			}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(e, cap->db, rc, "reading the fields to capture");
	for (j = 0; j < t->ncols && cap->pos[ti][j] >= 0; j++)
		;
	if (cap->idpos[ti] < 0 || j < t->ncols)
		return fs_err__set(e, FS_ECORRUPT, "table %s lacks a field its "
		                   "schema names", t->name);
	if (bad)
		return fs_err__set(e, FS_ECORRUPT, "field %s.%s is text but its "
		                   "column's type would store numbers", t->name, bad);
	return 0;
}

int fs_capture__bind(fs_capture *cap, const fs_schema *s, fs_err *e)
{
	size_t i, n = s->ntables ? s->ntables : 1;

	unbind(cap);
	cap->idpos = calloc(n, sizeof(*cap->idpos));
	cap->pos = calloc(n, sizeof(*cap->pos));
	if (!cap->idpos || !cap->pos) {
		free(cap->idpos);
		free(cap->pos);
		cap->idpos = NULL;
		cap->pos = NULL;
		return fs_err__set(e, FS_ERROR, "out of memory");
	}
	cap->schema = s;
	for (i = 0; i < s->ntables; i++)
		if (bind_table(cap, i, &s->tables[i], e) < 0) {
			unbind(cap);
			return e->code;
		}
	hook_set(cap);   /* only now: a server's connections never capture */
	return 0;
}

int fs_capture__switch(fs_capture *cap, int on)
{
	int was = cap->on;

	cap->on = on;
	if (cap->db)
		hook_set(cap);
	return was;
}

/* ------------------------------------------------------------ flushing */

void fs_capture__self(fs_capture *cap, const fs_table *t)
{
	cap->self_t = t;
	cap->self_noted = 0;
}

size_t fs_capture__mark(const fs_capture *cap)
{
	return cap->n;
}

void fs_capture__discard(fs_capture *cap, size_t mark)
{
	if (mark >= cap->n)
		return;
	cap->arena.len = cap->notes[mark].rid.off;
	cap->n = mark;
	if (mark == 0)
		fs_buf_clear(&cap->arena);
}

#define FLUSH_ROWS 64
#define NOTE_PARAMS 8

static const int flush_sizes[3] = { FLUSH_ROWS, 8, 1 };

static void rows_stmts_free(fs_capture *cap)
{
	int i;

	for (i = 0; i < 3; i++) {
		sqlite3_finalize(cap->ins[i]);
		cap->ins[i] = NULL;
	}
}

const char *fs_capture__device(const fs_capture *cap, const char *dev)
{
	return dev && *dev ? dev : cap->device;
}

/* The INSERT of flush_sizes[slot] log rows, prepared once. */
static sqlite3_stmt *rows_stmt(fs_capture *cap, int slot, fs_err *e)
{
	fs_buf sql = FS_BUF_INIT;
	int i, rc;

	if (cap->ins[slot])
		return cap->ins[slot];
	/* device '': this replica's own (capture.h). */
	fs_buf_puts(&sql, "INSERT INTO fs_change(tbl, rid, op, col, val, old, "
	            "hlc, base, device) VALUES ");
	for (i = 0; i < flush_sizes[slot]; i++)
		fs_buf_puts(&sql, i ? ",(?,?,?,?,?,?,?,?,'')" : "(?,?,?,?,?,?,?,?,'')");
	if (sql.failed) {
		fs_err__set(e, FS_ERROR, "out of memory");
		return NULL;
	}
	rc = sqlite3_prepare_v3(cap->db, sql.ptr, (int)sql.len,
	                        SQLITE_PREPARE_PERSISTENT, &cap->ins[slot], NULL);
	fs_buf_free(&sql);
	if (rc != SQLITE_OK) {
		fs_err__sqlite(e, cap->db, rc, "writing the change log");
		return NULL;
	}
	return cap->ins[slot];
}

static void bind_str(fs_capture *cap, sqlite3_stmt *st, int idx,
                     fs_capture_str s)
{
	if (s.off == (size_t)-1)
		sqlite3_bind_null(st, idx);
	else
		sqlite3_bind_text(st, idx, cap->arena.ptr + s.off, (int)s.len,
		                  SQLITE_STATIC);
}

/* Binds note x as row i of st, stamped now. */
static void bind_note(fs_capture *cap, sqlite3_stmt *st, int i,
                      const fs_capture_note *x)
{
	int p = i * NOTE_PARAMS;

	sqlite3_bind_text(st, p + 1, x->t->name, -1, SQLITE_STATIC);
	bind_str(cap, st, p + 2, x->rid);
	sqlite3_bind_text(st, p + 3, x->op == 'I' ? "I" : x->op == 'U' ? "U"
	                  : "D", 1, SQLITE_STATIC);
	if (x->col >= 0)
		sqlite3_bind_text(st, p + 4, x->t->cols[x->col].name, -1,
		                  SQLITE_STATIC);
	else
		sqlite3_bind_null(st, p + 4);
	bind_str(cap, st, p + 5, x->val);
	bind_str(cap, st, p + 6, x->old);
	sqlite3_bind_int64(st, p + 7, (sqlite3_int64)fs_hlc__next(&cap->clock,
	                   fs_hlc__wall_ms()));
	sqlite3_bind_int64(st, p + 8, cap->base);
}

/* Drops the first k notes, moving the rest and their strings to the
** front (a note's strings all follow its rid in the arena). */
static void drop_front(fs_capture *cap, size_t k)
{
	size_t base, i;

	if (k >= cap->n) {
		cap->n = 0;
		fs_buf_clear(&cap->arena);
		return;
	}
	base = cap->notes[k].rid.off;
	memmove(cap->arena.ptr, cap->arena.ptr + base, cap->arena.len - base);
	cap->arena.len -= base;
	memmove(cap->notes, cap->notes + k, (cap->n - k) * sizeof(*cap->notes));
	cap->n -= k;
	for (i = 0; i < cap->n; i++) {
		fs_capture_note *x = &cap->notes[i];
		x->rid.off -= base;
		if (x->val.off != (size_t)-1)
			x->val.off -= base;
		if (x->old.off != (size_t)-1)
			x->old.off -= base;
	}
}

int fs_capture__flush(fs_capture *cap, int all, fs_err *e)
{
	size_t done = 0, upto;
	int rc, ret, slot, i;

	if (cap->failed)
		return fs_err__set(e, FS_ERROR, "change capture failed: %s",
		                   cap->why);
	if (cap->arena.failed)
		return fs_err__set(e, FS_ERROR, "change capture failed: out of "
		                   "memory");
	upto = all ? cap->n : cap->n - cap->n % FLUSH_ROWS;
	if (upto == 0)
		return 0;
	if ((rc = clock_ready(cap)) != SQLITE_OK)
		return fs_err__sqlite(e, cap->db, rc, "reading the change clock");
	/* The log's own rows need no note: without the hook SQLite does not
	** prepare a pre-update call for each of them (a third of capture's
	** cost on an update, measured with callgrind). */
	sqlite3_preupdate_hook(cap->db, NULL, NULL);
	for (slot = 0; slot < 3; slot++) {
		int k = flush_sizes[slot];
		sqlite3_stmt *st;

		while (upto - done >= (size_t)k) {
			if (!(st = rows_stmt(cap, slot, e))) {
				ret = e->code;
				drop_front(cap, done);
				goto done;
			}
			for (i = 0; i < k; i++)
				bind_note(cap, st, i, &cap->notes[done + (size_t)i]);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE) {
				/* The statements before this one are in the log. */
				ret = fs_err__sqlite(e, cap->db, rc,
				                     "writing the change log");
				drop_front(cap, done);
				goto done;
			}
			done += (size_t)k;
		}
	}
	drop_front(cap, done);
	ret = 0;
done:
	hook_set(cap);
	return ret;
}

void fs_capture__free(fs_capture *cap)
{
	rows_stmts_free(cap);
	unbind(cap);
	free(cap->notes);
	cap->notes = NULL;
	cap->n = cap->alloc = 0;
	fs_buf_free(&cap->arena);
}

/* ---------------------------------------------------------- creations */

/* An SQL expression building the JSON object of t's fields from the row
** of t named alias. */
static int object_sql(fs_buf *b, const fs_table *t, const char *alias)
{
	size_t i;

	fs_buf_puts(b, "json_object(");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(b, "%s'%s', %s.\"%s\"", i ? ", " : "", t->cols[i].name,
		              alias, t->cols[i].name);
	return fs_buf_putc(b, ')');
}

/* A creation logged without fields, while the log is read. */
typedef struct creation {
	int64_t seq;
	const fs_table *t;
	char *rid;
	char *base;          /* the fields from its 'D' row; NULL: the record */
	char **orig;         /* per field: the value before its first edit */
	int open;            /* no 'D' read yet */
} creation;

/* Open creations by (table, id): open addressing on a 64-bit hash, the
** index into the creations array; collisions told apart by the id. */
typedef struct idmap {
	uint64_t *h;         /* 0: empty */
	size_t *at;
	size_t cap, n;
} idmap;

static uint64_t id_hash(const fs_table *t, const char *rid)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)(uintptr_t)t;
	const unsigned char *p;

	for (p = (const unsigned char *)rid; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= h >> 29;
	return h ? h : 1;
}

static int idmap_put(idmap *m, uint64_t h, size_t at)
{
	size_t i, k, mask;

	if ((m->n + 1) * 2 > m->cap) {
		size_t want = m->cap ? m->cap * 2 : 1024;
		uint64_t *nh = calloc(want, sizeof(*nh));
		size_t *na = malloc(want * sizeof(*na));
		if (!nh || !na) {
			free(nh);
			free(na);
			return -1;
		}
		for (k = 0; k < m->cap; k++) {
			if (!m->h[k])
				continue;
			for (i = m->h[k] & (want - 1); nh[i]; i = (i + 1) & (want - 1))
				;
			nh[i] = m->h[k];
			na[i] = m->at[k];
		}
		free(m->h);
		free(m->at);
		m->h = nh;
		m->at = na;
		m->cap = want;
	}
	mask = m->cap - 1;
	for (i = h & mask; m->h[i]; i = (i + 1) & mask)
		;
	m->h[i] = h;
	m->at[i] = at;
	m->n++;
	return 0;
}

/* The open creation of (t, rid), or NULL; *slot: its slot. */
static creation *idmap_find(const idmap *m, creation *cs, const fs_table *t,
                            const char *rid, size_t *slot)
{
	uint64_t h = id_hash(t, rid);
	size_t i, mask = m->cap - 1;

	if (!m->cap)
		return NULL;
	for (i = h & mask; m->h[i]; i = (i + 1) & mask) {
		creation *c = &cs[m->at[i]];
		if (m->h[i] == h && c->open && c->t == t && !strcmp(c->rid, rid)) {
			*slot = i;
			return c;
		}
	}
	return NULL;
}

/* Empties slot i, moving later entries of its probe run back. */
static void idmap_del(idmap *m, size_t i)
{
	size_t mask = m->cap - 1, j = i, home;

	m->h[i] = 0;
	m->n--;
	for (;;) {
		j = (j + 1) & mask;
		if (!m->h[j])
			return;
		home = m->h[j] & mask;
		/* Entry j may move to the hole unless its home is in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			m->h[i] = m->h[j];
			m->at[i] = m->at[j];
			m->h[j] = 0;
			i = j;
		}
	}
}

typedef struct rebuild {
	fs_buf *out;
	const creation *c;
	int first;
} rebuild;

static int put_member(void *payload, const fs_json_member *m)
{
	rebuild *rb = payload;
	const fs_table *t = rb->c->t;
	size_t i;

	fs_buf_puts(rb->out, rb->first ? "" : ",");
	rb->first = 0;
	fs_json__strn(rb->out, m->key, m->klen);
	fs_buf_putc(rb->out, ':');
	for (i = 0; i < t->ncols; i++)
		if (strlen(t->cols[i].name) == m->klen &&
		    !memcmp(t->cols[i].name, m->key, m->klen))
			break;
	if (i < t->ncols && rb->c->orig[i])
		return fs_buf_puts(rb->out, rb->c->orig[i]) < 0;
	if (m->type == FS_JSON_INT && !m->val)   /* true or false */
		return fs_buf_puts(rb->out, m->i ? "true" : "false") < 0;
	switch (m->type) {
	case FS_JSON_NULL:
		return fs_buf_puts(rb->out, "null") < 0;
	case FS_JSON_TEXT:
		return fs_json__strn(rb->out, m->val, m->vlen) < 0;
	default:
		return fs_buf_put(rb->out, m->val, m->vlen) < 0;
	}
}

/* Writes creation c's JSON into out: its base object (the record now, or
** its 'D' row) with each field edited since at its first edit's old. */
static int creation_json(fs_buf *out, const creation *c, const char *base,
                         fs_err *e)
{
	rebuild rb = { out, c, 1 };
	int rc;

	fs_buf_clear(out);
	if (!c->orig)
		return fs_buf_puts(out, base) < 0
		       ? fs_err__set(e, FS_ERROR, "out of memory") : 0;
	fs_buf_putc(out, '{');
	if ((rc = fs_json__object_each(base, strlen(base), put_member, &rb, e)))
		return rc < 0 ? rc : fs_err__set(e, FS_ERROR, "out of memory");
	fs_buf_putc(out, '}');
	return out->failed ? fs_err__set(e, FS_ERROR, "out of memory") : 0;
}

/* Reads the log from after on: the first max creations without fields
** there, the first old value of each field edited after them, the 'D'
** rows ending them.  *last: the seq of the max-th creation, or INT64_MAX
** when there were no more than max. */
static int read_creations(creation **out, size_t *nout, int64_t *last,
                          sqlite3 *db, const fs_schema *s, int64_t after,
                          size_t max, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	creation *cs = NULL;
	idmap m = { NULL, NULL, 0, 0 };
	size_t n = 0, alloc = 0, slot;
	int rc, full = 0;

	rc = sqlite3_prepare_v2(db, "SELECT seq, tbl, rid, op, col, val, old "
	                        "FROM fs_change WHERE seq > ? AND "
	                        "op IN ('I', 'U', 'D') ORDER BY seq", -1, &st,
	                        NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_int64(st, 1, after);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const fs_table *t = fs_schema__table(s,
		        (const char *)sqlite3_column_text(st, 1));
		const char *rid = (const char *)sqlite3_column_text(st, 2);
		char op = *(const char *)sqlite3_column_text(st, 3);
		creation *c;

		rc = SQLITE_OK;
		/* By table name only (fs_schema__table also takes nouns). */
		if (!t || !rid || strcmp(t->name, (const char *)
		                         sqlite3_column_text(st, 1)))
			continue;
		if (op == 'I') {
			if (sqlite3_column_type(st, 5) != SQLITE_NULL)
				continue;   /* has its fields */
			if (idmap_find(&m, cs, t, rid, &slot)) {
				cs[m.at[slot]].open = 0;   /* made again: ends the first */
				idmap_del(&m, slot);
			}
			if (n == max) {
				full = 1;   /* the next window's; read on for edits */
				continue;
			}
			if (n == alloc) {
				size_t want = alloc ? alloc * 2 : 64;
				creation *p = realloc(cs, want * sizeof(*p));
				if (!p)
					goto oom;
				cs = p;
				alloc = want;
			}
			c = &cs[n];
			memset(c, 0, sizeof(*c));
			c->seq = sqlite3_column_int64(st, 0);
			c->t = t;
			c->open = 1;
			if (!(c->rid = strdup(rid)))
				goto oom;
			if (idmap_put(&m, id_hash(t, rid), n++))
				goto oom;
			continue;
		}
		if (!(c = idmap_find(&m, cs, t, rid, &slot)))
			continue;
		if (op == 'D') {
			const char *v = (const char *)sqlite3_column_text(st, 5);
			if (v && !(c->base = strdup(v)))
				goto oom;
			c->open = 0;
			idmap_del(&m, slot);
		} else {
			const fs_column *col = fs_schema__column(t,
			        (const char *)sqlite3_column_text(st, 4));
			const char *old = (const char *)sqlite3_column_text(st, 6);
			size_t i;
			if (!col || !old)
				continue;   /* an edit logged by an older version */
			i = (size_t)(col - t->cols);
			if (!c->orig && !(c->orig = calloc(t->ncols, sizeof(char *))))
				goto oom;
			if (!c->orig[i] && !(c->orig[i] = strdup(old)))
				goto oom;
		}
	}
	sqlite3_finalize(st);
	free(m.h);
	free(m.at);
	*out = cs;
	*nout = n;
	*last = full ? cs[n - 1].seq : INT64_MAX;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(e, db, rc, "reading the change log");
	return 0;
oom:
	sqlite3_finalize(st);
	free(m.h);
	free(m.at);
	*out = cs;
	*nout = n;   /* the entries made whole: only they hold memory */
	return fs_err__set(e, FS_ERROR, "out of memory");
}

static void free_creations(creation *cs, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		free(cs[i].rid);
		free(cs[i].base);
		for (j = 0; cs[i].orig && j < cs[i].t->ncols; j++)
			free(cs[i].orig[j]);
		free(cs[i].orig);
	}
	free(cs);
}

/* The statement reading a record of t as a JSON object, prepared once per
** table (creations of several tables come interleaved in the log). */
static sqlite3_stmt *record_stmt(sqlite3_stmt **sts, sqlite3 *db,
                                 const fs_schema *s, const fs_table *t,
                                 fs_err *e)
{
	sqlite3_stmt **st = &sts[t - s->tables];
	fs_buf sql = FS_BUF_INIT;
	int rc;

	if (*st)
		return *st;
	fs_buf_puts(&sql, "SELECT ");
	object_sql(&sql, t, "r");
	fs_buf_printf(&sql, " FROM \"%s\" r WHERE r.id = ?", t->name);
	if (sql.failed) {
		fs_err__set(e, FS_ERROR, "out of memory");
		return NULL;
	}
	rc = sqlite3_prepare_v2(db, sql.ptr, -1, st, NULL);
	fs_buf_free(&sql);
	if (rc != SQLITE_OK) {
		fs_err__sqlite(e, db, rc, "reading a created record");
		return NULL;
	}
	return *st;
}

int fs_capture__creations(sqlite3 *db, const fs_schema *s, int64_t after,
                          size_t max, int64_t *last,
                          fs_capture_creation_cb cb, void *payload,
                          fs_err *e)
{
	creation *cs = NULL;
	sqlite3_stmt **sts = NULL, *st;
	fs_buf json = FS_BUF_INIT;
	size_t n = 0, i;
	int rc, error = -1;

	*last = INT64_MAX;
	if ((rc = read_creations(&cs, &n, last, db, s, after, max ? max : 1,
	                         e)) < 0)
		goto done;
	if (n && !(sts = calloc(s->ntables, sizeof(*sts)))) {
		fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		const creation *c = &cs[i];
		const char *base = c->base;

		st = NULL;
		if (!base && c->open) {
			/* Not deleted: the record as it is. */
			if (!(st = record_stmt(sts, db, s, c->t, e)))
				goto done;
			sqlite3_bind_text(st, 1, c->rid, -1, SQLITE_STATIC);
			if ((rc = sqlite3_step(st)) == SQLITE_ROW)
				base = (const char *)sqlite3_column_text(st, 0);
			else if (rc != SQLITE_DONE) {
				fs_err__sqlite(e, db, rc, "reading a created record");
				sqlite3_reset(st);
				goto done;
			}
		}
		rc = base ? creation_json(&json, c, base, e) : 0;
		if (st)
			sqlite3_reset(st);
		if (rc < 0)
			goto done;
		if (base && (rc = cb(payload, c->seq, json.ptr)) != 0) {
			error = rc;   /* the callback's: < 0 with e set, or > 0 */
			goto done;
		}
	}
	error = 0;
done:
	for (i = 0; sts && i < s->ntables; i++)
		sqlite3_finalize(sts[i]);
	free(sts);
	free_creations(cs, n);
	fs_buf_free(&json);
	return error == -1 ? e->code : error;
}

typedef struct settling {
	sqlite3 *db;
	sqlite3_stmt *st;
	fs_err *e;
} settling;

static int settle_one(void *payload, int64_t seq, const char *json)
{
	settling *x = payload;
	int rc;

	sqlite3_bind_text(x->st, 1, json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(x->st, 2, seq);
	rc = sqlite3_step(x->st);
	sqlite3_reset(x->st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(x->e, x->db, rc, "settling a created record");
	return 0;
}

int fs_capture__settle(sqlite3 *db, const fs_schema *s, int64_t after,
                       size_t window, int64_t *last, fs_err *e)
{
	settling x = { db, NULL, e };
	int rc;

	*last = INT64_MAX;
	rc = sqlite3_prepare_v2(db, "UPDATE fs_change SET val = ?1 WHERE seq = "
	                        "?2 AND op = 'I' AND val IS NULL", -1, &x.st, NULL);
	if (rc != SQLITE_OK)
		return fs_err__sqlite(e, db, rc, "settling created records");
	rc = fs_capture__creations(db, s, after, window, last, settle_one, &x,
	                           e);
	sqlite3_finalize(x.st);
	return rc;
}

/* ------------------------------------------------------------ install */

static int build_triggers(fs_buf *b, const fs_table *t)
{
	return fs_buf_printf(b,
	        "CREATE TRIGGER \"fs_cap_%s_id\" BEFORE UPDATE OF id ON \"%s\" "
	        "WHEN old.id IS NOT new.id BEGIN "
	        "SELECT RAISE(ABORT, 'record ids cannot change'); END;\n",
	        t->name, t->name);
}

int fs_capture__install(sqlite3 *db, const fs_schema *s, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	fs_buf sql = FS_BUF_INIT;
	char *msg = NULL;
	int rc, error = -1;
	size_t i;

	/* Drop the old generation first: a migration may have added columns. */
	rc = sqlite3_prepare_v2(db,
	        "SELECT name FROM sqlite_master WHERE type='trigger' "
	        "AND name LIKE 'fs\\_cap\\_%' ESCAPE '\\'", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fs_buf_printf(&sql, "DROP TRIGGER \"%s\";\n",
		              (const char *)sqlite3_column_text(st, 0));
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < s->ntables; i++)
		build_triggers(&sql, &s->tables[i]);
	/* The value an edit replaced (capture.h): local to a replica, added
	** here rather than by a migration of the shared schema. */
	if (s->ntables) {
		rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info("
		                        "'fs_change') WHERE name = 'old'", -1, &st,
		                        NULL);
		if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW)
			goto sqlfail;
		if (!sqlite3_column_int(st, 0))
			fs_buf_puts(&sql, "ALTER TABLE fs_change ADD COLUMN old TEXT;\n");
		sqlite3_finalize(st);
		st = NULL;
	}
	if (sql.failed) {
		fs_err__set(e, FS_ERROR, "out of memory building capture triggers");
		goto done;
	}
	rc = sqlite3_exec(db, sql.ptr, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		fs_err__set(e, FS_ERROR, "installing capture triggers: %s",
		            msg ? msg : sqlite3_errstr(rc));
		goto done;
	}
	error = 0;
	goto done;
sqlfail:
	fs_err__sqlite(e, db, rc, "installing capture triggers");
done:
	sqlite3_free(msg);
	sqlite3_finalize(st);
	fs_buf_free(&sql);
	return error ? e->code : 0;
}
