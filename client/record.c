/*
** record.c -- create, read, update, delete, list and dump records of any
** entity, driven by the schema metadata (one code path for all tables).
**
** Every write runs inside a savepoint or the caller's transaction, so a
** call either fully happens (with its change-log rows, which capture.c
** writes before the savepoint ends) or not at all.
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "uuid.h"
#include "value.h"

/* Resolves user field names against t, accepting "customer_id" for a link
** column "customer"; sets *id_out for an "id" field. */
static const fs_column *find_column(const fs_table *t, const char *name)
{
	const fs_column *c = fs_schema__column(t, name);
	size_t n = strlen(name);
	char base[128];

	if (c || n < 4 || n >= sizeof(base) || strcmp(name + n - 3, "_id"))
		return c;
	memcpy(base, name, n - 3);
	base[n - 3] = '\0';
	c = fs_schema__column(t, base);
	return c && c->ref ? c : NULL;
}

static int resolve(fs_value *vals, fs_replica *r, const fs_table *t,
                   const fs_field *fields, size_t n, const char **id_out)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const fs_column *c;

		if (!fields[i].name)
			return fs_err__set(&r->err, FS_EINVALID, "field without a name");
		if (!strcmp(fields[i].name, "id")) {
			if (!id_out)
				return fs_err__set(&r->err, FS_EINVALID,
				                   "%s: the id cannot be changed", t->noun);
			*id_out = fields[i].value;
			vals[i].col = NULL;
			continue;
		}
		c = find_column(t, fields[i].name);
		if (!c)
			return fs_err__set(&r->err, FS_EFIELD,
			                   "%s has no field '%s'", t->noun,
			                   fields[i].name);
		for (j = 0; j < i; j++)
			if (vals[j].col == c)
				return fs_err__set(&r->err, FS_EINVALID,
				                   "%s.%s given twice", t->noun, c->name);
		if (fs_replica__convert(&vals[i], r, t, c, fields[i].value) < 0)
			return r->err.code;
		if (vals[i].type == SQLITE_NULL && c->notnull)
			return fs_err__set(&r->err, FS_EINVALID,
			                   "%s.%s is required", t->noun, c->name);
		if (c->ref && vals[i].type == SQLITE_TEXT) {
			int rc = fs_replica__exists(r, c->ref, vals[i].s);
			if (rc < 0)
				return rc;
			if (rc == 0)
				return fs_err__set(&r->err, FS_ENOTFOUND,
				        "%s.%s: no %s with id '%s'", t->noun, c->name,
				        fs_schema__table(&r->schema, c->ref)
				                ? fs_schema__table(&r->schema, c->ref)->noun
				                : c->ref, vals[i].s);
		}
	}
	return 0;
}

/* The first identifier in a CHECK constraint's text that is a column of t:
** the field a refusal is about. */
static const fs_column *check_column(const fs_table *t, const char *text)
{
	const char *p = text;

	while (*p) {
		size_t n = 0;
		char word[64];

		while (*p && !(*p == '_' || (*p >= 'a' && *p <= 'z')))
			p++;
		while (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') ||
		       (p[n] >= '0' && p[n] <= '9'))
			n++;
		if (n && n < sizeof(word)) {
			const fs_column *c;
			memcpy(word, p, n);
			word[n] = '\0';
			if ((c = fs_schema__column(t, word)) != NULL)
				return c;
		}
		p += n;
	}
	return NULL;
}

static int run_write(fs_replica *r, sqlite3_stmt *st, const fs_table *t)
{
	size_t mark = fs_capture__mark(&r->cap);
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return 0;
	/* The statement was undone: so are the changes it noted. */
	fs_capture__discard(&r->cap, mark);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		const char *m = sqlite3_errmsg(r->db);
		if (!strncmp(m, "CHECK constraint failed: ", 25)) {
			/* Enumerations are named "field: one of ..." in the schema. */
			const char *what = m + 25, *colon = strstr(what, ": ");
			const fs_column *c = check_column(t, what);
			if (c && colon && (size_t)(colon - what) == strlen(c->name) &&
			    !strncmp(what, c->name, strlen(c->name)))
				return fs_err__set(&r->err, FS_EINVALID,
				                   "%s.%s must be %s", t->noun, c->name,
				                   colon + 2);
			if (c)
				return fs_err__set(&r->err, FS_EINVALID,
				                   "%s.%s: value not allowed (%s)", t->noun,
				                   c->name, what);
			return fs_err__set(&r->err, FS_EINVALID,
			                   "%s: value not allowed (%s)", t->noun, what);
		}
		if (strstr(m, "UNIQUE") && strstr(m, ".id"))
			return fs_err__set(&r->err, FS_ECONFLICT,
			                   "%s: that id is already in use", t->noun);
	}
	return fs_err__sqlite(&r->err, r->db, rc, t->noun);
}

/* Whether m holds the SQL of a write of t's fields vals[0..n) (those
** with a column), in that order. */
static int write_sql_same(const fs_write_sql *m, const fs_table *t,
                          const fs_value *vals, size_t n)
{
	size_t i, k = 0;

	if (m->t != t || !m->sql)
		return 0;
	for (i = 0; i < n; i++)
		if (vals[i].col && (k >= m->n || m->cols[k++] != vals[i].col))
			return 0;
	return k == m->n;
}

/* Keeps sql (taken over) in m as the write of t's fields vals[0..n). */
static int write_sql_keep(fs_replica *r, fs_write_sql *m, const fs_table *t,
                          const fs_value *vals, size_t n, fs_buf *sql)
{
	const fs_column **cols = malloc((n ? n : 1) * sizeof(*cols));
	size_t i, k = 0;

	if (!cols || sql->failed) {
		free(cols);
		fs_buf_free(sql);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	for (i = 0; i < n; i++)
		if (vals[i].col)
			cols[k++] = vals[i].col;
	free(m->sql);
	free(m->cols);
	m->sql = fs_buf_detach(sql);
	m->cols = cols;
	m->n = k;
	m->t = t;
	return 0;
}

/* r->ins.sql: the INSERT of vals' fields (and created_at, unless given)
** into t. */
static int insert_sql(fs_replica *r, const fs_table *t, const fs_value *vals,
                      size_t n)
{
	fs_buf sql = FS_BUF_INIT, qs = FS_BUF_INIT;
	size_t i;
	int given = 0;

	if (write_sql_same(&r->ins, t, vals, n))
		return 0;
	/* Plain appends, not printf. */
	fs_buf_puts(&sql, "INSERT INTO \"");
	fs_buf_puts(&sql, t->name);
	fs_buf_puts(&sql, "\"(id");
	fs_buf_puts(&qs, "?");
	for (i = 0; i < n; i++) {
		if (!vals[i].col)
			continue;
		given |= !strcmp(vals[i].col->name, "created_at");
		fs_buf_puts(&sql, ", \"");
		fs_buf_puts(&sql, vals[i].col->name);
		fs_buf_putc(&sql, '"');
		fs_buf_puts(&qs, ", ?");
	}
	if (!given && fs_schema__column(t, "created_at")) {
		fs_buf_puts(&sql, ", created_at");
		fs_buf_puts(&qs, ", ?");
	}
	fs_buf_puts(&sql, ") VALUES (");
	fs_buf_puts(&sql, qs.ptr ? qs.ptr : "");
	fs_buf_putc(&sql, ')');
	if (qs.failed)
		sql.failed = 1;
	fs_buf_free(&qs);
	return write_sql_keep(r, &r->ins, t, vals, n, &sql);
}

/* Appends n in decimal. */
static void put_count(fs_buf *b, size_t n)
{
	char d[24];
	size_t k = sizeof(d);

	do
		d[--k] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	fs_buf_put(b, d + k, sizeof(d) - k);
}

/* Appends one fs_note_update() call of t's fields vals[from..to). */
static void put_note_call(fs_buf *sql, fs_replica *r, const fs_table *t,
                          const fs_value *vals, size_t from, size_t to,
                          size_t n)
{
	size_t i;

	fs_buf_puts(sql, " AND fs_note_update(");
	put_count(sql, (size_t)(t - r->schema.tables));
	fs_buf_puts(sql, ", rowid, id, ?");
	put_count(sql, n + 1);
	for (i = from; i < to; i++) {
		fs_buf_puts(sql, ", ");
		put_count(sql, (size_t)(vals[i].col - t->cols));
		fs_buf_puts(sql, ", ?");
		put_count(sql, i + 1);
		fs_buf_puts(sql, ", \"");
		fs_buf_puts(sql, vals[i].col->name);
		fs_buf_putc(sql, '"');
	}
	fs_buf_putc(sql, ')');
}

/* r->upd.sql: the UPDATE of vals' fields of one record of t,
**   UPDATE "t" SET "a" = ?1, ... WHERE id = ?N AND
**       fs_note_update(TABLE, rowid, id, ?N, FIELD, ?1, "a", ...) [AND ...]
** which notes the changed fields where the old row is at hand (see
** sync/capture.c), FS_CAPTURE_NOTE_FIELDS fields a call. */
static int update_sql(fs_replica *r, const fs_table *t, const fs_value *vals,
                      size_t n)
{
	fs_buf sql = FS_BUF_INIT;
	size_t i;

	if (write_sql_same(&r->upd, t, vals, n))
		return 0;
	fs_buf_puts(&sql, "UPDATE \"");
	fs_buf_puts(&sql, t->name);
	fs_buf_puts(&sql, "\" SET ");
	for (i = 0; i < n; i++) {
		fs_buf_puts(&sql, i ? ", \"" : "\"");
		fs_buf_puts(&sql, vals[i].col->name);
		fs_buf_puts(&sql, "\" = ?");
		put_count(&sql, i + 1);
	}
	fs_buf_puts(&sql, " WHERE id = ?");
	put_count(&sql, n + 1);
	for (i = 0; i < n; i += FS_CAPTURE_NOTE_FIELDS)
		put_note_call(&sql, r, t, vals, i,
		              n - i > FS_CAPTURE_NOTE_FIELDS
		              ? i + FS_CAPTURE_NOTE_FIELDS : n, n);
	return write_sql_keep(r, &r->upd, t, vals, n, &sql);
}

int fs_record__insert(char *out_id, fs_replica *r, const fs_table *t,
                      const fs_field *fields, size_t n)
{
	fs_value *vals = NULL;
	sqlite3_stmt *st = NULL;
	const char *given_id = NULL;
	char id[FS_ID_SIZE], now[24];
	int error = -1, rc, idx;
	size_t i;

	vals = calloc(n ? n : 1, sizeof(*vals));
	if (!vals)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if ((rc = resolve(vals, r, t, fields, n, &given_id)) < 0)
		goto done;
	if (given_id) {
		if (!fs_uuid__valid(given_id)) {
			fs_err__set(&r->err, FS_EINVALID,
			            "%s: id '%s' is not a UUID", t->noun, given_id);
			goto done;
		}
		snprintf(id, sizeof(id), "%s", given_id);
	} else if (fs_uuid__v7(id, fs_hlc__wall_ms(), &r->rnd) < 0) {
		fs_err__set(&r->err, FS_ERROR, "no system randomness for an id");
		goto done;
	}
	/* Required fields without a default must be given. */
	for (i = 0; i < t->ncols; i++) {
		const fs_column *c = &t->cols[i];
		size_t j;
		int given = 0;

		for (j = 0; j < n; j++)
			given |= vals[j].col == c;
		if (!given && c->notnull && !c->has_default &&
		    strcmp(c->name, "created_at")) {
			fs_err__set(&r->err, FS_EINVALID, "%s.%s is required", t->noun,
			            c->name);
			goto done;
		}
	}
	if ((rc = fs_sales__before_insert(r, t, vals, n)) < 0)
		goto done;

	if (insert_sql(r, t, vals, n) < 0)
		goto done;
	if (fs_replica__prepare(&st, r, r->ins.sql) < 0)
		goto done;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	idx = 2;
	for (i = 0; i < n; i++)
		if (vals[i].col)
			fs_replica__bind(st, idx++, &vals[i]);
	if (idx <= sqlite3_bind_parameter_count(st)) {
		fs_replica__now_cached(r, now);
		sqlite3_bind_text(st, idx, now, -1, SQLITE_STATIC);
	}
	if (run_write(r, st, t) < 0)
		goto done;
	fs_replica__flush_some(r);
	if (out_id)
		memcpy(out_id, id, FS_ID_SIZE);
	error = 0;
done:
	fs_replica__finish(r, st);
	free(vals);
	return error ? r->err.code : 0;
}

int fs_record__update(fs_replica *r, const fs_table *t, const char *id,
                      const fs_field *fields, size_t n)
{
	fs_value *vals = NULL;
	sqlite3_stmt *st = NULL;
	int error = -1, rc = 0, idx;
	size_t i, mark;

	/* Whether the record exists is read beforehand only when something
	** needs it; else the UPDATE's row count tells (one query less). */
	if (!id || ((n == 0 || fs_sales__reads_before_update(t)) &&
	            (rc = fs_replica__exists(r, t->name, id)) == 0))
		return fs_err__set(&r->err, FS_ENOTFOUND, "no %s with id '%s'",
		                   t->noun, id ? id : "");
	if (rc < 0)
		return rc;
	if (n == 0)
		return 0;
	if (!(vals = calloc(n, sizeof(*vals))))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (resolve(vals, r, t, fields, n, NULL) < 0)
		goto done;
	for (i = 0; i < n; i++)
		if (vals[i].col->ref && vals[i].type == SQLITE_TEXT &&
		    !strcmp(vals[i].col->ref, t->name) && !strcmp(vals[i].s, id)) {
			fs_err__set(&r->err, FS_EINVALID, "%s.%s cannot point at itself",
			            t->noun, vals[i].col->name);
			goto done;
		}
	if (fs_sales__before_update(r, t, id, vals, n) < 0)
		goto done;
	if (update_sql(r, t, vals, n) < 0)
		goto done;
	if (fs_replica__prepare(&st, r, r->upd.sql) < 0)
		goto done;
	for (i = 0, idx = 1; i < n; i++)
		fs_replica__bind(st, idx++, &vals[i]);
	sqlite3_bind_text(st, idx, id, -1, SQLITE_STATIC);
	mark = fs_capture__mark(&r->cap);
	fs_capture__self(&r->cap, t);
	rc = run_write(r, st, t);
	fs_capture__self(&r->cap, NULL);
	if (rc < 0)
		goto done;
	if (sqlite3_changes(r->db) == 0) {
		fs_capture__discard(&r->cap, mark);   /* nothing was written */
		fs_err__set(&r->err, FS_ENOTFOUND, "no %s with id '%s'", t->noun, id);
		goto done;
	}
	fs_replica__flush_some(r);
	error = 0;
done:
	fs_replica__finish(r, st);
	free(vals);
	return error ? r->err.code : 0;
}

int fs_record_insert_flags(char *out_id, fs_replica *r, const char *entity,
                           const fs_field *fields, size_t nfields,
                           unsigned int flags)
{
	const fs_table *t = fs_replica__table(r, entity);
	fs_field *done_fields = NULL;
	char *pool = NULL, id[FS_ID_SIZE];
	size_t n = 0;
	int rc = 0, multi;

	if (!t)
		return r->err.code;
	/* Inside a transaction, one INSERT is atomic by itself; outside one it
	** gets a savepoint, at whose end its changes are logged (capture.h).
	** An order (whose credit check may write the override) always gets
	** one around its several writes. */
	multi = !strcmp(t->name, "sales_order") || sqlite3_get_autocommit(r->db);
	if (multi && (rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	if (t->parent_col)
		rc = fs_sales__complete_line(&done_fields, &n, &pool, r, t, fields,
		                             nfields);
	if (rc == 0)
		rc = fs_record__insert(id, r, t, done_fields ? done_fields : fields,
		                       done_fields ? n : nfields);
	if (rc == 0) {
		r->sales_flags = flags;
		rc = fs_sales__after_insert(r, t, id);
		r->sales_flags = 0;
	}
	if (rc == 0 && out_id)
		memcpy(out_id, id, FS_ID_SIZE);
	free(done_fields);
	free(pool);
	return multi ? fs_replica__tx_end(r, rc) : rc;
}

int fs_record_insert(char *out_id, fs_replica *r, const char *entity,
                     const fs_field *fields, size_t nfields)
{
	return fs_record_insert_flags(out_id, r, entity, fields, nfields, 0);
}

int fs_record_update(fs_replica *r, const char *entity, const char *id,
                     const fs_field *fields, size_t nfields)
{
	const fs_table *t = fs_replica__table(r, entity);
	int rc;

	if (!t)
		return r->err.code;
	/* Inside a transaction, a single UPDATE is atomic by itself; outside
	** one it gets a savepoint, at whose end its changes are logged
	** (capture.h).  An order's status change may also record a credit
	** override, so it always gets one. */
	if (strcmp(t->name, "sales_order") && !sqlite3_get_autocommit(r->db))
		return fs_record__update(r, t, id, fields, nfields);
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	rc = fs_record__update(r, t, id, fields, nfields);
	return fs_replica__tx_end(r, rc);
}

static int count_refs(int64_t *out, fs_replica *r, const fs_table *child,
                      const fs_column *c, const char *id)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE \"%s\"=?",
	         child->name, c->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "counting references");
	return 0;
}

static int delete_record(fs_replica *r, const fs_table *t, const char *id)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	size_t i, j;
	int rc;

	if ((rc = fs_replica__exists(r, t->name, id)) <= 0)
		return rc < 0 ? rc : fs_err__set(&r->err, FS_ENOTFOUND,
		                                 "no %s with id '%s'", t->noun, id);
	if ((rc = fs_sales__before_delete(r, t, id)) < 0)
		return rc;
	/* Lines go with their header; any other reference blocks the delete. */
	for (i = 0; i < r->schema.ntables; i++) {
		const fs_table *child = &r->schema.tables[i];
		for (j = 0; j < child->ncols; j++) {
			const fs_column *c = &child->cols[j];
			int64_t n;

			if (!c->ref || strcmp(c->ref, t->name))
				continue;
			if (child->parent_col == c) {
				snprintf(sql, sizeof(sql),
				         "DELETE FROM \"%s\" WHERE \"%s\"=?", child->name,
				         c->name);
				if (fs_replica__prepare(&st, r, sql) < 0)
					return r->err.code;
				sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
				rc = fs_replica__step_done(r, st, "deleting lines");
				fs_replica__finish(r, st);
				if (rc < 0)
					return rc;
				continue;
			}
			if ((rc = count_refs(&n, r, child, c, id)) < 0)
				return rc;
			if (n > 0)
				return fs_err__set(&r->err, FS_ECONFLICT,
				        "%s %s is still referenced by %lld %s record%s "
				        "(field %s); delete or move them first",
				        t->noun, id, (long long)n, child->noun,
				        n == 1 ? "" : "s", c->name);
		}
	}
	snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE id=?", t->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "deleting");
	fs_replica__finish(r, st);
	return rc;
}

int fs_record_delete(fs_replica *r, const char *entity, const char *id)
{
	const fs_table *t = fs_replica__table(r, entity);
	int rc;

	if (!t)
		return r->err.code;
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	rc = delete_record(r, t, id ? id : "");
	return fs_replica__tx_end(r, rc);
}

/* SELECT id, col1, ... FROM t */
static int select_sql(fs_buf *b, const fs_table *t)
{
	size_t i;

	fs_buf_puts(b, "SELECT id");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(b, ", \"%s\"", t->cols[i].name);
	return fs_buf_printf(b, " FROM \"%s\"", t->name);
}

/* Writes the current row (id, cols...) as a JSON object.  Canonical form
** (dump): keys sorted, "table" included, NULLs omitted. */
static int row_json(fs_buf *b, sqlite3_stmt *st, const fs_table *t,
                    int canonical, const size_t *order)
{
	size_t i;

	fs_buf_putc(b, '{');
	if (!canonical) {
		fs_buf_puts(b, "\"id\":");
		fs_json__str(b, (const char *)sqlite3_column_text(st, 0));
		for (i = 0; i < t->ncols; i++) {
			fs_buf_putc(b, ',');
			fs_json__str(b, t->cols[i].name);
			fs_buf_putc(b, ':');
			fs_replica__json_value(b, st, (int)i + 1, t->cols[i].kind);
		}
		return fs_buf_putc(b, '}');
	}
	/* order[] lists columns, "id" (index t->ncols) and "table"
	** (t->ncols + 1) sorted by name. */
	{
		int first = 1;
		for (i = 0; i < t->ncols + 2; i++) {
			size_t k = order[i];
			if (k < t->ncols &&
			    sqlite3_column_type(st, (int)k + 1) == SQLITE_NULL)
				continue;
			if (!first)
				fs_buf_putc(b, ',');
			first = 0;
			if (k == t->ncols) {
				fs_buf_puts(b, "\"id\":");
				fs_json__str(b, (const char *)sqlite3_column_text(st, 0));
			} else if (k == t->ncols + 1) {
				fs_buf_puts(b, "\"table\":");
				fs_json__str(b, t->name);
			} else {
				fs_json__str(b, t->cols[k].name);
				fs_buf_putc(b, ':');
				fs_replica__json_value(b, st, (int)k + 1, t->cols[k].kind);
			}
		}
	}
	return fs_buf_putc(b, '}');
}

int fs_record__json(fs_buf *b, fs_replica *r, const fs_table *t,
                    const char *id, int with_table)
{
	fs_buf sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc, error = -1;

	(void)with_table;
	select_sql(&sql, t);
	fs_buf_puts(&sql, " WHERE id = ?");
	if (sql.failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if (fs_replica__prepare(&st, r, sql.ptr) < 0)
		goto done;
	sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		fs_err__set(&r->err, FS_ENOTFOUND, "no %s with id '%s'", t->noun,
		            id ? id : "");
		goto done;
	}
	if (rc != SQLITE_ROW) {
		fs_err__sqlite(&r->err, r->db, rc, "reading a record");
		goto done;
	}
	row_json(b, st, t, 0, NULL);
	if (b->failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	error = 0;
done:
	fs_replica__finish(r, st);
	fs_buf_free(&sql);
	return error ? r->err.code : 0;
}

int fs_record_get_json(char **out, fs_replica *r, const char *entity,
                       const char *id)
{
	const fs_table *t = fs_replica__table(r, entity);
	fs_buf b = FS_BUF_INIT;
	int rc;

	*out = NULL;
	if (!t)
		return r->err.code;
	rc = fs_record__json(&b, r, t, id, 0);
	if (rc < 0) {
		fs_buf_free(&b);
		return rc;
	}
	*out = fs_buf_detach(&b);
	return 0;
}

/* Converts a JSON object into fields via SQLite's json_each(). */
static int json_fields(fs_field **out, size_t *n, char **strings,
                       fs_replica *r, const char *json)
{
	sqlite3_stmt *st = NULL;
	fs_buf pool = FS_BUF_INIT;
	size_t cap = 0, i, *offs = NULL;
	fs_field *f = NULL;
	int rc, error = -1;

	*out = NULL;
	*n = 0;
	*strings = NULL;
	if (fs_replica__prepare(&st, r,
	        "SELECT key, CASE type WHEN 'true' THEN 'true' "
	        "WHEN 'false' THEN 'false' ELSE value END, type = 'null', "
	        "type IN ('object','array') FROM json_each(?) "
	        "WHERE json_type(?) = 'object'") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			void *p1, *p2;
			cap = cap ? cap * 2 : 16;
			p1 = realloc(f, cap * sizeof(*f));
			if (p1)
				f = p1;
			p2 = realloc(offs, cap * 2 * sizeof(*offs));
			if (p2)
				offs = p2;
			if (!p1 || !p2) {
				fs_err__set(&r->err, FS_ERROR, "out of memory");
				goto done;
			}
		}
		if (sqlite3_column_int(st, 3)) {
			fs_err__set(&r->err, FS_EINVALID,
			            "field '%s' must be a string, number, boolean or null",
			            (const char *)sqlite3_column_text(st, 0));
			goto done;
		}
		offs[2 * *n] = pool.len;
		fs_buf_put(&pool, sqlite3_column_text(st, 0),
		           (size_t)sqlite3_column_bytes(st, 0) + 1);
		if (sqlite3_column_int(st, 2)) {
			offs[2 * *n + 1] = (size_t)-1;
		} else {
			offs[2 * *n + 1] = pool.len;
			fs_buf_put(&pool, sqlite3_column_text(st, 1),
			           (size_t)sqlite3_column_bytes(st, 1) + 1);
		}
		(*n)++;
	}
	if (rc != SQLITE_DONE) {
		fs_err__set(&r->err, FS_EINVALID, "malformed JSON: %s",
		            sqlite3_errmsg(r->db));
		goto done;
	}
	if (pool.failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if (*n == 0 && strcmp(json, "{}") != 0) {
		int isobj = 0;
		sqlite3_reset(st);
		/* Distinguish "{}" spelled with spaces from a non-object. */
		fs_replica__finish(r, st);
		st = NULL;
		if (fs_replica__prepare(&st, r, "SELECT json_type(?) = 'object'") < 0)
			goto done;
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			isobj = sqlite3_column_int(st, 0);
		if (!isobj) {
			fs_err__set(&r->err, FS_EINVALID, "expected a JSON object");
			goto done;
		}
	}
	for (i = 0; i < *n; i++) {
		f[i].name = pool.ptr + offs[2 * i];
		f[i].value = offs[2 * i + 1] == (size_t)-1 ? NULL
		                                           : pool.ptr + offs[2 * i + 1];
	}
	*out = f;
	*strings = fs_buf_detach(&pool);
	f = NULL;
	error = 0;
done:
	fs_replica__finish(r, st);
	fs_buf_free(&pool);
	free(offs);
	free(f);
	if (error)
		*n = 0;
	return error ? r->err.code : 0;
}

int fs_record_insert_json(char *out_id, fs_replica *r, const char *entity,
                          const char *json)
{
	fs_field *f = NULL;
	char *pool = NULL;
	size_t n = 0;
	int rc = json_fields(&f, &n, &pool, r, json ? json : "");

	if (rc == 0)
		rc = fs_record_insert(out_id, r, entity, f, n);
	free(f);
	free(pool);
	return rc;
}

int fs_record_update_json(fs_replica *r, const char *entity, const char *id,
                          const char *json)
{
	fs_field *f = NULL;
	char *pool = NULL;
	size_t n = 0;
	int rc = json_fields(&f, &n, &pool, r, json ? json : "");

	if (rc == 0)
		rc = fs_record_update(r, entity, id, f, n);
	free(f);
	free(pool);
	return rc;
}

int fs_record_list(fs_replica *r, const char *entity, const char *search,
                   const fs_field *filters, size_t nfilters,
                   fs_json_cb cb, void *payload)
{
	const fs_table *t = fs_replica__table(r, entity);
	fs_value *vals = NULL;
	fs_buf sql = FS_BUF_INIT, row = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int error = -1, rc, idx = 1, where = 0;
	size_t i;

	if (!t)
		return r->err.code;
	vals = calloc(nfilters ? nfilters : 1, sizeof(*vals));
	if (!vals)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	for (i = 0; i < nfilters; i++) {
		const fs_column *c = find_column(t, filters[i].name);
		if (!c) {
			fs_err__set(&r->err, FS_EFIELD, "%s has no field '%s'",
			            t->noun, filters[i].name);
			goto done;
		}
		if (fs_replica__convert(&vals[i], r, t, c, filters[i].value) < 0)
			goto done;
	}
	select_sql(&sql, t);
	for (i = 0; i < nfilters; i++) {
		fs_buf_printf(&sql, " %s \"%s\" IS ?", where++ ? "AND" : "WHERE",
		              vals[i].col->name);
	}
	if (search && *search) {
		int any = 0;
		fs_buf_printf(&sql, " %s (", where++ ? "AND" : "WHERE");
		for (i = 0; i < t->ncols; i++) {
			if (t->cols[i].kind != FS_KIND_TEXT || t->cols[i].ref)
				continue;
			fs_buf_printf(&sql, "%sinstr(lower(\"%s\"), lower(?%d))",
			              any++ ? " OR " : "", t->cols[i].name,
			              (int)nfilters + 1);
		}
		fs_buf_puts(&sql, any ? ")" : "0)");
	}
	fs_buf_printf(&sql, " ORDER BY \"%s\", id",
	              fs_schema__column(t, t->label) ? t->label : "id");
	if (sql.failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if (fs_replica__prepare(&st, r, sql.ptr) < 0)
		goto done;
	for (i = 0; i < nfilters; i++)
		fs_replica__bind(st, idx++, &vals[i]);
	if (search && *search)
		sqlite3_bind_text(st, idx, search, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_buf_clear(&row);
		row_json(&row, st, t, 0, NULL);
		if (row.failed) {
			fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		if ((rc = cb(row.ptr, payload)) != 0) {
			error = rc;
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		fs_err__sqlite(&r->err, r->db, rc, "listing");
		goto done;
	}
	error = 0;
done:
	fs_replica__finish(r, st);
	fs_buf_free(&sql);
	fs_buf_free(&row);
	free(vals);
	return error < 0 ? (r->err.code ? r->err.code : error) : error;
}


/* Sorted key order of a table for canonical output (see row_json). */
static int key_order(size_t **out, const fs_table *t)
{
	size_t i, n = t->ncols + 2, *o = malloc(n * sizeof(*o));

	if (!o)
		return -1;
	for (i = 0; i < n; i++)
		o[i] = i;
	/* A small insertion sort: qsort would need the table as global state. */
	for (i = 1; i < n; i++) {
		size_t k = o[i], j = i;
		const char *kn = k == t->ncols ? "id" : k == t->ncols + 1 ? "table"
		                                                       : t->cols[k].name;
		while (j > 0) {
			size_t p = o[j - 1];
			const char *pn = p == t->ncols ? "id"
			               : p == t->ncols + 1 ? "table" : t->cols[p].name;
			if (strcmp(pn, kn) <= 0)
				break;
			o[j] = p;
			j--;
		}
		o[j] = k;
	}
	*out = o;
	return 0;
}

int fs_replica_dump(fs_replica *r, fs_json_cb cb, void *payload)
{
	return fs_replica__dump_scoped(r, 0, cb, payload);
}

int fs_replica__dump_scoped(fs_replica *r, int scoped, fs_json_cb cb,
                            void *payload)
{
	fs_buf sql = FS_BUF_INIT, row = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	size_t *order = NULL, i, *torder = NULL;
	int rc, error = -1;

	/* Tables in name order, records in id order: the canonical order. */
	torder = malloc((r->schema.ntables + 1) * sizeof(*torder));
	if (!torder) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < r->schema.ntables; i++) {
		size_t j = i;
		torder[i] = i;
		while (j > 0 && strcmp(r->schema.tables[torder[j - 1]].name,
		                       r->schema.tables[i].name) > 0) {
			torder[j] = torder[j - 1];
			j--;
		}
		torder[j] = i;
	}
	for (i = 0; i < r->schema.ntables; i++) {
		const fs_table *t = &r->schema.tables[torder[i]];

		fs_buf_clear(&sql);
		select_sql(&sql, t);
		if (scoped) {
			fs_buf_puts(&sql, " WHERE ");
			if (!fs_schema__in_scope_sql(&sql, &r->schema, t))
				fs_buf_puts(&sql, "1");
		}
		fs_buf_puts(&sql, " ORDER BY id");
		free(order);
		order = NULL;
		if (sql.failed || key_order(&order, t) < 0) {
			fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		fs_replica__finish(r, st);
		if (fs_replica__prepare(&st, r, sql.ptr) < 0)
			goto done;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			fs_buf_clear(&row);
			row_json(&row, st, t, 1, order);
			if (row.failed) {
				fs_err__set(&r->err, FS_ERROR, "out of memory");
				goto done;
			}
			if ((rc = cb(row.ptr, payload)) != 0) {
				error = rc;
				goto done;
			}
		}
		if (rc != SQLITE_DONE) {
			fs_err__sqlite(&r->err, r->db, rc, "dumping");
			goto done;
		}
	}
	error = 0;
done:
	fs_replica__finish(r, st);
	fs_buf_free(&sql);
	fs_buf_free(&row);
	free(order);
	free(torder);
	return error < 0 ? r->err.code : error;
}

/* The fields of the creations logged without them (capture.h), in log
** order: what the push will send. */
typedef struct creation_json {
	int64_t seq;
	char *json;
} creation_json;

typedef struct creations {
	creation_json *v;
	size_t n, alloc, next;
} creations;

static int collect(void *payload, int64_t seq, const char *json)
{
	creations *c = payload;

	if (c->n == c->alloc) {
		size_t want = c->alloc ? c->alloc * 2 : 64;
		creation_json *p = realloc(c->v, want * sizeof(*p));
		if (!p)
			return 1;
		c->v = p;
		c->alloc = want;
	}
	if (!(c->v[c->n].json = strdup(json)))
		return 1;
	c->v[c->n++].seq = seq;
	return 0;
}

static void creations_free(creations *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].json);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Creations per window of the listing: their fields are held in memory
** while the log up to the window's last creation is listed. */
#define LIST_WINDOW 16384

int fs_change_foreach(fs_replica *r, fs_change_cb cb, void *payload)
{
	sqlite3_stmt *st = NULL;
	creations made = { NULL, 0, 0, 0 };
	int64_t after = 0, last;
	int rc;

	/* Inside a transaction, changes may still wait to be logged. */
	if (r->cap.n && fs_replica__flush(r, 1) < 0)
		return r->err.code;
	if (fs_replica__prepare(&st, r,
	        "SELECT seq, tbl, rid, op, col, val, hlc, device FROM fs_change "
	        "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq") < 0)
		return r->err.code;
	do {
		creations_free(&made);
		if ((rc = fs_capture__creations(r->db, &r->schema, after,
		                                LIST_WINDOW, &last, collect, &made,
		                                &r->err)) != 0) {
			if (rc > 0)
				rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, after);
		sqlite3_bind_int64(st, 2, last);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			fs_change c;

			c.seq = sqlite3_column_int64(st, 0);
			c.table = (const char *)sqlite3_column_text(st, 1);
			c.id = (const char *)sqlite3_column_text(st, 2);
			c.op = ((const char *)sqlite3_column_text(st, 3))[0];
			c.column = (const char *)sqlite3_column_text(st, 4);
			c.value = (const char *)sqlite3_column_text(st, 5);
			c.hlc = (uint64_t)sqlite3_column_int64(st, 6);
			c.device = fs_capture__device(&r->cap,
			        (const char *)sqlite3_column_text(st, 7));
			if (c.op == 'D')
				c.value = NULL;   /* the fields it deleted: not a change */
			while (made.next < made.n && made.v[made.next].seq < c.seq)
				made.next++;
			if (c.op == 'I' && !c.value && made.next < made.n &&
			    made.v[made.next].seq == c.seq)
				c.value = made.v[made.next].json;
			if ((rc = cb(&c, payload)) != 0)
				goto done;
		}
		if (rc != SQLITE_DONE) {
			rc = fs_err__sqlite(&r->err, r->db, rc,
			                    "reading the change log");
			goto done;
		}
		rc = 0;
		after = last;
	} while (last != INT64_MAX);
done:
	creations_free(&made);
	fs_replica__finish(r, st);
	return rc;
}

int fs_change_count(int64_t *out, fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	if (r->cap.n && fs_replica__flush(r, 1) < 0)
		return r->err.code;
	if (fs_replica__prepare(&st, r, "SELECT count(*) FROM fs_change") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "counting changes");
	return 0;
}

void fs_hlc_format(char *buf, size_t size, uint64_t hlc)
{
	char t[24];
	uint64_t ms = FS_HLC_MS(hlc);

	fs_value__format_time(t, ms);
	/* t is YYYY-MM-DDTHH:MM:SSZ; splice the milliseconds in. */
	t[19] = '\0';
	snprintf(buf, size, "%s.%03uZ#%04x", t, (unsigned)(ms % 1000),
	         (unsigned)FS_HLC_COUNTER(hlc));
}
