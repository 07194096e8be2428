/*
** schema.h -- migrations and the record metadata read back from them.
**
** schema/NNN_*.sql are embedded at build time (schema/embed.cmake) and
** applied in order, each in its own transaction together with its row in
** the schema_version table.  After migrating, the tables listed in
** fs_entity are read back through PRAGMA table_info and foreign_key_list
** into an fs_schema: the one description of records that CRUD, CSV, dump
** and change capture are driven by.
*/
#ifndef FS_SCHEMA_H
#define FS_SCHEMA_H

#include <stddef.h>
#include <sqlite3.h>

#include "err.h"
#include "value.h"

typedef struct fs_migration {
	int version;
	const char *name;
	const char *sql;
} fs_migration;

/* Generated: every migration in order, ended by a zero entry. */
extern const fs_migration fs_migrations[];

typedef struct fs_column {
	char *name;
	fs_kind kind;
	int notnull;
	int has_default;
	char *dflt;         /* the default's SQL expression, or NULL */
	char *ref;          /* table this column links to, or NULL */
} fs_column;

typedef struct fs_table {
	char *name;         /* SQL table */
	char *noun;         /* what users type */
	char *label;        /* field that names a record in lists */
	char *parent;       /* owning table of a line table, or NULL */
	const fs_column *parent_col;  /* the column linking to parent */
	fs_column *cols;    /* every column but id, in declaration order */
	size_t ncols;
	/* Scope (schema/004_scope.sql): the column linking a record to the
	** record it belongs with, and that record's table; for the scope root
	** (customer) scope_col is the scope key itself and scope_parent NULL.
	** Both NULL: reference data, everyone's. */
	const fs_column *scope_col;
	const struct fs_table *scope_parent;
} fs_table;

typedef struct fs_schema {
	fs_table *tables;   /* in fs_entity.ord order */
	size_t ntables;
	int version;
} fs_schema;

int fs_schema__latest(void);
/* The schema version recorded in db (0 if none). */
int fs_schema__version(int *out, sqlite3 *db, fs_err *e);
/* Applies pending migrations; *applied = how many.  FS_EVERSION if the
** database is newer than this program, FS_ECORRUPT if it holds tables but
** is not a Fieldsync database. */
int fs_schema__migrate(int *applied, sqlite3 *db, fs_err *e);
int fs_schema__load(fs_schema *out, sqlite3 *db, fs_err *e);
void fs_schema__free(fs_schema *s);

/* Lookup by noun or table name; NULL if unknown. */
const fs_table *fs_schema__table(const fs_schema *s, const char *name);
const fs_column *fs_schema__column(const fs_table *t, const char *name);
/* The scope root (customer: the table whose scope_col is the scope key
** itself), or NULL for a schema without scopes. */
const fs_table *fs_schema__scope_root(const fs_schema *s);

/* Appends an SQL condition on the rows of t: those that hang off a row of
** top satisfying cond (a condition on top's columns, appended as is;
** t == top: cond itself).  0, appending nothing, if t does not hang off
** top; else 1. */
struct fs_buf;
int fs_schema__hangs_sql(struct fs_buf *sql, const fs_table *t,
                         const fs_table *top, const char *cond);

/* The condition "t's row is in the scope listed in temp.fs_scope" (the
** scope root's key IN (SELECT code FROM temp.fs_scope)); 0, appending
** nothing, for reference data.  Made for reading t in id order, page by
** page (the snapshot): t's own link column is kept out of index choice
** (a unary +), so that each page walks t by id from where the last one
** ended, instead of collecting and sorting the whole scope's rows of t
** again for every page (quadratic: a territory of a million order lines
** took three times the dump+gzip floor). */
int fs_schema__in_scope_sql(struct fs_buf *sql, const fs_schema *s,
                            const fs_table *t);

/* The SQL of one migration (for tools that build raw databases). */
const char *fs_schema__sql(int version);

#endif
