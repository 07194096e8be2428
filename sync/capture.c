/*
** capture.c -- change capture: the pre-update hook that notes every write
** to a synced table, the flush that logs the notes, and the settling of
** creations before a push.  See capture.h for the design.
*/
#include "capture.h"

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

static void fn_hlc_next(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	if (!cap->synced) {
		if (sync_clock(cap) != SQLITE_OK) {
			sqlite3_result_error(ctx, "cannot read the change clock", -1);
			return;
		}
		cap->synced = 1;
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

static void fn_capturing(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	fs_capture *cap = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	sqlite3_result_int(ctx, cap->on);
}

/* A transaction must not commit with notes not yet in fs_change: that
** would put a write on disk without its log rows.  Returning non-zero
** turns the COMMIT into a ROLLBACK. */
static int on_commit(void *p)
{
	fs_capture *cap = p;

	cap->synced = 0;
	return cap->n != 0;
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

/* Appends v as JSON to the arena, as json_quote() writes it. */
static int put_value(fs_capture *cap, sqlite3_value *v)
{
	char num[64];

	switch (sqlite3_value_type(v)) {
	case SQLITE_NULL:
		return fs_buf_put(&cap->arena, "null", 4);
	case SQLITE_INTEGER:
		snprintf(num, sizeof(num), "%lld",
		         (long long)sqlite3_value_int64(v));
		return fs_buf_puts(&cap->arena, num);
	case SQLITE_FLOAT:
		sqlite3_snprintf((int)sizeof(num), num, "%!0.15g",
		                 sqlite3_value_double(v));
		return fs_buf_puts(&cap->arena, num);
	case SQLITE_TEXT:
		return fs_json__strn(&cap->arena,
		                     (const char *)sqlite3_value_text(v),
		                     (size_t)sqlite3_value_bytes(v));
	default:
		note_fail(cap, "a field holds binary data, which JSON cannot");
		return -1;
	}
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
	case SQLITE_TEXT:
		pa = sqlite3_value_text(a);
		pb = sqlite3_value_text(b);
		break;
	default:
		pa = sqlite3_value_blob(a);
		pb = sqlite3_value_blob(b);
		break;
	}
	n = sqlite3_value_bytes(a);
	return n != sqlite3_value_bytes(b) ||
	       (n && memcmp(pa, pb, (size_t)n) != 0);
}

/* Starts a note of op on the record whose id is rid. */
static fs_capture_note *note_add(fs_capture *cap, const fs_table *t, char op,
                                 sqlite3_value *rid)
{
	fs_capture_note *x;

	if (sqlite3_value_type(rid) != SQLITE_TEXT) {
		note_fail(cap, "a record's id is not text");
		return NULL;
	}
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
	x->rid = cap->arena.len;
	x->ridlen = (size_t)sqlite3_value_bytes(rid);
	x->val = (size_t)-1;
	x->vallen = 0;
	if (fs_buf_put(&cap->arena, sqlite3_value_text(rid), x->ridlen) < 0) {
		note_fail(cap, "out of memory noting a change");
		return NULL;
	}
	cap->n++;
	return x;
}

/* Ends note x's value, which was appended to the arena from at on. */
static void note_val(fs_capture *cap, fs_capture_note *x, size_t at)
{
	x->val = at;
	x->vallen = cap->arena.len - at;
	if (cap->arena.failed)
		note_fail(cap, "out of memory noting a change");
}

/* The deleted record's fields, as one JSON object. */
static void note_deleted(fs_capture *cap, sqlite3 *db, size_t ti,
                         fs_capture_note *x)
{
	const fs_table *t = x->t;
	size_t i, at = cap->arena.len;
	sqlite3_value *v;

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
		if (put_value(cap, v) < 0)
			return;
	}
	fs_buf_putc(&cap->arena, '}');
	note_val(cap, x, at);
}

/* Whether the row of t with id is the one the library said it updates. */
static int expected(const fs_capture *cap, const fs_table *t,
                    sqlite3_value *id)
{
	size_t n;

	if (cap->hint_t != t || sqlite3_value_type(id) != SQLITE_TEXT)
		return 0;
	n = strlen(cap->hint_id);
	return (size_t)sqlite3_value_bytes(id) == n &&
	       !memcmp(sqlite3_value_text(id), cap->hint_id, n);
}

/* One 'U' note per field whose value changed. */
static void note_updated(fs_capture *cap, sqlite3 *db, size_t ti,
                         const fs_table *t, sqlite3_value *id)
{
	fs_capture_note *x;
	sqlite3_value *a, *b;
	size_t k, i, at, n = t->ncols;
	const int *only = NULL;

	if (expected(cap, t, id)) {
		only = cap->hint_cols;
		n = cap->hint_n;
	}
	for (k = 0; k < n; k++) {
		i = only ? (size_t)only[k] : k;
		if (sqlite3_preupdate_old(db, cap->pos[ti][i], &a) != SQLITE_OK ||
		    sqlite3_preupdate_new(db, cap->pos[ti][i], &b) != SQLITE_OK) {
			note_fail(cap, "cannot read the row being updated");
			return;
		}
		if (!differ(a, b))
			continue;
		if (!(x = note_add(cap, t, 'U', id)))
			return;
		x->col = (int)i;
		at = cap->arena.len;
		if (put_value(cap, b) < 0)
			return;
		note_val(cap, x, at);
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

	(void)k1;
	(void)k2;
	if (!cap->on || !s || cap->failed || strcmp(zdb, "main"))
		return;
	for (ti = 0; ti < s->ntables && !t; ti++)
		if (!strcmp(s->tables[ti].name, ztab))
			t = &s->tables[ti];
	if (!t)
		return;
	ti--;
	if (op == SQLITE_INSERT) {
		if (sqlite3_preupdate_new(db, cap->idpos[ti], &id) != SQLITE_OK)
			note_fail(cap, "cannot read the row being inserted");
		else
			note_add(cap, t, 'I', id);
		return;
	}
	if (sqlite3_preupdate_old(db, cap->idpos[ti], &id) != SQLITE_OK) {
		note_fail(cap, "cannot read the row being written");
		return;
	}
	if (op == SQLITE_DELETE) {
		if ((x = note_add(cap, t, 'D', id)) != NULL)
			note_deleted(cap, db, ti, x);
	} else {
		note_updated(cap, db, ti, t, id);
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
		rc = sqlite3_create_function(db, "fs_capturing", 0, SQLITE_UTF8,
		                             cap, fn_capturing, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "fs_base", 0, SQLITE_UTF8, cap,
		                             fn_base, NULL, NULL);
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

/* Where table t's id and fields sit in its SQL row. */
static int bind_table(fs_capture *cap, size_t ti, const fs_table *t,
                      fs_err *e)
{
	sqlite3_stmt *st = NULL;
	size_t j;
	int rc;

	cap->idpos[ti] = -1;
	if (!(cap->pos[ti] = malloc((t->ncols ? t->ncols : 1) * sizeof(int))))
		return fs_err__set(e, FS_ERROR, "out of memory");
	for (j = 0; j < t->ncols; j++)
		cap->pos[ti][j] = -1;
	rc = sqlite3_prepare_v2(cap->db, "SELECT cid, name FROM "
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
			if (!strcmp(t->cols[j].name, name))
				cap->pos[ti][j] = cid;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(e, cap->db, rc, "reading the fields to capture");
	for (j = 0; j < t->ncols && cap->pos[ti][j] >= 0; j++)
		;
	if (cap->idpos[ti] < 0 || j < t->ncols)
		return fs_err__set(e, FS_ECORRUPT, "table %s lacks a field its "
		                   "schema names", t->name);
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
	/* Only now: a server's connections, which never capture, do not pay
	** for the hook on every write. */
	sqlite3_preupdate_hook(cap->db, on_preupdate, cap);
	return 0;
}

/* ------------------------------------------------------------ flushing */

void fs_capture__expect(fs_capture *cap, const fs_table *t, const char *id,
                        const int *cols, size_t n)
{
	cap->hint_t = n ? t : NULL;
	cap->hint_id = id;
	cap->hint_cols = cols;
	cap->hint_n = n;
}

size_t fs_capture__mark(const fs_capture *cap)
{
	return cap->n;
}

void fs_capture__discard(fs_capture *cap, size_t mark)
{
	if (mark >= cap->n)
		return;
	cap->arena.len = cap->notes[mark].rid;
	cap->n = mark;
	if (mark == 0)
		fs_buf_clear(&cap->arena);
}

#define FLUSH_ROWS 64

static const int flush_sizes[3] = { FLUSH_ROWS, 8, 1 };

/* The INSERT of flush_sizes[slot] log rows, prepared once. */
static sqlite3_stmt *rows_stmt(fs_capture *cap, int slot, fs_err *e)
{
	fs_buf sql = FS_BUF_INIT;
	int i, rc;

	if (cap->ins[slot])
		return cap->ins[slot];
	fs_buf_puts(&sql, "INSERT INTO fs_change(tbl, rid, op, col, val, hlc, "
	            "device, base) VALUES ");
	for (i = 0; i < flush_sizes[slot]; i++)
		fs_buf_puts(&sql, i ? ",(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?)");
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

/* Binds note x as row i of st, stamped now. */
static void bind_note(fs_capture *cap, sqlite3_stmt *st, int i,
                      const fs_capture_note *x)
{
	const char *a = cap->arena.ptr;
	int p = i * 8;

	sqlite3_bind_text(st, p + 1, x->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, p + 2, a + x->rid, (int)x->ridlen, SQLITE_STATIC);
	sqlite3_bind_text(st, p + 3, x->op == 'I' ? "I" : x->op == 'U' ? "U"
	                  : "D", 1, SQLITE_STATIC);
	if (x->col >= 0)
		sqlite3_bind_text(st, p + 4, x->t->cols[x->col].name, -1,
		                  SQLITE_STATIC);
	else
		sqlite3_bind_null(st, p + 4);
	if (x->val != (size_t)-1)
		sqlite3_bind_text(st, p + 5, a + x->val, (int)x->vallen,
		                  SQLITE_STATIC);
	else
		sqlite3_bind_null(st, p + 5);
	sqlite3_bind_int64(st, p + 6, (sqlite3_int64)fs_hlc__next(&cap->clock,
	                   fs_hlc__wall_ms()));
	sqlite3_bind_text(st, p + 7, cap->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, p + 8, cap->base);
}

/* Drops the first k notes, moving the rest and their strings to the
** front. */
static void drop_front(fs_capture *cap, size_t k)
{
	size_t base, i;

	if (k >= cap->n) {
		fs_capture__discard(cap, 0);
		return;
	}
	base = cap->notes[k].rid;
	memmove(cap->arena.ptr, cap->arena.ptr + base, cap->arena.len - base);
	cap->arena.len -= base;
	memmove(cap->notes, cap->notes + k, (cap->n - k) * sizeof(*cap->notes));
	cap->n -= k;
	for (i = 0; i < cap->n; i++) {
		cap->notes[i].rid -= base;
		if (cap->notes[i].val != (size_t)-1)
			cap->notes[i].val -= base;
	}
}

int fs_capture__flush(fs_capture *cap, int all, size_t *written, fs_err *e)
{
	size_t done = 0, upto;
	int rc, slot, i;

	if (written)
		*written = 0;
	if (cap->failed)
		return fs_err__set(e, FS_ERROR, "change capture failed: %s",
		                   cap->why);
	upto = all ? cap->n : cap->n - cap->n % FLUSH_ROWS;
	if (upto == 0)
		return 0;
	if (!cap->synced) {
		if ((rc = sync_clock(cap)) != SQLITE_OK)
			return fs_err__sqlite(e, cap->db, rc,
			                      "reading the change clock");
		cap->synced = 1;
	}
	for (slot = 0; slot < 3; slot++) {
		int k = flush_sizes[slot];
		sqlite3_stmt *st;

		while (upto - done >= (size_t)k) {
			if (!(st = rows_stmt(cap, slot, e)))
				return e->code;
			for (i = 0; i < k; i++)
				bind_note(cap, st, i, &cap->notes[done + (size_t)i]);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				return fs_err__sqlite(e, cap->db, rc,
				                      "writing the change log");
			done += (size_t)k;
		}
	}
	drop_front(cap, done);
	if (written)
		*written = done;
	return 0;
}

void fs_capture__free(fs_capture *cap)
{
	int i;

	for (i = 0; i < 3; i++) {
		sqlite3_finalize(cap->ins[i]);
		cap->ins[i] = NULL;
	}
	unbind(cap);
	free(cap->notes);
	cap->notes = NULL;
	cap->n = cap->alloc = 0;
	fs_buf_free(&cap->arena);
}

/* ----------------------------------------------------------- settling */

int fs_capture__object_sql(fs_buf *b, const fs_table *t, const char *alias)
{
	size_t i;

	fs_buf_puts(b, "json_object(");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(b, "%s'%s', %s.\"%s\"", i ? ", " : "", t->cols[i].name,
		              alias, t->cols[i].name);
	return fs_buf_putc(b, ')');
}

int fs_capture__settle(sqlite3 *db, const fs_schema *s, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	fs_buf sql = FS_BUF_INIT;
	char *msg = NULL;
	int rc, error = -1, gone = 0;

	/* Which tables have creations to settle (one pass over the log). */
	rc = sqlite3_prepare_v2(db, "SELECT DISTINCT tbl FROM fs_change WHERE "
	                        "op = 'I' AND val IS NULL", -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const fs_table *t = fs_schema__table(s,
		        (const char *)sqlite3_column_text(st, 0));
		rc = SQLITE_OK;
		if (!t)
			continue;   /* not a table we know: left for the server */
		fs_buf_printf(&sql, "UPDATE fs_change SET val = (SELECT ");
		fs_capture__object_sql(&sql, t, "r");
		fs_buf_printf(&sql, " FROM \"%s\" r WHERE r.id = fs_change.rid) "
		              "WHERE op = 'I' AND val IS NULL AND tbl = '%s';\n",
		              t->name, t->name);
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);
	st = NULL;
	if (sql.failed) {
		fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	if (sql.len && (rc = sqlite3_exec(db, sql.ptr, NULL, NULL, &msg)) !=
	    SQLITE_OK)
		goto execfail;
	/* Records deleted before they were pushed: their 'D' row kept the
	** fields.  Rare, so the deletes are indexed here, not on every
	** write. */
	rc = sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM fs_change "
	                        "WHERE op = 'I' AND val IS NULL)", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		gone = sqlite3_column_int(st, 0);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);   /* DROP TABLE below needs no statement open */
	st = NULL;
	if (gone && (rc = sqlite3_exec(db,
	        "CREATE TEMP TABLE fs_gone AS SELECT tbl, rid, seq, val FROM "
	        "fs_change WHERE op = 'D';"
	        "CREATE INDEX temp.fs_gone_rid ON fs_gone(tbl, rid, seq);"
	        "UPDATE fs_change SET val = (SELECT g.val FROM temp.fs_gone g "
	        "WHERE g.tbl = fs_change.tbl AND g.rid = fs_change.rid AND "
	        "g.seq > fs_change.seq ORDER BY g.seq LIMIT 1) "
	        "WHERE op = 'I' AND val IS NULL;"
	        "DROP TABLE temp.fs_gone;", NULL, NULL, &msg)) != SQLITE_OK)
		goto execfail;
	error = 0;
	goto done;
execfail:
	fs_err__set(e, FS_ERROR, "settling created records in the change log: %s",
	            msg ? msg : sqlite3_errstr(rc));
	goto done;
sqlfail:
	fs_err__sqlite(e, db, rc, "settling created records in the change log");
done:
	sqlite3_free(msg);
	sqlite3_finalize(st);
	fs_buf_free(&sql);
	return error ? e->code : 0;
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
	for (i = 0; i < s->ntables; i++)
		build_triggers(&sql, &s->tables[i]);
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
