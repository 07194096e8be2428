/*
** capture.c -- change-capture triggers and their SQL functions.
** See capture.h for the design.
*/
#include "capture.h"

#include <string.h>

#include "buf.h"
#include "fieldsync.h"

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

static int on_commit(void *p)
{
	((fs_capture *)p)->synced = 0;
	return 0;
}

static void on_rollback(void *p)
{
	((fs_capture *)p)->synced = 0;
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

static int build_triggers(fs_buf *b, const fs_table *t)
{
	size_t i;

	fs_buf_printf(b,
	        "CREATE TRIGGER \"fs_cap_%s_i\" AFTER INSERT ON \"%s\" "
	        "WHEN fs_capturing() BEGIN INSERT INTO fs_change"
	        "(tbl, rid, op, val, hlc, device, base) VALUES ('%s', new.id, 'I', "
	        "json_object(", t->name, t->name, t->name);
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(b, "%s'%s', new.\"%s\"", i ? ", " : "",
		              t->cols[i].name, t->cols[i].name);
	fs_buf_puts(b, "), fs_hlc_next(), fs_device(), fs_base()); END;\n");

	for (i = 0; i < t->ncols; i++) {
		const char *c = t->cols[i].name;
		fs_buf_printf(b,
		        "CREATE TRIGGER \"fs_cap_%s_u_%s\" AFTER UPDATE OF \"%s\" "
		        "ON \"%s\" WHEN fs_capturing() AND old.\"%s\" IS NOT "
		        "new.\"%s\" BEGIN INSERT INTO fs_change"
		        "(tbl, rid, op, col, val, hlc, device, base) VALUES ('%s', "
		        "new.id, 'U', '%s', json_quote(new.\"%s\"), fs_hlc_next(), "
		        "fs_device(), fs_base()); END;\n", t->name, c, c, t->name, c, c,
		        t->name, c, c);
	}
	fs_buf_printf(b,
	        "CREATE TRIGGER \"fs_cap_%s_d\" AFTER DELETE ON \"%s\" "
	        "WHEN fs_capturing() BEGIN INSERT INTO fs_change"
	        "(tbl, rid, op, hlc, device, base) VALUES ('%s', old.id, 'D', "
	        "fs_hlc_next(), fs_device(), fs_base()); END;\n", t->name, t->name, t->name);
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
