/*
** csvio.c -- CSV import and export of any entity.
**
** Import is all-or-nothing: every row goes through the ordinary record
** layer (validation, reference checks, change capture) inside one
** transaction, and the first bad row rolls everything back with an error
** naming its line and column.  A row whose id exists updates that record,
** so an export edited in a spreadsheet can be imported back.
** Export writes every column in schema order with values in their text form
** (what import reads), so export -> import reproduces the same records.
*/
#include "replica_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "value.h"

/* Which column an error is about: the record layer names fields as
** "noun.field" in its messages. */
static const char *blamed_column(fs_replica *r, const fs_table *t,
                                 char **names, size_t n)
{
	char pat[160];
	size_t i;

	for (i = 0; i < n; i++) {
		const char *p;
		size_t len;
		snprintf(pat, sizeof(pat), "%s.%s", t->noun, names[i]);
		len = strlen(pat);
		p = strstr(r->err.msg, pat);
		if (p && (p[len] == ':' || p[len] == ' ' || p[len] == '\0'))
			return names[i];
	}
	return NULL;
}

int fs_csv_import(int64_t *out_count, fs_replica *r, const char *entity,
                  const char *path)
{
	const fs_table *t = fs_replica__table(r, entity);
	fs_csv_reader rd;
	FILE *f = NULL;
	char **names = NULL;
	fs_field *fields = NULL;
	size_t ncols = 0, i;
	int rc, id_col = -1, began = 0;
	int64_t count = 0;

	*out_count = 0;
	if (!t)
		return r->err.code;
	f = fopen(path, "rb");
	if (!f)
		return fs_err__set(&r->err, FS_ENOTFOUND, "%s: %s", path,
		                   strerror(errno));
	fs_csv__reader_init(&rd, f);
	rc = fs_csv__read(&rd);
	if (rc <= 0) {
		rc = rc == 0 ? fs_err__set(&r->err, FS_EINVALID,
		                           "%s: empty file (a header row of column "
		                           "names is required)", path)
		             : fs_err__set(&r->err, FS_ECORRUPT, "%s: %s", path,
		                           rd.err);
		goto done;
	}
	ncols = rd.nfields;
	names = calloc(ncols, sizeof(*names));
	fields = calloc(ncols, sizeof(*fields));
	if (!names || !fields) {
		rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < ncols; i++) {
		size_t j;
		names[i] = strdup(fs_csv__field(&rd, i));
		if (!names[i]) {
			rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		if (!strcmp(names[i], "id")) {
			id_col = (int)i;
		} else if (!fs_schema__column(t, names[i]) &&
		           !(strlen(names[i]) > 3 &&
		             !strcmp(names[i] + strlen(names[i]) - 3, "_id"))) {
			rc = fs_err__set(&r->err, FS_EINVALID,
			                 "%s: line 1, column %zu: %s has no field '%s'",
			                 path, i + 1, t->noun, names[i]);
			goto done;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(names[j], names[i])) {
				rc = fs_err__set(&r->err, FS_EINVALID,
				                 "%s: line 1: column '%s' appears twice",
				                 path, names[i]);
				goto done;
			}
	}
	if ((rc = fs_replica__tx_begin(r)) < 0)
		goto done;
	began = 1;
	while ((rc = fs_csv__read(&rd)) == 1) {
		const char *id = NULL;
		int exists = 0;
		size_t nf = 0;

		if (rd.nfields == 1 && fs_csv__field(&rd, 0)[0] == '\0')
			continue;   /* blank line */
		if (rd.nfields != ncols) {
			rc = fs_err__set(&r->err, FS_EINVALID,
			                 "%s: line %lld: %zu fields, the header has %zu",
			                 path, (long long)rd.line, rd.nfields, ncols);
			goto done;
		}
		for (i = 0; i < ncols; i++) {
			const char *v = fs_csv__field(&rd, i);
			if ((int)i == id_col) {
				id = *v ? v : NULL;
				continue;
			}
			fields[nf].name = names[i];
			fields[nf++].value = *v ? v : NULL;
		}
		if (id && (rc = fs_replica__exists(r, t->name, id)) < 0)
			goto done;
		exists = id && rc == 1;
		if (exists) {
			rc = fs_record__update(r, t, id, fields, nf);
		} else {
			char newid[FS_ID_SIZE];
			if (id) {
				fields[nf].name = "id";
				fields[nf++].value = id;
			}
			/* Lines priced from the catalogue work here too. */
			rc = fs_record__insert(newid, r, t, fields, nf);
		}
		if (rc < 0) {
			const char *col = blamed_column(r, t, names, ncols);
			if (col)
				fs_err__prefix(&r->err, "%s: line %lld, column %s", path,
				               (long long)rd.line, col);
			else
				fs_err__prefix(&r->err, "%s: line %lld", path,
				               (long long)rd.line);
			goto done;
		}
		count++;
	}
	if (rc < 0) {
		rc = fs_err__set(&r->err, FS_ECORRUPT, "%s: %s", path, rd.err);
		goto done;
	}
	rc = 0;
done:
	if (began)
		rc = fs_replica__tx_end(r, rc);
	if (rc == 0)
		*out_count = count;
	if (names)
		for (i = 0; i < ncols; i++)
			free(names[i]);
	free(names);
	free(fields);
	fs_csv__reader_free(&rd);
	fclose(f);
	return rc;
}

/* The text form of one stored value (what import accepts). */
static int text_value(fs_buf *b, sqlite3_stmt *st, int idx, fs_kind k)
{
	int type = sqlite3_column_type(st, idx);
	int scale = fs_value__scale(k);

	if (type == SQLITE_NULL)
		return 0;
	if (type == SQLITE_INTEGER) {
		sqlite3_int64 i = sqlite3_column_int64(st, idx);
		if (k == FS_KIND_BOOLEAN)
			return fs_buf_puts(b, i ? "true" : "false");
		if (scale > 0)
			return fs_value__format_decimal(b, i, scale, k != FS_KIND_MONEY);
		return fs_buf_printf(b, "%lld", (long long)i);
	}
	return fs_buf_puts(b, (const char *)sqlite3_column_text(st, idx));
}

int fs_csv_export(fs_replica *r, const char *entity, fs_write_cb cb,
                  void *payload)
{
	const fs_table *t = fs_replica__table(r, entity);
	fs_buf sql = FS_BUF_INIT, line = FS_BUF_INIT, v = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc, error = -1;

	if (!t)
		return r->err.code;
	fs_buf_puts(&sql, "SELECT id");
	fs_buf_puts(&line, "id");
	for (i = 0; i < t->ncols; i++) {
		fs_buf_printf(&sql, ", \"%s\"", t->cols[i].name);
		fs_buf_putc(&line, ',');
		fs_csv__write_field(&line, t->cols[i].name);
	}
	fs_buf_printf(&sql, " FROM \"%s\" ORDER BY id", t->name);
	fs_buf_puts(&line, "\r\n");
	if (sql.failed || line.failed) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if ((rc = cb(line.ptr, line.len, payload)) != 0) {
		error = rc;
		goto done;
	}
	if (fs_replica__prepare(&st, r, sql.ptr) < 0)
		goto done;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_buf_clear(&line);
		fs_buf_puts(&line, (const char *)sqlite3_column_text(st, 0));
		for (i = 0; i < t->ncols; i++) {
			fs_buf_clear(&v);
			text_value(&v, st, (int)i + 1, t->cols[i].kind);
			fs_buf_putc(&line, ',');
			fs_csv__write_field(&line, v.ptr ? v.ptr : "");
		}
		fs_buf_puts(&line, "\r\n");
		if (line.failed || v.failed) {
			fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto done;
		}
		if ((rc = cb(line.ptr, line.len, payload)) != 0) {
			error = rc;
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		fs_err__sqlite(&r->err, r->db, rc, "exporting");
		goto done;
	}
	error = 0;
done:
	fs_replica__finish(r, st);
	fs_buf_free(&sql);
	fs_buf_free(&line);
	fs_buf_free(&v);
	return error < 0 ? r->err.code : error;
}
