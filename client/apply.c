/*
** apply.c -- writing changes that came from elsewhere: a record created,
** a field updated, a record deleted, as decoded from the sync protocol.
**
** Used by the server's merge (server/store.c) and by the client when it
** pulls.  Values arrive as JSON (an object of fields for a creation, a
** JSON scalar for a field); SQLite's json_each/json_extract decode them.
** Fields this schema does not know are skipped, never an error: a client
** one schema version behind keeps syncing.  Capture is off while these run
** (fs_replica__capture_off), so nothing applied here is pushed back.
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fs_replica__capture(fs_replica *r, int on)
{
	int was = r->cap.on;

	r->cap.on = on;
	return was;
}

int fs_replica__apply_insert(fs_replica *r, const fs_table *t,
                             const char *rid, const char *json)
{
	sqlite3_stmt *each = NULL, *st = NULL;
	sqlite3_value **vals = NULL;
	const fs_column **cols = NULL;
	fs_buf sql = FS_BUF_INIT;
	size_t n = 0, i;
	int rc, error = -1;

	vals = calloc(t->ncols + 1, sizeof(*vals));
	cols = calloc(t->ncols + 1, sizeof(*cols));
	if (!vals || !cols) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if (fs_replica__prepare(&each, r,
	        "SELECT key, value FROM json_each(?1) WHERE json_type(?1) = 'object'") < 0)
		goto done;
	sqlite3_bind_text(each, 1, json ? json : "{}", -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(each)) == SQLITE_ROW) {
		const fs_column *c = fs_schema__column(t,
		        (const char *)sqlite3_column_text(each, 0));
		if (!c || n == t->ncols)
			continue;
		vals[n] = sqlite3_value_dup(sqlite3_column_value(each, 1));
		if (!vals[n]) {
			fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		cols[n++] = c;
	}
	if (rc != SQLITE_DONE) {
		fs_err__set(&r->err, FS_ECORRUPT, "%s %s: malformed record JSON",
		            t->noun, rid);
		goto done;
	}
	/* INSERT OR REPLACE: a record already here (a replayed creation) takes
	** the fields given. */
	fs_buf_puts(&sql, "INSERT OR REPLACE INTO \"");
	fs_buf_puts(&sql, t->name);
	fs_buf_puts(&sql, "\"(id");
	for (i = 0; i < n; i++) {
		fs_buf_puts(&sql, ", \"");
		fs_buf_puts(&sql, cols[i]->name);
		fs_buf_putc(&sql, '"');
	}
	fs_buf_puts(&sql, ") VALUES (?");
	for (i = 0; i < n; i++)
		fs_buf_puts(&sql, ", ?");
	fs_buf_putc(&sql, ')');
	if (sql.failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if (fs_replica__prepare(&st, r, sql.ptr) < 0)
		goto done;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	for (i = 0; i < n; i++)
		sqlite3_bind_value(st, (int)i + 2, vals[i]);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		fs_err__sqlite(&r->err, r->db, rc, t->noun);
		goto done;
	}
	error = 0;
done:
	fs_replica__finish(r, each);
	fs_replica__finish(r, st);
	if (vals)
		for (i = 0; i < n; i++)
			sqlite3_value_free(vals[i]);
	free(vals);
	free(cols);
	fs_buf_free(&sql);
	return error ? r->err.code : 0;
}

int fs_replica__apply_update(fs_replica *r, const fs_table *t,
                             const char *rid, const fs_column *c,
                             const char *json_value)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	int rc;

	snprintf(sql, sizeof(sql),
	         "UPDATE \"%s\" SET \"%s\" = json_extract(?1, '$') WHERE id = ?2",
	         t->name, c->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, json_value ? json_value : "null", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, t->noun);
	return 0;
}

int fs_replica__apply_delete(fs_replica *r, const fs_table *t, const char *rid)
{
	sqlite3_stmt *st = NULL;
	char sql[128];
	int rc;

	snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE id = ?", t->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, t->noun);
	return 0;
}

int fs_replica__field_json(char **out, fs_replica *r, const fs_table *t,
                           const char *rid, const char *col)
{
	sqlite3_stmt *st = NULL;
	fs_buf sql = FS_BUF_INIT;
	size_t i;
	int rc;

	*out = NULL;
	if (col && *col) {
		fs_buf_puts(&sql, "SELECT json_quote(\"");
		fs_buf_puts(&sql, col);
		fs_buf_puts(&sql, "\")");
	} else {
		fs_buf_puts(&sql, "SELECT json_object(");
		for (i = 0; i < t->ncols; i++) {
			fs_buf_printf(&sql, "%s'%s', \"%s\"", i ? ", " : "",
			              t->cols[i].name, t->cols[i].name);
		}
		fs_buf_putc(&sql, ')');
	}
	fs_buf_puts(&sql, " FROM \"");
	fs_buf_puts(&sql, t->name);
	fs_buf_puts(&sql, "\" WHERE id = ?");
	if (sql.failed) {
		fs_buf_free(&sql);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	rc = fs_replica__prepare(&st, r, sql.ptr);
	fs_buf_free(&sql);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = strdup((const char *)sqlite3_column_text(st, 0));
		rc = *out ? 1 : fs_err__set(&r->err, FS_ERROR, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading a field");
	}
	fs_replica__finish(r, st);
	return rc;
}
