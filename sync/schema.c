/*
** schema.c -- applying migrations and reading record metadata.  See schema.h.
*/
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "fieldsync.h"
#include "value.h"

int fs_schema__latest(void)
{
	int v = 0, i;

	for (i = 0; fs_migrations[i].version; i++)
		v = fs_migrations[i].version;
	return v;
}

const char *fs_schema__sql(int version)
{
	int i;

	for (i = 0; fs_migrations[i].version; i++)
		if (fs_migrations[i].version == version)
			return fs_migrations[i].sql;
	return NULL;
}

static int table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
	        -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		found = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return found;
}

int fs_schema__version(int *out, sqlite3 *db, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, ntables = 0;

	*out = 0;
	/* Reading sqlite_master is the first thing that touches the file, so
	** a file that is not a database fails here. */
	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1,
	                        &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ntables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(e, db, rc, "reading the database");
	if (ntables == 0)
		return 0;
	if (!table_exists(db, "schema_version"))
		return fs_err__set(e, FS_ECORRUPT,
		                   "not a Fieldsync database (no schema_version table)");
	rc = sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(e, db, rc, "reading schema_version");
	return 0;
}

int fs_schema__migrate(int *applied, sqlite3 *db, fs_err *e)
{
	int have, latest = fs_schema__latest(), i, rc;
	char *msg = NULL;

	*applied = 0;
	if ((rc = fs_schema__version(&have, db, e)) < 0)
		return rc;
	if (have > latest)
		return fs_err__set(e, FS_EVERSION,
		        "database schema version %d is newer than this program "
		        "understands (%d); upgrade Fieldsync", have, latest);
	for (i = 0; fs_migrations[i].version; i++) {
		const fs_migration *m = &fs_migrations[i];
		sqlite3_stmt *st = NULL;
		char now[32];

		if (m->version <= have)
			continue;
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return fs_err__sqlite(e, db, rc, "starting a migration");
		rc = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
		if (rc == SQLITE_OK) {
			fs_value__format_time(now, (uint64_t)time(NULL) * 1000);
			rc = sqlite3_prepare_v2(db,
			        "INSERT INTO schema_version(version, name, applied_at) "
			        "VALUES (?, ?, ?)", -1, &st, NULL);
			if (rc == SQLITE_OK) {
				sqlite3_bind_int(st, 1, m->version);
				sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
				sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
				rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK
				                                     : sqlite3_errcode(db);
			}
			sqlite3_finalize(st);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			fs_err__set(e, FS_ERROR, "migration %s failed: %s", m->name,
			            msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return e->code;
		}
		(*applied)++;
	}
	return 0;
}

static char *dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void fs_schema__free(fs_schema *s)
{
	size_t i, j;

	if (!s)
		return;
	for (i = 0; i < s->ntables; i++) {
		fs_table *t = &s->tables[i];
		for (j = 0; j < t->ncols; j++) {
			free(t->cols[j].name);
			free(t->cols[j].ref);
			free(t->cols[j].dflt);
		}
		free(t->cols);
		free(t->name);
		free(t->noun);
		free(t->label);
		free(t->parent);
	}
	free(s->tables);
	memset(s, 0, sizeof(*s));
}

static int load_columns(fs_table *t, sqlite3 *db, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, error = -1;
	size_t cap = 0;

	rc = sqlite3_prepare_v2(db,
	        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, dflt_value "
	        "FROM pragma_table_info(?) ORDER BY cid", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		fs_column *c;

		if (!strcmp(name, "id"))
			continue;
		if (t->ncols == cap) {
			fs_column *n;
			cap = cap ? cap * 2 : 16;
			n = realloc(t->cols, cap * sizeof(*n));
			if (!n)
				goto oom;
			t->cols = n;
		}
		c = &t->cols[t->ncols];
		memset(c, 0, sizeof(*c));
		c->name = dup(name);
		if (!c->name)
			goto oom;
		t->ncols++;
		c->kind = fs_value__kind((const char *)sqlite3_column_text(st, 1));
		c->notnull = sqlite3_column_int(st, 2);
		c->has_default = sqlite3_column_int(st, 3);
		if (c->has_default) {
			c->dflt = dup((const char *)sqlite3_column_text(st, 4));
			if (!c->dflt)
				goto oom;
		}
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);
	st = NULL;
	rc = sqlite3_prepare_v2(db,
	        "SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?)",
	        -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *from = (const char *)sqlite3_column_text(st, 0);
		size_t j;

		for (j = 0; j < t->ncols; j++) {
			if (strcmp(t->cols[j].name, from))
				continue;
			free(t->cols[j].ref);
			t->cols[j].ref = dup((const char *)sqlite3_column_text(st, 1));
			if (!t->cols[j].ref)
				goto oom;
			if (t->parent && !strcmp(t->cols[j].ref, t->parent))
				t->parent_col = &t->cols[j];
		}
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	error = 0;
	goto done;
oom:
	fs_err__set(e, FS_ERROR, "out of memory reading the schema");
	goto done;
sqlfail:
	fs_err__sqlite(e, db, rc, "reading the schema");
done:
	sqlite3_finalize(st);
	return error ? e->code : 0;
}

int fs_schema__load(fs_schema *out, sqlite3 *db, fs_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, error = -1;
	size_t cap = 0, i;

	memset(out, 0, sizeof(*out));
	if ((rc = fs_schema__version(&out->version, db, e)) < 0)
		return rc;
	rc = sqlite3_prepare_v2(db, out->version >= 4
	        ? "SELECT tbl, noun, label, parent, scope_via FROM fs_entity "
	          "ORDER BY ord"
	        : "SELECT tbl, noun, label, parent, NULL FROM fs_entity "
	          "ORDER BY ord",
	        -1, &st, NULL);
	if (rc != SQLITE_OK) {
		fs_err__sqlite(e, db, rc, "reading fs_entity");
		goto done;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_table *t;

		if (out->ntables == cap) {
			fs_table *n;
			cap = cap ? cap * 2 : 16;
			n = realloc(out->tables, cap * sizeof(*n));
			if (!n)
				goto oom;
			out->tables = n;
		}
		t = &out->tables[out->ntables];
		memset(t, 0, sizeof(*t));
		out->ntables++;
		t->name = dup((const char *)sqlite3_column_text(st, 0));
		t->noun = dup((const char *)sqlite3_column_text(st, 1));
		t->label = dup((const char *)sqlite3_column_text(st, 2));
		t->parent = dup((const char *)sqlite3_column_text(st, 3));
		if (!t->name || !t->noun || !t->label ||
		    (sqlite3_column_type(st, 3) != SQLITE_NULL && !t->parent))
			goto oom;
		if (load_columns(t, db, e) < 0)
			goto done;
		if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
		    !(t->scope_col = fs_schema__column(t,
		            (const char *)sqlite3_column_text(st, 4)))) {
			fs_err__set(e, FS_ECORRUPT, "fs_entity: %s has no field %s",
			            t->name, (const char *)sqlite3_column_text(st, 4));
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		fs_err__sqlite(e, db, rc, "reading fs_entity");
		goto done;
	}
	/* Second pass: the tables array no longer moves. */
	for (i = 0; i < out->ntables; i++) {
		fs_table *t = &out->tables[i];
		if (!t->scope_col || !t->scope_col->ref)
			continue;
		t->scope_parent = fs_schema__table(out, t->scope_col->ref);
		if (!t->scope_parent || !t->scope_parent->scope_col) {
			fs_err__set(e, FS_ECORRUPT, "fs_entity: %s is scoped through %s, "
			            "which is not scoped", t->name, t->scope_col->ref);
			goto done;
		}
	}
	error = 0;
	goto done;
oom:
	fs_err__set(e, FS_ERROR, "out of memory reading the schema");
done:
	sqlite3_finalize(st);
	if (error) {
		fs_schema__free(out);
		return e->code ? e->code : FS_ERROR;
	}
	return 0;
}

const fs_table *fs_schema__table(const fs_schema *s, const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < s->ntables; i++)
		if (!strcmp(s->tables[i].noun, name) ||
		    !strcmp(s->tables[i].name, name))
			return &s->tables[i];
	return NULL;
}

const fs_column *fs_schema__column(const fs_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			return &t->cols[i];
	return NULL;
}

const fs_table *fs_schema__scope_root(const fs_schema *s)
{
	size_t i;

	for (i = 0; i < s->ntables; i++)
		if (s->tables[i].scope_col && !s->tables[i].scope_parent)
			return &s->tables[i];
	return NULL;
}

/* Whether t is top or hangs off it through its links. */
static int hangs_off(const fs_table *t, const fs_table *top)
{
	while (t && t != top)
		t = t->scope_parent;
	return t != NULL;
}

int fs_schema__hangs_sql(fs_buf *sql, const fs_table *t, const fs_table *top,
                         const char *cond)
{
	if (t == top) {
		fs_buf_puts(sql, cond);
		return 1;
	}
	if (!hangs_off(t, top))
		return 0;
	fs_buf_printf(sql, "\"%s\" IN (SELECT id FROM \"%s\" WHERE ",
	              t->scope_col->name, t->scope_parent->name);
	fs_schema__hangs_sql(sql, t->scope_parent, top, cond);
	fs_buf_puts(sql, ")");
	return 1;
}

int fs_schema__in_scope_sql(fs_buf *sql, const fs_schema *s,
                            const fs_table *t)
{
	const fs_table *root = fs_schema__scope_root(s);
	char cond[200];

	if (!root || !t->scope_col)
		return 0;
	snprintf(cond, sizeof(cond),
	         "\"%s\" IN (SELECT code FROM temp.fs_scope)",
	         root->scope_col->name);
	if (!hangs_off(t, root))
		return 0;
	fs_buf_putc(sql, '+');   /* (see schema.h) */
	return fs_schema__hangs_sql(sql, t, root, cond);
}
