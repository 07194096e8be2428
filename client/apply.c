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

/* One statement per table takes every field out of the JSON object
** (SQLite parses the object once and caches it across the json_extract
** calls).  A field missing from the object (a client one schema version
** behind) gets the column's default, or NULL. */
int fs_replica__apply_insert(fs_replica *r, const fs_table *t,
                             const char *rid, const char *json)
{
	sqlite3_stmt *st = NULL;
	fs_buf sql = FS_BUF_INIT;
	size_t i;
	int rc;

	if (json && fs_replica__prepare(&st, r,
	        "SELECT json_type(?) = 'object'") == 0) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
		fs_replica__finish(r, st);
		st = NULL;
		if (!rc)
			return fs_err__set(&r->err, FS_ECORRUPT,
			                   "%s %s: malformed record JSON", t->noun, rid);
	}
	/* INSERT OR REPLACE: a record already here (a replayed creation) takes
	** the fields given. */
	fs_buf_puts(&sql, "INSERT OR REPLACE INTO \"");
	fs_buf_puts(&sql, t->name);
	fs_buf_puts(&sql, "\"(id");
	for (i = 0; i < t->ncols; i++) {
		fs_buf_puts(&sql, ", \"");
		fs_buf_puts(&sql, t->cols[i].name);
		fs_buf_putc(&sql, '"');
	}
	fs_buf_puts(&sql, ") SELECT ?1");
	for (i = 0; i < t->ncols; i++) {
		const fs_column *c = &t->cols[i];
		fs_buf_puts(&sql, c->dflt ? ", coalesce(json_extract(?2, '$.\""
		                          : ", json_extract(?2, '$.\"");
		fs_buf_puts(&sql, c->name);
		fs_buf_puts(&sql, "\"')");
		if (c->dflt) {
			fs_buf_puts(&sql, ", ");
			fs_buf_puts(&sql, c->dflt);
			fs_buf_putc(&sql, ')');
		}
	}
	if (sql.failed) {
		fs_buf_free(&sql);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	rc = fs_replica__prepare(&st, r, sql.ptr);
	fs_buf_free(&sql);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, json ? json : "{}", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, t->noun);
	return 0;
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
