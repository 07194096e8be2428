/*
** replica_int.h -- the replica handle and helpers shared by the client library.
*/
#ifndef FS_REPLICA_INT_H
#define FS_REPLICA_INT_H

#include <sqlite3.h>

#include "buf.h"
#include "capture.h"
#include "err.h"
#include "fieldsync.h"
#include "schema.h"
#include "uuid.h"

/* Prepared statements are cached per handle: the same few statements run
** for every record, and preparing them dominates otherwise. */
#define FS_STMT_CACHE 64
/* Where to look first for a pointer's slot (a hint, always checked). */
#define FS_STMT_HINT(p) ((size_t)(((uintptr_t)(p) >> 4) % FS_STMT_CACHE))

typedef struct fs_stmt_slot {
	char *sql;
	uintptr_t key;       /* the caller's pointer at the last lookup: a
	                     ** constant SQL text is found without hashing */
	uint64_t hash;       /* of sql: most other lookups compare only this */
	sqlite3_stmt *st;
	unsigned long used;  /* LRU stamp */
	int in_use;          /* handed out and not yet finished */
} fs_stmt_slot;

#define FS_TX_DEPTH 32   /* deepest nesting of write calls */

/* The SQL text of a write of fields cols[0..n) of t: the same fields
** again reuse the text, building none, and the statement cache finds its
** pointer first. */
typedef struct fs_write_sql {
	const fs_table *t;
	const fs_column **cols;
	size_t n;
	char *sql;
} fs_write_sql;

struct fs_replica {
	sqlite3 *db;
	fs_err err;
	fs_schema schema;
	fs_capture cap;
	char *path;
	int explicit_tx;     /* inside fs_replica_begin() */
	int depth;           /* fs_replica__tx_begin() nesting */
	unsigned int sales_flags;  /* FS_ORDER_* of the order call under way */
	int server;          /* a server's central database: no capture */
	fs_rand rnd;         /* randomness for ids */
	fs_stmt_slot stmts[FS_STMT_CACHE];
	unsigned char hint_sql[FS_STMT_CACHE];  /* by SQL text pointer */
	unsigned char hint_st[FS_STMT_CACHE];   /* by statement pointer */
	unsigned long stmt_clock;
	sqlite3_stmt **apply_ins;  /* per table: apply.c's record INSERT */
	const fs_table *ins_bound; /* the table whose INSERT is bound */
	/* ...and, bound with FS_BIND_KINDS, the values of its links. */
#define FS_LINKS_MAX 8
	const fs_column *ins_link_col[FS_LINKS_MAX];
	char ins_link_id[FS_LINKS_MAX][64];
	int ins_nlinks;
	sqlite3_stmt ***apply_upd; /* per table, per column: its UPDATE */
	sqlite3_stmt **apply_obj;  /* per table: a record as a JSON object */
	sqlite3_stmt *log_ins[3];  /* server: logq.c's fs_log INSERTs */
	struct fs_group *groups;   /* server: per table, creations waiting
	                           ** for a group INSERT (apply.c) */
	const fs_table *grp_pending;  /* the table of a slot bound, not added */
	uint64_t now_s;            /* fs_replica__now_cached()'s second */
	char now_text[24];
	/* record.c's last INSERT and UPDATE (fs_write_sql). */
	fs_write_sql ins, upd;
};

/* A field resolved against the schema, with its value converted. */
typedef struct fs_value {
	const fs_column *col;
	int type;            /* SQLITE_NULL, SQLITE_INTEGER or SQLITE_TEXT */
	int64_t i;
	const char *s;       /* borrowed for TEXT (or normalised copy below) */
	char norm[24];       /* normalised timestamp */
} fs_value;

/* Internal transactions nest as savepoints: every public write call is
** atomic, and inside fs_replica_begin() it joins the caller's transaction. */
int fs_replica__tx_begin(fs_replica *r);
int fs_replica__tx_end(fs_replica *r, int rc);
/* Writes captured changes to fs_change (capture.h): all, or only whole
** multi-row statements' worth.  Before writing a log row directly, flush
** all, so the rows stay in the order of the writes. */
int fs_replica__flush(fs_replica *r, int all);
/* After a write inside a long transaction: whole statements' worth, if
** that many wait, so that few do; a failure is left to the final flush. */
void fs_replica__flush_some(fs_replica *r);

const fs_table *fs_replica__table(fs_replica *r, const char *entity);
/* Converts the text form of a value of column c; FS_EINVALID naming the
** table and field on a bad value. */
int fs_replica__convert(fs_value *out, fs_replica *r, const fs_table *t,
                        const fs_column *c, const char *text);
int fs_replica__bind(sqlite3_stmt *st, int idx, const fs_value *v);
/* 1 if a record of table with that id exists, 0 if not, <0 on error. */
int fs_replica__exists(fs_replica *r, const char *table, const char *id);
/* A prepared statement for sql, from the handle's cache when possible.
** Give it back with fs_replica__finish() (never sqlite3_finalize). */
int fs_replica__prepare(sqlite3_stmt **out, fs_replica *r, const char *sql);
/* Resets a statement from fs_replica__prepare() for reuse.  Accepts NULL. */
void fs_replica__finish(fs_replica *r, sqlite3_stmt *st);
/* Runs a statement that returns no rows (or ignores them). */
int fs_replica__step_done(fs_replica *r, sqlite3_stmt *st, const char *what);
/* Appends the JSON form of column value st[idx] (kind k) to b. */
int fs_replica__json_value(fs_buf *b, sqlite3_stmt *st, int idx, fs_kind k);
/* The setting "user" or NULL (borrowed until the next call). */
int fs_replica__user(fs_replica *r, char *out, size_t size);
void fs_replica__now(char out[24]);
/* The same, formatted at most once per second per handle. */
void fs_replica__now_cached(fs_replica *r, char out[24]);

/* Sales rules applied by the generic record layer (sales.c). */
int fs_sales__before_insert(fs_replica *r, const fs_table *t, fs_value *vals,
                            size_t n);
/* Whether fs_sales__before_update() reads the record being updated: it
** then must exist beforehand (it reads nothing but silence otherwise). */
int fs_sales__reads_before_update(const fs_table *t);
int fs_sales__before_update(fs_replica *r, const fs_table *t, const char *id,
                            fs_value *vals, size_t n);
int fs_sales__before_delete(fs_replica *r, const fs_table *t, const char *id);
/* Credit check of an order created by a plain insert. */
int fs_sales__after_insert(fs_replica *r, const fs_table *t, const char *id);

/* SQL functions fs_line_net(qty, price, discount) and fs_line_tax(net,
** rate) used by totals, reports and the credit check. */
int fs_sales__register(fs_replica *r);
/* Fills unit_price and tax_rate of a new quote/order line from the
** catalogue when not given; out and nout receive the completed field list (owned
** by pool; free both). */
int fs_sales__complete_line(fs_field **out, size_t *nout, char **pool,
                            fs_replica *r, const fs_table *t,
                            const fs_field *fields, size_t n);

/* Applying changes from elsewhere (apply.c). */
int fs_replica__capture(fs_replica *r, int on);   /* returns the old state */
int fs_replica__apply_insert(fs_replica *r, const fs_table *t,
                             const char *rid, const char *json);
/* The same in two steps, reading the record's JSON once (the server
** checks the record between them): binds each field of json to t's
** INSERT; want (may be NULL), when present, is returned in *want_text
** (malloc'd; NULL when null) and the result is 1, else 0.  FS_ECORRUPT
** on malformed JSON.  strict (a pushed record, FS_BIND_STRICT):
** FS_EINVALID when a field is given twice or a field name holds a NUL,
** since every reader of the record must see the same value of a field;
** FS_BIND_KINDS also when a value is not of its field's kind or a link
** points at record rid itself (a device's push; head office's changes at
** a regional server are taken as sent).  Then
** fs_replica__insert_run() inserts record rid of t, as bound by the last
** fs_replica__insert_bind() of this handle. */
#define FS_BIND_STRICT 1
#define FS_BIND_KINDS  2
int fs_replica__insert_bind(fs_replica *r, const fs_table *t,
                            const char *rid, const char *json, int strict,
                            const fs_column *want, char **want_text);
int fs_replica__insert_run(fs_replica *r, const fs_table *t,
                           const char *rid);
/* Group inserts, for the server's merge.  A creation bound with
** fs_replica__group_bind() waits in a row ("slot") of one INSERT of
** FS_GROUP_ROWS rows of its table; fs_replica__group_add() then says it
** goes in, and fs_replica__group_run() inserts every record added, in
** one statement per table.  One INSERT per record cost 26k instructions
** of a creation's merge, about half of it the statement's own (callgrind);
** the group pays that once.  Until the run, the records are not in their
** tables: the caller runs the groups before anything reads a record
** table, and before COMMIT.
**
** group_room: whether t's group has a free slot (else run it first).
** group_bind: as fs_replica__insert_bind(), into the next free slot (the
** JSON is copied).  group_pending: whether the last group_bind was of t
** and is not added yet; group_unpend forgets it (its slot is reused).
** group_add: the slot bound last goes in, as record rid, with the
** caller's tag and tag2.  group_holds: whether a record added and not yet
** run is rid.  group_run: a record the database refuses (a constraint:
** FS_EINVALID, r->err says why) is reported to fail(ctx, ...), which
** returns 0 or <0 to abandon; the others go in.  group_reset: drops what
** waits (a rolled-back transaction). */
#define FS_GROUP_ROWS 64
typedef int (*fs_group_fail)(void *ctx, const fs_table *t, const char *rid,
                             uint64_t tag, int64_t tag2);
int fs_replica__group_room(fs_replica *r, const fs_table *t);
int fs_replica__group_bind(fs_replica *r, const fs_table *t,
                           const char *rid, const char *json, int strict,
                           const fs_column *want, char **want_text);
int fs_replica__group_pending(const fs_replica *r, const fs_table *t);
void fs_replica__group_unpend(fs_replica *r);
int fs_replica__group_add(fs_replica *r, const fs_table *t, const char *rid,
                          uint64_t tag, int64_t tag2);
int fs_replica__group_holds(const fs_replica *r, const char *rid);
int fs_replica__group_run(fs_replica *r, fs_group_fail fail, void *ctx);
void fs_replica__group_reset(fs_replica *r);
void fs_replica__group_free(fs_replica *r);
int fs_replica__apply_update(fs_replica *r, const fs_table *t,
                             const char *rid, const fs_column *c,
                             const char *json_value);
/* Whether a pushed field value (JSON) is of c's kind, as a strict
** fs_replica__insert_bind() checks every field of a creation, and, with
** links, whether a link names a record the server holds, or held (its
** tombstone: deleted meanwhile): 0 yes, FS_EINVALID (a misfit, a
** malformed value, a record not held) with the reason.  links_check:
** every link of record rid of t as the last fs_replica__insert_bind()
** (FS_BIND_KINDS) bound them.  Links are checked where the database holds
** every record (head office): a regional server holds only its scope's. */
int fs_replica__value_check(fs_replica *r, const fs_table *t,
                            const char *rid, const fs_column *c,
                            const char *json_value, int links);
int fs_replica__links_check(fs_replica *r, const fs_table *t,
                            const char *rid);
int fs_replica__apply_delete(fs_replica *r, const fs_table *t,
                             const char *rid);
/* A field's value as JSON (col NULL or "": the whole record as a JSON
** object).  1 found (*out owned by caller), 0 no such record, <0 error. */
int fs_replica__field_json(char **out, fs_replica *r, const fs_table *t,
                           const char *rid, const char *col);
/* Runs sql_fmt, its one %s replaced by the condition "the rows of u that
** hang off record ?1 of top" (fs_schema__hangs_sql), with ?1 = id and ?2 =
** arg2 (NULL: unbound).  0 without running anything when u does not hang
** off top. */
int fs_replica__exec_hanging(fs_replica *r, const fs_table *u,
                             const fs_table *top, const char *sql_fmt,
                             const char *id, const char *arg2,
                             const char *what);
/* fs_replica_dump(), only the records in the scope loaded into
** temp.fs_scope when scoped (server/policy.h). */
int fs_replica__dump_scoped(fs_replica *r, int scoped, fs_json_cb cb,
                            void *payload);
/* Opens a server's central database: the same schema, no change
** capture (a server keeps its own log, fs_log). */
int fs_replica__open_server(fs_replica **out, const char *path, int create);
/* One sync at a time per replica (synclock.c): *fd holds the lock until
** fs_replica__sync_unlock(*fd).  FS_EBUSY when another sync holds it. */
int fs_replica__sync_lock(fs_replica *r, int *fd);
void fs_replica__sync_unlock(int fd);
/* Runs SQL that returns no rows (several statements allowed). */
int fs_replica__exec(fs_replica *r, const char *sql, const char *what);
/* Runs one statement that returns no rows, with text parameters ?1 = a
** and ?2 = b (cached: for SQL run again and again). */
int fs_replica__exec2(fs_replica *r, const char *sql, const char *a,
                      const char *b, const char *what);
/* fs_meta 'hlc' = max(itself, hlc): the greatest clock this database has
** seen (a replica's own clock floor; a server's, sent in WELCOME). */
int fs_replica__meta_hlc(fs_replica *r, int64_t hlc, const char *what);
/* Makes the next sync bootstrap from a snapshot again (cursor, snapshot
** position reset).  refresh_from: "" for a plain restart, or the log
** position to replay from once the snapshot is in (sync.c). */
int fs_replica__rebootstrap(fs_replica *r, const char *refresh_from);

/* Record layer entry points working on resolved tables. */
int fs_record__insert(char *out_id, fs_replica *r, const fs_table *t,
                      const fs_field *fields, size_t nfields);
int fs_record__update(fs_replica *r, const fs_table *t, const char *id,
                      const fs_field *fields, size_t nfields);
int fs_record__json(fs_buf *b, fs_replica *r, const fs_table *t,
                    const char *id, int with_table);

#endif
