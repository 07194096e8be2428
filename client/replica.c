/*
** replica.c -- opening, migrating and closing a rep's local replica, and
** the transaction and value helpers the rest of client/ builds on.
**
** A replica is one SQLite file in WAL mode with synchronous=FULL: a write
** the library reports as done survives a crash or power cut.  Migrations
** and the capture set-up run at open (schema.c, capture.c).
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "json.h"
#include "uuid.h"
#include "value.h"

void fs_free(void *p)
{
	free(p);
}

const char *fs_replica_errmsg(const fs_replica *r)
{
	return r ? r->err.msg : "out of memory";
}

const char *fs_replica_device(const fs_replica *r)
{
	return r->cap.device;
}

int fs_replica_schema_version(const fs_replica *r)
{
	return r->schema.version;
}

int fs_schema_version_latest(void)
{
	return fs_schema__latest();
}

void fs_replica__now(char out[24])
{
	fs_value__format_time(out, fs_hlc__wall_ms());
}

void fs_replica__now_cached(fs_replica *r, char out[24])
{
	uint64_t ms = fs_hlc__wall_ms();

	/* Formatting is a tenth of a small insert: once per second will do. */
	if (ms / 1000 != r->now_s || !r->now_text[0]) {
		fs_value__format_time(r->now_text, ms);
		r->now_s = ms / 1000;
	}
	memcpy(out, r->now_text, 24);
}

/* Hands out slot s for sql, remembering where sql and its statement
** were found. */
static sqlite3_stmt *slot_take(fs_replica *r, fs_stmt_slot *s,
                               const char *sql)
{
	unsigned char i = (unsigned char)(s - r->stmts);

	s->in_use = 1;
	s->key = (uintptr_t)sql;
	s->used = ++r->stmt_clock;
	r->hint_sql[FS_STMT_HINT(sql)] = i;
	r->hint_st[FS_STMT_HINT(s->st)] = i;
	return s->st;
}

int fs_replica__prepare(sqlite3_stmt **out, fs_replica *r, const char *sql)
{
	fs_stmt_slot *victim = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t h = 14695981039346656037ULL;
	const char *p;
	char *copy;
	size_t i, k;
	int rc;

	*out = NULL;
	/* Most SQL texts are string constants: the same pointer again, from
	** the slot its hint names (looked at first).  The text is still
	** compared, since a freed buffer's address recurs. */
	for (k = 0; k < FS_STMT_CACHE; k++) {
		fs_stmt_slot *s = &r->stmts[(r->hint_sql[FS_STMT_HINT(sql)] + k) %
		                            FS_STMT_CACHE];
		if (s->key == (uintptr_t)sql && !s->in_use && s->sql &&
		    !strcmp(s->sql, sql)) {
			*out = slot_take(r, s, sql);
			return 0;
		}
	}
	for (p = sql; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (i = 0; i < FS_STMT_CACHE; i++) {
		fs_stmt_slot *s = &r->stmts[i];
		if (s->sql && s->hash == h && !s->in_use && !strcmp(s->sql, sql)) {
			*out = slot_take(r, s, sql);
			return 0;
		}
		if (!s->in_use && (!victim || !s->sql ||
		                   (victim->sql && s->used < victim->used)))
			victim = s;
	}
	rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return fs_err__sqlite(&r->err, r->db, rc, "preparing a query");
	}
	/* A statement in use twice (a nested query) simply is not cached. */
	if (victim && (copy = strdup(sql)) != NULL) {
		free(victim->sql);
		sqlite3_finalize(victim->st);
		victim->sql = copy;
		victim->hash = h;
		victim->st = st;
		slot_take(r, victim, sql);
	}
	*out = st;
	return 0;
}

void fs_replica__finish(fs_replica *r, sqlite3_stmt *st)
{
	size_t k;

	if (!st)
		return;
	/* From the slot its hint names, where it usually is. */
	for (k = 0; k < FS_STMT_CACHE; k++) {
		fs_stmt_slot *s = &r->stmts[(r->hint_st[FS_STMT_HINT(st)] + k) %
		                            FS_STMT_CACHE];
		if (s->st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			s->in_use = 0;
			return;
		}
	}
	sqlite3_finalize(st);
}

static void stmt_cache_clear(fs_replica *r)
{
	size_t i;

	for (i = 0; i < FS_STMT_CACHE; i++) {
		free(r->stmts[i].sql);
		sqlite3_finalize(r->stmts[i].st);
		memset(&r->stmts[i], 0, sizeof(r->stmts[i]));
	}
}

int fs_replica__step_done(fs_replica *r, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, what);
	return 0;
}

int fs_replica__exec(fs_replica *r, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		fs_err__sqlite(&r->err, r->db, rc, what);
		sqlite3_free(msg);
		return r->err.code;
	}
	return 0;
}

int fs_replica__exec2(fs_replica *r, const char *sql, const char *a,
                      const char *b, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, what);
	fs_replica__finish(r, st);
	return rc;
}

/* Runs one cached statement that returns no rows. */
static int run(fs_replica *r, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = fs_replica__prepare(&st, r, sql)) < 0)
		return rc;
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, what);
	return 0;
}

int fs_replica__meta_hlc(fs_replica *r, int64_t hlc, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_meta(k, v) VALUES ('hlc', ?) ON CONFLICT(k) "
	        "DO UPDATE SET v = max(v, excluded.v)") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, hlc);
	rc = fs_replica__step_done(r, st, what);
	fs_replica__finish(r, st);
	return rc;
}

int fs_replica__tx_begin(fs_replica *r)
{
	if (r->depth == FS_TX_DEPTH)
		return fs_err__set(&r->err, FS_ERROR, "write calls nested too deep");
	/* A savepoint starts with no captured change waiting: those of the
	** writes before it go to the log now, so that a rollback to it drops
	** exactly the waiting ones, and a flush inside it writes only its
	** own (capture.h). */
	if (r->cap.n && fs_replica__flush(r, 1) < 0)
		return r->err.code;
	/* Outside a transaction, take the write lock first: a call that
	** reads before it writes (the rules, a merge) could not write in a
	** deferred transaction once another process had. */
	if (r->depth == 0 && !r->explicit_tx &&
	    run(r, "BEGIN IMMEDIATE", "starting a transaction") < 0)
		return r->err.code;
	if (run(r, "SAVEPOINT fs_op", "starting a transaction") < 0) {
		if (r->depth == 0 && !r->explicit_tx) {
			fs_err keep = r->err;
			run(r, "ROLLBACK", "rolling back");
			r->err = keep;
		}
		return r->err.code;
	}
	r->depth++;
	return 0;
}

int fs_replica__flush(fs_replica *r, int all)
{
	return fs_capture__flush(&r->cap, all, &r->err) < 0 ? r->err.code : 0;
}

void fs_replica__flush_some(fs_replica *r)
{
	fs_err scratch;

	/* A failure here is not the call's: the changes stay waiting (or are
	** in the log already) and the flush at the end reports it. */
	memset(&scratch, 0, sizeof(scratch));
	fs_capture__flush(&r->cap, 0, &scratch);
}

int fs_replica__tx_end(fs_replica *r, int rc)
{
	int outer;

	if (r->depth > 0)
		r->depth--;
	outer = r->depth == 0 && !r->explicit_tx;
	if (rc == 0) {
		/* All changes before the outermost savepoint commits; else whole
		** statements' worth (many small writes in one transaction share
		** each INSERT into the log). */
		if (fs_replica__flush(r, outer) == 0 &&
		    run(r, "RELEASE fs_op", "committing") == 0 &&
		    (!outer || run(r, "COMMIT", "committing") == 0))
			return 0;
		rc = r->err.code;
	}
	/* The savepoint started with nothing waiting: what waits now was
	** written inside it, and goes with it; so does a failure to note. */
	fs_capture__discard(&r->cap, 0);
	r->cap.failed = 0;
	/* Keep the first error's message: the rollback must not replace it. */
	{
		fs_err keep = r->err;
		if (outer) {
			sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		} else {
			run(r, "ROLLBACK TO fs_op", "rolling back");
			run(r, "RELEASE fs_op", "rolling back");
		}
		r->err = keep;
	}
	return rc;
}

int fs_replica_begin(fs_replica *r)
{
	if (r->explicit_tx)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "a transaction is already open");
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "starting a transaction") < 0)
		return r->err.code;
	r->explicit_tx = 1;
	return 0;
}

int fs_replica_commit(fs_replica *r)
{
	if (!r->explicit_tx)
		return fs_err__set(&r->err, FS_EINVALID, "no transaction is open");
	if (fs_replica__flush(r, 1) < 0 ||
	    fs_replica__exec(r, "COMMIT", "committing") < 0) {
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		r->explicit_tx = 0;
		return r->err.code;
	}
	r->explicit_tx = 0;
	return 0;
}

int fs_replica_rollback(fs_replica *r)
{
	if (!r->explicit_tx)
		return fs_err__set(&r->err, FS_EINVALID, "no transaction is open");
	r->explicit_tx = 0;
	return fs_replica__exec(r, "ROLLBACK", "rolling back");
}

static int meta_get(fs_replica *r, const char *k, sqlite3_stmt **hold)
{
	int rc;

	if (fs_replica__prepare(hold, r, "SELECT v FROM fs_meta WHERE k=?") < 0)
		return r->err.code;
	sqlite3_bind_text(*hold, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(*hold);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, "reading settings");
}

static int meta_set(fs_replica *r, const char *k, const char *v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_meta(k, v) VALUES (?, ?) "
	        "ON CONFLICT(k) DO UPDATE SET v=excluded.v") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (v)
		sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "saving a setting");
	fs_replica__finish(r, st);
	return rc;
}

int fs_replica_setting_get(char **out, fs_replica *r, const char *key)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	rc = meta_get(r, key, &st);
	if (rc == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = strdup((const char *)sqlite3_column_text(st, 0));
		if (!*out)
			rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	fs_replica__finish(r, st);
	if (rc == 0)
		return fs_err__set(&r->err, FS_ENOTFOUND, "no setting '%s'", key);
	return rc < 0 ? rc : 0;
}

int fs_replica_setting_set(fs_replica *r, const char *key, const char *value)
{
	static const char *reserved[] = { "device", "hlc", NULL };
	int i;

	for (i = 0; reserved[i]; i++)
		if (!strcmp(key, reserved[i]))
			return fs_err__set(&r->err, FS_EINVALID,
			                   "setting '%s' is managed by Fieldsync", key);
	return meta_set(r, key, value);
}

int fs_replica__user(fs_replica *r, char *out, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = meta_get(r, "user", &st);

	out[0] = '\0';
	if (rc == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	fs_replica__finish(r, st);
	return rc < 0 ? rc : 0;
}

/* Device id and clock: made once, at creation; the clock restarts from the
** greatest HLC ever written so it never runs backwards across restarts. */
static int init_identity(fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	int rc, error = -1;
	uint64_t last = 0;

	rc = meta_get(r, "device", &st);
	if (rc < 0)
		goto done;
	if (rc == 1) {
		const char *d = (const char *)sqlite3_column_text(st, 0);
		/* Change-log rows say '' for it (sync/capture.h): it must be one
		** id, and a valid one. */
		if (!d || !fs_uuid__valid(d)) {
			fs_err__set(&r->err, FS_ECORRUPT, "the replica's device id "
			            "'%s' is not a UUID", d ? d : "");
			goto done;
		}
		snprintf(r->cap.device, sizeof(r->cap.device), "%s", d);
	} else {
		if (fs_uuid__v7(r->cap.device, fs_hlc__wall_ms(), &r->rnd) < 0) {
			fs_err__set(&r->err, FS_ERROR, "no system randomness for a device id");
			goto done;
		}
		if (meta_set(r, "device", r->cap.device) < 0)
			goto done;
	}
	fs_replica__finish(r, st);
	st = NULL;
	if (fs_replica__prepare(&st, r,
	        "SELECT max(coalesce((SELECT max(hlc) FROM fs_change), 0), "
	        "coalesce((SELECT v FROM fs_meta WHERE k='hlc'), 0))") < 0)
		goto done;
	if (sqlite3_step(st) == SQLITE_ROW)
		last = (uint64_t)sqlite3_column_int64(st, 0);
	r->cap.clock.last = last;
	fs_capture__switch(&r->cap, 1);
	error = 0;
done:
	fs_replica__finish(r, st);
	return error ? r->err.code : 0;
}

/* A fingerprint of the synced tables and their columns (FNV-1a, 64 bits,
** hex): what a pull could have carried to this replica. */
static void columns_print(char out[17], const fs_schema *s)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i, j;

	for (i = 0; i < s->ntables; i++) {
		const fs_table *t = &s->tables[i];
		for (j = 0; j <= t->ncols; j++) {
			const char *p = j == 0 ? t->name : t->cols[j - 1].name;
			for (; *p; p++)
				h = (h ^ (unsigned char)*p) * 1099511628211ULL;
			h = (h ^ (j == t->ncols ? 0x3bu : 0x2cu)) * 1099511628211ULL;
		}
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void meta_copy(char *out, size_t size, sqlite3_stmt *st, int found)
{
	out[0] = '\0';
	if (found == 1 && sqlite3_column_text(st, 0))
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
}

/* After an upgrade that added synced tables or columns, the values the
** replica's earlier pulls skipped (it did not have those fields then) are
** missing here.  The next sync fetches a snapshot again and then replays
** the log from where this replica was, so deletes made meanwhile are not
** missed; pending local changes stay and are pushed as usual. */
static int refresh_if_columns_changed(fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	char now[17], was[17], boot[4], cursor[32];
	int rc;

	columns_print(now, &r->schema);
	rc = meta_get(r, "columns", &st);
	meta_copy(was, sizeof(was), st, rc);
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	if (!strcmp(was, now))
		return 0;
	rc = meta_get(r, "bootstrapped", &st);
	meta_copy(boot, sizeof(boot), st, rc);
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	rc = meta_get(r, "cursor", &st);
	meta_copy(cursor, sizeof(cursor), st, rc);
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	if (was[0] && !strcmp(boot, "1") &&
	    (rc = fs_replica__rebootstrap(r, cursor)) < 0)
		return rc;
	return meta_set(r, "columns", now);
}

static int configure(fs_replica *r, int readonly)
{
	int applied = 0, rc;
	sqlite3_stmt *st = NULL;

	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_timeout(r->db, 5000);
	if (fs_capture__register(r->db, &r->cap, &r->err) < 0 ||
	    fs_sales__register(r) < 0)
		return r->err.code;
	if (!readonly) {
		/* Migrating looks before it touches: a file that is not a
		** Fieldsync database, or is newer than us, is refused unchanged.
		** Only then switch the journal mode (which rewrites the header). */
		if ((rc = fs_schema__migrate(&applied, r->db, &r->err)) < 0)
			return rc;
		if (fs_replica__prepare(&st, r, "PRAGMA journal_mode=WAL") < 0)
			return r->err.code;
		rc = sqlite3_step(st);
		fs_replica__finish(r, st);
		if (rc != SQLITE_ROW)
			return fs_err__sqlite(&r->err, r->db, rc, "opening the replica");
		/* A bigger page cache keeps bulk transactions (imports, sync
		** batches) from spilling pages into the WAL mid-transaction;
		** savepoint and statement journals stay in memory instead of
		** temporary files (multi-statement calls run in savepoints). */
		if (fs_replica__exec(r, "PRAGMA synchronous=FULL; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY",
		         "configuring") < 0)
			return r->err.code;
	}
	if ((rc = fs_schema__load(&r->schema, r->db, &r->err)) < 0)
		return rc;
	if (!readonly && !r->server &&
	    (rc = fs_capture__bind(&r->cap, &r->schema, &r->err)) < 0)
		return rc;
	if (r->schema.version == 0)
		return fs_err__set(&r->err, FS_ECORRUPT,
		                   "replica has no schema (open it writable once)");
	if (readonly && r->schema.version > fs_schema__latest())
		return fs_err__set(&r->err, FS_EVERSION,
		        "database schema version %d is newer than this program "
		        "understands (%d); upgrade Fieldsync", r->schema.version,
		        fs_schema__latest());
	if (readonly)
		return init_identity(r) < 0 ? r->err.code : 0;
	/* A server opens its database once per connection: when there is
	** nothing to set up, do not take the write lock (hundreds of clients
	** connecting at once queued on it, past the busy timeout). */
	if (r->server && !applied) {
		int clean = 0;
		if (fs_replica__prepare(&st, r,
		        "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE "
		        "type = 'trigger' AND name LIKE 'fs\\_cap\\_%' ESCAPE '\\') "
		        "AND EXISTS (SELECT 1 FROM fs_meta WHERE k = 'device')") < 0)
			return r->err.code;
		if (sqlite3_step(st) == SQLITE_ROW)
			clean = sqlite3_column_int(st, 0);
		fs_replica__finish(r, st);
		st = NULL;
		if (clean)
			return init_identity(r) < 0 ? r->err.code : 0;
	}
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "starting a transaction") < 0)
		return r->err.code;
	/* The id guards follow the schema: regenerate them whenever the
	** schema version or capture generation they were made for is not the
	** current one (a migration, a replica last opened by a version that
	** captured with triggers, or a crash between a migration and this
	** step). */
	rc = r->server ? 0 : meta_get(r, "capture_version", &st);
	if (r->server) {
		/* A server never captures: drop any triggers a copied replica
		** file may carry. */
		fs_schema empty = { NULL, 0, r->schema.version };
		rc = fs_capture__install(r->db, &empty, &r->err);
	} else if (rc >= 0) {
		int have = rc == 1 ? sqlite3_column_int(st, 0) : 0;
		int want = r->schema.version * 1000 + FS_CAPTURE_GENERATION;
		rc = 0;
		if (have != want || applied) {
			char v[16];
			snprintf(v, sizeof(v), "%d", want);
			rc = fs_capture__install(r->db, &r->schema, &r->err);
			if (rc == 0)
				rc = meta_set(r, "capture_version", v);
		}
	}
	fs_replica__finish(r, st);
	st = NULL;
	if (rc == 0 && !r->server)
		rc = refresh_if_columns_changed(r);
	if (rc == 0)
		rc = init_identity(r);
	if (rc == 0 && fs_replica__exec(r, "COMMIT", "committing") < 0)
		rc = r->err.code;
	if (rc < 0)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int open_handle(fs_replica **out, const char *path,
                       const fs_open_options *opts, int server)
{
	fs_open_options defaults = FS_OPEN_OPTIONS_INIT;
	fs_replica *r;
	int flags, rc;

	if (!opts)
		opts = &defaults;
	*out = r = calloc(1, sizeof(*r));
	if (!r)
		return FS_ERROR;
	r->server = server;
	if (!path || !*path)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "no replica path (use --db PATH or FIELDSYNC_DB)");
	r->path = strdup(path);
	if (!r->path)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (opts->readonly)
		flags = SQLITE_OPEN_READONLY;
	else
		flags = SQLITE_OPEN_READWRITE |
		        (opts->create ? SQLITE_OPEN_CREATE : 0);
	rc = sqlite3_open_v2(path, &r->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (!opts->create && access(path, F_OK) != 0)
			return fs_err__set(&r->err, FS_ENOTFOUND,
			                   "replica %s does not exist", path);
		return fs_err__sqlite(&r->err, r->db, rc, path);
	}
	rc = configure(r, opts->readonly);
	if (rc < 0 && strncmp(r->err.msg, path, strlen(path)))
		fs_err__prefix(&r->err, "%s", path);
	return rc;
}

int fs_replica_open(fs_replica **out, const char *path,
                    const fs_open_options *opts)
{
	return open_handle(out, path, opts, 0);
}

int fs_replica__open_server(fs_replica **out, const char *path, int create)
{
	fs_open_options o = FS_OPEN_OPTIONS_INIT;
	int rc;

	o.create = create;
	rc = open_handle(out, path, &o, 1);
	if (rc == 0) {
		(*out)->cap.on = 0;
		/* One handle per connection: a smaller page cache each (hundreds
		** of connections at 32 MB could reach gigabytes).  Reads of the
		** database file go through a shared memory map instead of a
		** pread() and a copy per page: a territory snapshot walks whole
		** tables (store.c), and pread's copies were a quarter of the
		** server's time.  Address space only, and SQLite maps no more
		** than the file; writes still go through the WAL. */
		rc = fs_replica__exec(*out, "PRAGMA cache_size=-8192; "
		                      "PRAGMA mmap_size=2147418112", "configuring");
	}
	return rc;
}

void fs_replica_close(fs_replica *r)
{
	if (!r)
		return;
	stmt_cache_clear(r);
	sqlite3_finalize(r->log_ins[0]);
	sqlite3_finalize(r->log_ins[1]);
	sqlite3_finalize(r->log_ins[2]);
	fs_replica__group_free(r);
	if (r->apply_ins) {
		size_t i;
		for (i = 0; i < r->schema.ntables; i++)
			sqlite3_finalize(r->apply_ins[i]);
		free(r->apply_ins);
	}
	if (r->apply_obj) {
		size_t i;
		for (i = 0; i < r->schema.ntables; i++)
			sqlite3_finalize(r->apply_obj[i]);
		free(r->apply_obj);
	}
	if (r->apply_upd) {
		size_t i, j;
		for (i = 0; i < r->schema.ntables; i++) {
			for (j = 0; r->apply_upd[i] && j < r->schema.tables[i].ncols; j++)
				sqlite3_finalize(r->apply_upd[i][j]);
			free(r->apply_upd[i]);
		}
		free(r->apply_upd);
	}
	if (r->db) {
		if (r->explicit_tx)
			sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		fs_capture__free(&r->cap);
		sqlite3_close_v2(r->db);
	}
	fs_schema__free(&r->schema);
	free(r->ins.sql);
	free(r->ins.cols);
	free(r->upd.sql);
	free(r->upd.cols);
	free(r->path);
	free(r);
}

const fs_table *fs_replica__table(fs_replica *r, const char *entity)
{
	const fs_table *t = fs_schema__table(&r->schema, entity);

	if (!t)
		fs_err__set(&r->err, FS_ENOTFOUND, "unknown entity '%s'",
		            entity ? entity : "(null)");
	return t;
}

int fs_entity_foreach(fs_replica *r, fs_name_cb cb, void *payload)
{
	size_t i;
	int rc;

	for (i = 0; i < r->schema.ntables; i++)
		if ((rc = cb(r->schema.tables[i].noun, r->schema.tables[i].name,
		             payload)) != 0)
			return rc;
	return 0;
}

int fs_replica__exists(fs_replica *r, const char *table, const char *id)
{
	sqlite3_stmt *st = NULL;
	char sql[128];
	size_t n = strlen(table);
	int rc;

	if (n > sizeof(sql) - 40)
		return fs_err__set(&r->err, FS_EINVALID, "table name too long");
	memcpy(sql, "SELECT 1 FROM \"", 15);
	memcpy(sql + 15, table, n);
	memcpy(sql + 15 + n, "\" WHERE id=?", 13);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, "looking up a record");
}

int fs_replica__convert(fs_value *v, fs_replica *r, const fs_table *t,
                        const fs_column *c, const char *text)
{
	char why[160];
	int b;

	memset(v, 0, sizeof(*v));
	v->col = c;
	if (!text) {
		v->type = SQLITE_NULL;
		return 0;
	}
	v->type = SQLITE_INTEGER;
	switch (c->kind) {
	case FS_KIND_INTEGER:
		if (fs_value__parse_int(&v->i, text) < 0)
			return fs_err__set(&r->err, FS_EINVALID,
			        "%s.%s: '%s' is not a whole number", t->noun, c->name,
			        text);
		return 0;
	case FS_KIND_BOOLEAN:
		if (fs_value__parse_bool(&b, text) < 0)
			return fs_err__set(&r->err, FS_EINVALID,
			        "%s.%s: '%s' is not true or false", t->noun, c->name,
			        text);
		v->i = b;
		return 0;
	case FS_KIND_MONEY:
	case FS_KIND_QTY:
	case FS_KIND_RATE:
	case FS_KIND_COORD:
		if (fs_value__parse_decimal(&v->i, text, fs_value__scale(c->kind),
		                            why, sizeof(why)) < 0)
			return fs_err__set(&r->err, FS_EINVALID, "%s.%s: %s", t->noun,
			                   c->name, why);
		return 0;
	case FS_KIND_DATE:
		if (!fs_value__valid_date(text))
			return fs_err__set(&r->err, FS_EINVALID,
			        "%s.%s: '%s' is not a date (YYYY-MM-DD)", t->noun,
			        c->name, text);
		break;
	case FS_KIND_TIMESTAMP:
		if (fs_value__norm_timestamp(v->norm, text) < 0)
			return fs_err__set(&r->err, FS_EINVALID,
			        "%s.%s: '%s' is not a time (YYYY-MM-DDTHH:MM:SSZ)",
			        t->noun, c->name, text);
		v->type = SQLITE_TEXT;
		v->s = v->norm;
		return 0;
	case FS_KIND_TEXT:
		break;
	}
	if (!fs_utf8__valid(text, strlen(text)))
		return fs_err__set(&r->err, FS_EINVALID, "%s.%s: not valid UTF-8",
		                   t->noun, c->name);
	v->type = SQLITE_TEXT;
	v->s = text;
	return 0;
}

int fs_replica__bind(sqlite3_stmt *st, int idx, const fs_value *v)
{
	switch (v->type) {
	case SQLITE_INTEGER:
		return sqlite3_bind_int64(st, idx, v->i);
	case SQLITE_TEXT:
		/* Not copied: every caller steps st while v lives, and
		** fs_replica__finish() clears the bindings. */
		return sqlite3_bind_text(st, idx, v->s, -1, SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, idx);
	}
}

int fs_replica__json_value(fs_buf *b, sqlite3_stmt *st, int idx, fs_kind k)
{
	int type = sqlite3_column_type(st, idx);
	int scale = fs_value__scale(k);

	if (type == SQLITE_NULL)
		return fs_buf_puts(b, "null");
	if (type == SQLITE_INTEGER) {
		sqlite3_int64 i = sqlite3_column_int64(st, idx);
		if (k == FS_KIND_BOOLEAN)
			return fs_buf_puts(b, i ? "true" : "false");
		if (scale > 0)
			return fs_value__format_decimal(b, i, scale,
			                                k != FS_KIND_MONEY);
		return fs_buf_printf(b, "%lld", (long long)i);
	}
	if (type == SQLITE_FLOAT)
		return fs_buf_printf(b, "%.17g", sqlite3_column_double(st, idx));
	return fs_json__strn(b, (const char *)sqlite3_column_text(st, idx),
	                     (size_t)sqlite3_column_bytes(st, idx));
}

int fs_replica__exec_hanging(fs_replica *r, const fs_table *u,
                             const fs_table *top, const char *sql_fmt,
                             const char *id, const char *arg2,
                             const char *what)
{
	fs_buf cond = FS_BUF_INIT, sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc;

	if (!fs_schema__hangs_sql(&cond, u, top, "id = ?1")) {
		fs_buf_free(&cond);
		return 0;
	}
	if (!cond.failed)
		fs_buf_printf(&sql, sql_fmt, cond.ptr);
	if (cond.failed || sql.failed) {
		rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
	} else if ((rc = fs_replica__prepare(&st, r, sql.ptr)) == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (arg2)
			sqlite3_bind_text(st, 2, arg2, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(r, st, what);
		fs_replica__finish(r, st);
	}
	fs_buf_free(&cond);
	fs_buf_free(&sql);
	return rc;
}
