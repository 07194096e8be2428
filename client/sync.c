/*
** sync.c -- the client side of synchronisation: enrolment, push, pull,
** snapshot bootstrap (protocol: docs/protocol.md).
**
** Durability and resumption: pending changes leave fs_change only in the
** local transaction that records their ACK; every pulled frame is applied
** in one local transaction together with the new cursor.  A sync cut at
** any point therefore resends only unacknowledged batches (which the
** server applies idempotently) and re-pulls only uncommitted frames.
** Memory stays bounded: at most one batch and one frame are held at once,
** however many changes are pending.
**
** Pulled changes never overwrite a field with a pending local change: the
** local change is pushed first and the server decides (the ACK's
** corrections bring the winner back).
*/
#include "replica_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "pki.h"
#include "tls.h"
#include "value.h"
#include "wire.h"

static int meta_text(char *out, size_t size, fs_replica *r, const char *k)
{
	char *v = NULL;
	int rc = fs_replica_setting_get(&v, r, k);

	out[0] = '\0';
	if (rc == FS_ENOTFOUND) {
		fs_err__clear(&r->err);
		return 0;
	}
	if (rc < 0)
		return rc;
	if (v)
		snprintf(out, size, "%s", v);
	fs_free(v);
	return v ? 1 : 0;
}

static int meta_put(fs_replica *r, const char *k, const char *v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_meta(k, v) VALUES (?, ?) "
	        "ON CONFLICT(k) DO UPDATE SET v = excluded.v") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (v)
		sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "saving sync state");
	fs_replica__finish(r, st);
	return rc;
}

static int meta_put_int(fs_replica *r, const char *k, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return meta_put(r, k, buf);
}

static uint64_t meta_int(fs_replica *r, const char *k)
{
	char buf[32];

	if (meta_text(buf, sizeof(buf), r, k) <= 0)
		return 0;
	return strtoull(buf, NULL, 10);
}

/* The clock: remember the greatest HLC seen so local changes made after a
** sync sort after everything it brought. */
static int save_clock(fs_replica *r)
{
	return fs_replica__meta_hlc(r, (int64_t)r->cap.clock.last,
	                            "saving the clock");
}

int fs_replica_enroll(fs_replica *r, const char *server, const char *dir)
{
	static const char *files[] = { "ca.crt", "device.crt", "device.key" };
	static const char *keys[] = { "tls_ca", "tls_cert", "tls_key" };
	char *text[3] = { NULL, NULL, NULL }, path[1200], old[300];
	char *conf = NULL, user[128] = "", was[128];
	int64_t pending = 0;
	fs_err e;
	int rc = 0, i, lock = -1;

	memset(&e, 0, sizeof(e));
	if (!server || !strchr(server, ':'))
		return fs_err__set(&r->err, FS_EINVALID,
		                   "--server wants HOST:PORT, not '%s'",
		                   server ? server : "");
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if ((rc = fs_pki__read_file(&text[i], path, &e)) < 0) {
			fs_err__set(&r->err, rc, "enrolment files: %s", e.msg);
			goto done;
		}
	}
	/* Check the files form a usable identity before keeping them. */
	{
		fs_tls_conf *c = NULL;
		if ((rc = fs_tls_conf__new(&c, 0, text[0], text[1], text[2], &e)) < 0) {
			fs_err__set(&r->err, rc, "enrolment files in %s: %s", dir, e.msg);
			goto done;
		}
		fs_tls_conf__free(c);
	}
	/* Not while a sync runs: it would go on with the old server's
	** position. */
	if ((rc = fs_replica__sync_lock(r, &lock)) < 0 ||
	    (rc = meta_text(old, sizeof(old), r, "server")) < 0)
		goto done;
	/* device.conf names the user, so status shows it before any sync
	** (the server confirms it at each WELCOME).  Optional. */
	snprintf(path, sizeof(path), "%s/device.conf", dir);
	if (fs_pki__read_file(&conf, path, &e) == 0) {
		char *u = strstr(conf, "user = ");
		if (u && (u == conf || u[-1] == '\n')) {
			u += 7;
			u[strcspn(u, "\r\n")] = '\0';
			snprintf(user, sizeof(user), "%s", u);
		}
	}
	/* Changes made as one user must not be pushed as another's: the
	** server would record the new certificate's user as their author. */
	if ((rc = meta_text(was, sizeof(was), r, "user")) < 0 ||
	    (rc = fs_change_count(&pending, r)) < 0)
		goto done;
	rc = 0;
	if (pending > 0 && was[0] && user[0] && strcmp(was, user)) {
		rc = fs_err__set(&r->err, FS_EINVALID,
		        "this replica has %lld unsynced change(s) made as %s; sync "
		        "them first, or enrol as %s with --discard-unsynced to "
		        "drop them", (long long)pending, was, user);
		goto done;
	}
	if ((rc = fs_replica__tx_begin(r)) < 0)
		goto done;
	for (i = 0; i < 3 && rc == 0; i++)
		rc = meta_put(r, keys[i], text[i]);
	if (rc == 0)
		rc = meta_put(r, "server", server);
	if (rc == 0 && user[0])
		rc = meta_put(r, "user", user);
	/* Another server has another log: start over with a snapshot.
	** Pending changes stay (and are pushed there); records without one
	** give way to that server's snapshot (apply_frame). */
	if (rc == 0 && old[0] && strcmp(old, server))
		rc = fs_replica__rebootstrap(r, "");
	rc = fs_replica__tx_end(r, rc);
done:
	for (i = 0; i < 3; i++)
		free(text[i]);
	free(conf);
	fs_replica__sync_unlock(lock);
	return rc;
}

int fs_replica__rebootstrap(fs_replica *r, const char *refresh_from)
{
	static const char *reset[][2] = {
		{ "cursor", "0" }, { "bootstrapped", "0" }, { "snap_tbl", "" },
		{ "snap_rid", "" }, { "snap_seq", "0" }
	};
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(reset) / sizeof(*reset) && rc == 0; i++)
		rc = meta_put(r, reset[i][0], reset[i][1]);
	return rc < 0 ? rc : meta_put(r, "refresh_from", refresh_from);
}

int fs_replica_discard_unsynced(fs_replica *r)
{
	fs_buf sql = FS_BUF_INIT;
	size_t i;
	int rc, was, lock;

	/* Not while a sync runs: its ACK would meet a log it never sent. */
	if ((rc = fs_replica__sync_lock(r, &lock)) < 0)
		return rc;
	if ((rc = fs_replica__tx_begin(r)) < 0) {
		fs_replica__sync_unlock(lock);
		return rc;
	}
	/* Records go too: they hold the unsynced edits.  The next sync loads
	** the server's state with a snapshot.  Children first. */
	was = fs_replica__capture(r, 0);
	for (i = r->schema.ntables; i-- > 0 && rc == 0;) {
		fs_buf_clear(&sql);
		fs_buf_printf(&sql, "DELETE FROM \"%s\"", r->schema.tables[i].name);
		if (sql.failed)
			rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
		else
			rc = fs_replica__exec(r, sql.ptr, "discarding local records");
	}
	fs_replica__capture(r, was);
	fs_buf_free(&sql);
	if (rc == 0)
		rc = fs_replica__exec(r, "DELETE FROM fs_change",
		                      "discarding unsynced changes");
	if (rc == 0)
		rc = fs_replica__rebootstrap(r, "");
	rc = fs_replica__tx_end(r, rc);
	fs_replica__sync_unlock(lock);
	return rc;
}

/* --------------------------------------------------------------- session */

typedef struct session {
	fs_replica *r;
	fs_tls *tls;
	fs_stream s;
	fs_buf in, out;
	fs_sync_stats *stats;
	const fs_sync_options *opts;
	char server_device[64];
	int rescoped;        /* 1: the scope changed, 2: its snapshot pulled */
	int snap_begins;     /* the snapshot request asks for its first frame */
} session;

static int s_read(void *ctx, void *buf, size_t n, fs_err *e)
{
	return fs_tls__read(ctx, buf, n, e);
}

static int s_write(void *ctx, const void *buf, size_t n, fs_err *e)
{
	return fs_tls__write(ctx, buf, n, e);
}

/* Receives a frame of the wanted type; an ERROR frame becomes the error. */
static int expect(session *x, int want)
{
	fs_err e;
	int rc;

	memset(&e, 0, sizeof(e));
	if ((rc = fs_wire__expect(&x->s, want, &x->in, "server", &e)) < 0)
		return fs_err__set(&x->r->err, rc, "%s", e.msg);
	return 0;
}

static int send_msg(session *x, int type, int compress)
{
	fs_err e;
	int rc;

	memset(&e, 0, sizeof(e));
	if ((rc = fs_wire__send(&x->s, type, &x->out, compress, &e)) < 0)
		return fs_err__set(&x->r->err, rc, "sending to the server: %s",
		                   e.msg);
	return 0;
}

static int progress(session *x, const char *phase, uint64_t done,
                    uint64_t total)
{
	if (x->opts->progress && x->opts->progress(phase, done, total,
	                                           x->opts->payload))
		return fs_err__set(&x->r->err, FS_ERROR, "sync cancelled");
	return 0;
}

/* ------------------------------------------------------------------ pull */

static int has_pending(fs_replica *r, const char *tbl, const char *rid,
                       const char *col)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_change WHERE tbl = ?1 AND rid = ?2 AND "
	        "(op IN ('I', 'D') OR col = ?3) LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col ? col : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, "checking pending changes");
}

static int apply_conflict(fs_replica *r, const fs_entry *en)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* Recorded once; a snapshot's copy of a conflict this replica lists
	** still open brings its resolution ("WHERE true": SQLite's rule for an
	** upsert on INSERT ... SELECT). */
	if (fs_replica__prepare(&st, r,
	        "INSERT OR IGNORE INTO fs_conflict(id, tbl, rid, col, reason, "
	        "winner_value, winner_hlc, winner_device, winner_author, "
	        "loser_value, loser_hlc, loser_device, loser_author, created_at, "
	        "resolved_at, resolved_by, resolution) "
	        "SELECT j->>'$.id', j->>'$.table', j->>'$.record', j->>'$.field', "
	        "j->>'$.reason', j->>'$.winner_value', j->>'$.winner_hlc', "
	        "j->>'$.winner_device', j->>'$.winner_author', j->>'$.loser_value', "
	        "j->>'$.loser_hlc', j->>'$.loser_device', j->>'$.loser_author', "
	        "j->>'$.created_at', j->>'$.resolved_at', j->>'$.resolved_by', "
	        "j->>'$.resolution' FROM (SELECT json(?) AS j) WHERE true "
	        "ON CONFLICT(id) DO UPDATE SET resolved_at = excluded.resolved_at, "
	        "resolved_by = excluded.resolved_by, "
	        "resolution = excluded.resolution "
	        "WHERE fs_conflict.resolved_at IS NULL "
	        "AND excluded.resolved_at IS NOT NULL") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, en->val ? en->val : "{}", -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a conflict");
	fs_replica__finish(r, st);
	return rc;
}

static int apply_resolution(fs_replica *r, const fs_entry *en)
{
	sqlite3_stmt *st = NULL;
	char now[24];
	int rc;

	/* The resolver's clock, not ours: the same time on every replica. */
	fs_value__format_time(now, FS_HLC_MS(en->hlc));
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_conflict SET resolved_at = ?, resolved_by = ?, "
	        "resolution = ? WHERE id = ? AND resolved_at IS NULL") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, en->author ? en->author : "", -1, SQLITE_STATIC);
	if (en->val)
		sqlite3_bind_text(st, 3, en->val, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, en->rid, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a resolution");
	fs_replica__finish(r, st);
	return rc;
}

/* Puts together the fields of every pending creation logged without
** them ('I', val NULL: capture.h), inside the current transaction. */
static int settle_here(fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	int64_t after = 0, last;
	int rc;

	if (fs_replica__prepare(&st, r, "SELECT 1 FROM fs_change WHERE op = 'I' "
	                        "AND val IS NULL LIMIT 1") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "reading pending changes");
	for (;; after = last) {
		if ((rc = fs_capture__settle(r->db, &r->schema, after,
		                             FS_CAPTURE_SETTLE_WINDOW, &last,
		                             &r->err)) < 0)
			return rc;
		if (last == INT64_MAX)
			return 0;
	}
}

/* Drops record (t, rid) and everything hanging off it, without a trace
** in the change log: it left this replica's scope (or was refused as
** outside it; the refusal keeps its data).  Pending changes to it stay and
** are pushed.  A creation among them logged without its fields (made
** after this sync's push put the pending ones together, by another
** process) gets them first: they are read from the record, which is
** about to go. */
static int evict(fs_replica *r, const fs_table *t, const char *rid)
{
	size_t i;
	int rc;

	if ((rc = settle_here(r)) < 0)
		return rc;

	/* Children first; each table's conflicts (they go where the record
	** goes), then its rows. */
	for (i = r->schema.ntables; i-- > 0 && rc == 0;) {
		const fs_table *u = &r->schema.tables[i];
		char fmt[300];

		snprintf(fmt, sizeof(fmt), "DELETE FROM fs_conflict WHERE tbl = '%s' "
		         "AND rid IN (SELECT id FROM \"%s\" WHERE %%s)", u->name,
		         u->name);
		if ((rc = fs_replica__exec_hanging(r, u, t, fmt, rid, NULL,
		                                   "dropping a record out of scope")) < 0)
			break;
		snprintf(fmt, sizeof(fmt), "DELETE FROM \"%s\" WHERE %%s", u->name);
		rc = fs_replica__exec_hanging(r, u, t, fmt, rid, NULL,
		                              "dropping a record out of scope");
	}
	return rc;
}

/* Drops every record without a pending change, capture off: a snapshot
** brings back what the server still gives this replica. */
static int drop_synced(fs_replica *r)
{
	fs_buf sql = FS_BUF_INIT;
	size_t i;
	int rc = 0;

	for (i = r->schema.ntables; i-- > 0 && rc == 0;) {
		const char *name = r->schema.tables[i].name;
		fs_buf_clear(&sql);
		fs_buf_printf(&sql, "DELETE FROM \"%s\" WHERE id NOT IN (SELECT rid "
		              "FROM fs_change WHERE tbl = '%s')", name, name);
		rc = sql.failed ? fs_err__set(&r->err, FS_ERROR, "out of memory")
		     : fs_replica__exec(r, sql.ptr, "dropping records for a snapshot");
	}
	fs_buf_free(&sql);
	return rc;
}

/* The user's scope changed: drop every record without a pending change
** (the snapshot that follows brings back what is still in scope) and
** start that snapshot. */
static int rescope(fs_replica *r)
{
	int rc = drop_synced(r);

	if (rc == 0)
		rc = fs_replica__exec(r, "DELETE FROM fs_conflict",
		                      "dropping conflicts for a new scope");
	return rc < 0 ? rc : fs_replica__rebootstrap(r, "");
}

/* Applies one change from the server, capture off. */
static int apply_remote(fs_replica *r, const fs_entry *en)
{
	const fs_table *t;
	sqlite3_stmt *each = NULL;
	int rc, step = SQLITE_DONE;

	fs_hlc__observe(&r->cap.clock, en->hlc);
	if (en->op == 'C')
		return apply_conflict(r, en);
	if (en->op == 'R')
		return apply_resolution(r, en);
	t = fs_schema__table(&r->schema, en->tbl);
	if (!t || strcmp(t->name, en->tbl))
		return 0;   /* a table this schema version does not have */
	if (en->op == 'X')
		return evict(r, t, en->rid);
	if (en->op == 'D')
		return fs_replica__apply_delete(r, t, en->rid);
	if ((rc = fs_replica__exists(r, t->name, en->rid)) < 0)
		return rc;
	if (en->op == 'U') {
		const fs_column *c = fs_schema__column(t, en->col);
		if (!c || rc == 0)
			return 0;
		if ((rc = has_pending(r, t->name, en->rid, c->name)) != 0)
			return rc < 0 ? rc : 0;
		return fs_replica__apply_update(r, t, en->rid, c, en->val);
	}
	/* 'I': a new record, or one we have, field by field. */
	if (rc == 0) {
		if ((rc = has_pending(r, t->name, en->rid, NULL)) != 0)
			return rc < 0 ? rc : 0;   /* deleted here, not yet pushed */
		return fs_replica__apply_insert(r, t, en->rid, en->val);
	}
	if (fs_replica__prepare(&each, r,
	        "SELECT key, json_quote(value) FROM json_each(?1) "
	        "WHERE json_type(?1) = 'object'") < 0)
		return r->err.code;
	sqlite3_bind_text(each, 1, en->val ? en->val : "{}", -1, SQLITE_STATIC);
	rc = 0;
	while (rc == 0 && (step = sqlite3_step(each)) == SQLITE_ROW) {
		const fs_column *c = fs_schema__column(t,
		        (const char *)sqlite3_column_text(each, 0));
		char *v;
		if (!c)
			continue;
		if ((rc = has_pending(r, t->name, en->rid, c->name)) != 0) {
			rc = rc < 0 ? rc : 0;
			continue;
		}
		v = strdup((const char *)sqlite3_column_text(each, 1));
		if (!v) {
			rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
			break;
		}
		rc = fs_replica__apply_update(r, t, en->rid, c, v);
		free(v);
	}
	/* A value that is not JSON fails the frame, as for a new record. */
	if (rc == 0 && step != SQLITE_DONE)
		rc = fs_err__set(&r->err, FS_ECORRUPT, "server sent %s %s with "
		                 "unreadable fields: %s", t->noun, en->rid,
		                 sqlite3_errmsg(r->db));
	fs_replica__finish(r, each);
	return rc;
}

/* Applies one CHANGES frame in one local transaction with the new cursor
** or snapshot position.  *more says whether to ask again. */
static int apply_frame(session *x, int *more, uint64_t *count,
                       uint64_t *conflicts)
{
	fs_replica *r = x->r;
	uint64_t next, m, snap, snap_seq, n, i;
	const char *stbl, *srid;
	fs_rd rd;
	int rc, was;

	fs_rd__init(&rd, &x->in);
	if ((rc = fs_rd__uv(&rd, &next, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &m, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &snap, &r->err)) < 0 ||
	    (rc = fs_rd__str(&rd, &stbl, &r->err)) < 0 ||
	    (rc = fs_rd__str(&rd, &srid, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &snap_seq, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &n, &r->err)) < 0)
		return fs_err__prefix(&r->err, "server sent bad changes");
	if ((rc = fs_replica_begin(r)) < 0)
		return rc;
	was = fs_replica__capture(r, 0);
	/* A snapshot begins.  Records held without a pending change were
	** pushed and acknowledged before it (a first sync cut after its ACK,
	** a replica enrolled at another server): one deleted at the server
	** meanwhile is not in the snapshot, and its 'D' lies before the
	** snapshot's seq, so no pull would bring it.  The snapshot is the
	** server's state: only local work not yet pushed stays beside it.  (A
	** refresh replays the log from its old cursor: it keeps them.) */
	if (snap == 1 && x->snap_begins)
		rc = drop_synced(r);
	for (i = 0; i < n && rc == 0; i++) {
		fs_entry en;
		if ((rc = fs_rd__entry(&rd, &en, &r->err)) < 0) {
			fs_err__prefix(&r->err, "server sent a bad entry");
			break;
		}
		if (en.op == 'C')
			(*conflicts)++;
		rc = apply_remote(r, &en);
	}
	if (rc == 0 && (rc = fs_rd__end(&rd, &r->err)) < 0)
		fs_err__prefix(&r->err, "server sent bad changes");
	if (rc == 0 && snap == 2) {
		rc = rescope(r);
		x->rescoped++;
	}
	fs_replica__capture(r, was);
	if (rc == 0 && snap == 2) {
		m = 0;   /* pull() starts the snapshot */
	} else if (rc == 0 && snap) {
		/* Snapshot position, so an interrupted bootstrap resumes. */
		rc = meta_put(r, "snap_tbl", stbl ? stbl : "");
		if (rc == 0)
			rc = meta_put(r, "snap_rid", srid ? srid : "");
		if (rc == 0)
			rc = meta_put_int(r, "snap_seq", snap_seq);
		if (rc == 0 && !m) {
			/* A refresh after an upgrade replays the log from where the
			** replica was, not from the snapshot (deletes made since). */
			char from[32];
			uint64_t cursor = snap_seq;
			if ((rc = meta_text(from, sizeof(from), r,
			                    "refresh_from")) > 0 && from[0]) {
				uint64_t f = strtoull(from, NULL, 10);
				if (f < cursor)
					cursor = f;
			}
			rc = rc < 0 ? rc : meta_put_int(r, "cursor", cursor);
			if (rc == 0)
				rc = meta_put(r, "refresh_from", "");
			if (rc == 0)
				rc = meta_put(r, "bootstrapped", "1");
		}
	} else if (rc == 0) {
		rc = meta_put_int(r, "cursor", next);
	}
	if (rc == 0)
		rc = save_clock(r);
	if (rc < 0) {
		fs_err keep = r->err;
		fs_replica_rollback(r);
		r->err = keep;
		return rc;
	}
	if ((rc = fs_replica_commit(r)) < 0)
		return rc;
	*more = (int)m;
	*count = n;
	return 0;
}

static int pull(session *x)
{
	fs_replica *r = x->r;
	int more = 1, rc;
	uint64_t n;
	char flag[8];

	if ((rc = meta_text(flag, sizeof(flag), r, "bootstrapped")) < 0)
		return rc;
	while (strcmp(flag, "1") && more) {
		char tbl[64], rid[64], from[32];
		meta_text(tbl, sizeof(tbl), r, "snap_tbl");
		meta_text(rid, sizeof(rid), r, "snap_rid");
		if ((rc = meta_text(from, sizeof(from), r, "refresh_from")) < 0)
			return rc;
		x->snap_begins = !tbl[0] && !rid[0] && !from[0] &&
		                 meta_int(r, "snap_seq") == 0;
		fs_buf_clear(&x->out);
		fs_wr__uv(&x->out, 0);
		fs_wr__uv(&x->out, 5000);
		fs_wr__uv(&x->out, 1);
		fs_wr__str(&x->out, tbl[0] ? tbl : NULL);
		fs_wr__str(&x->out, rid[0] ? rid : NULL);
		fs_wr__uv(&x->out, meta_int(r, "snap_seq"));
		if ((rc = send_msg(x, FS_MSG_PULL, 0)) < 0 ||
		    (rc = expect(x, FS_MSG_CHANGES)) < 0 ||
		    (rc = apply_frame(x, &more, &n, &x->stats->conflicts)) < 0)
			return rc;
		x->stats->pulled += n;
		x->stats->snapshot = 1;
		if ((rc = progress(x, "snapshot", x->stats->pulled, 0)) < 0)
			return rc;
		if (!more)
			break;
	}
	more = 1;
	while (more) {
		fs_buf_clear(&x->out);
		fs_wr__uv(&x->out, meta_int(r, "cursor"));
		fs_wr__uv(&x->out, 5000);
		fs_wr__uv(&x->out, 0);
		fs_wr__str(&x->out, NULL);
		fs_wr__str(&x->out, NULL);
		fs_wr__uv(&x->out, 0);
		if ((rc = send_msg(x, FS_MSG_PULL, 0)) < 0 ||
		    (rc = expect(x, FS_MSG_CHANGES)) < 0 ||
		    (rc = apply_frame(x, &more, &n, &x->stats->conflicts)) < 0)
			return rc;
		x->stats->pulled += n;
		if ((rc = progress(x, "pull", x->stats->pulled, 0)) < 0)
			return rc;
	}
	if (x->rescoped == 1) {
		x->rescoped = 2;
		return pull(x);   /* the snapshot of the new scope */
	}
	return 0;
}

/* ------------------------------------------------------------------ push */

/* Records the ACK of the batch covering seq first..last: corrections
** applied, refused changes moved to fs_rejection, the rest forgotten. */
static int apply_ack(session *x, int64_t first, int64_t last, uint64_t sent)
{
	fs_replica *r = x->r;
	uint64_t applied, conflicts, nrej, ncorr, i;
	sqlite3_stmt *st = NULL;
	const char *batch;
	char now[24];
	fs_rd rd;
	int rc, was;

	fs_rd__init(&rd, &x->in);
	if ((rc = fs_rd__str(&rd, &batch, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &applied, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &conflicts, &r->err)) < 0 ||
	    (rc = fs_rd__uv(&rd, &nrej, &r->err)) < 0)
		return fs_err__prefix(&r->err, "server sent a bad ACK");
	fs_replica__now(now);
	if ((rc = fs_replica_begin(r)) < 0)
		return rc;
	for (i = 0; i < nrej && rc == 0; i++) {
		uint64_t idx;
		const char *why;
		if ((rc = fs_rd__uv(&rd, &idx, &r->err)) < 0 ||
		    (rc = fs_rd__str(&rd, &why, &r->err)) < 0)
			break;
		if (idx >= sent) {
			rc = fs_err__set(&r->err, FS_ECORRUPT,
			                 "server rejected change %llu of a batch of %llu",
			                 (unsigned long long)idx,
			                 (unsigned long long)sent);
			break;
		}
		if ((rc = fs_replica__prepare(&st, r,
		        "INSERT INTO fs_rejection(seq, tbl, rid, op, col, val, hlc, "
		        "reason, created_at) SELECT seq, tbl, rid, op, col, val, hlc, "
		        "?2, ?3 FROM fs_change WHERE seq >= ?4 AND seq <= ?5 "
		        "ORDER BY seq LIMIT 1 OFFSET ?1")) < 0)
			break;
		sqlite3_bind_int64(st, 1, (int64_t)idx);
		sqlite3_bind_text(st, 2, why ? why : "refused", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, first);
		sqlite3_bind_int64(st, 5, last);
		rc = fs_replica__step_done(r, st, "recording a rejection");
		fs_replica__finish(r, st);
		st = NULL;
		x->stats->rejected++;
	}
	if (rc == 0 && (rc = fs_rd__uv(&rd, &ncorr, &r->err)) < 0)
		fs_err__prefix(&r->err, "server sent a bad ACK");
	/* The batch is settled: forget it before applying corrections, which
	** would otherwise yield to it as to a pending local change (a refused
	** edit must give way to the server's value). */
	if (rc == 0 && (rc = fs_replica__prepare(&st, r,
	        "DELETE FROM fs_change WHERE seq >= ? AND seq <= ?")) == 0) {
		sqlite3_bind_int64(st, 1, first);
		sqlite3_bind_int64(st, 2, last);
		rc = fs_replica__step_done(r, st, "forgetting acknowledged changes");
		fs_replica__finish(r, st);
	}
	was = fs_replica__capture(r, 0);
	for (i = 0; rc == 0 && i < ncorr; i++) {
		fs_entry en;
		if ((rc = fs_rd__entry(&rd, &en, &r->err)) < 0) {
			fs_err__prefix(&r->err, "server sent a bad correction");
			break;
		}
		rc = apply_remote(r, &en);
	}
	fs_replica__capture(r, was);
	if (rc == 0 && (rc = fs_rd__end(&rd, &r->err)) < 0)
		fs_err__prefix(&r->err, "server sent a bad ACK");
	if (rc == 0)
		rc = save_clock(r);
	if (rc < 0) {
		fs_err keep = r->err;
		fs_replica_rollback(r);
		r->err = keep;
		return rc;
	}
	if ((rc = fs_replica_commit(r)) < 0)
		return rc;
	x->stats->pushed += sent - nrej;
	(void)applied;
	(void)conflicts;
	return 0;
}

/* Fills in the fields of the creations logged without them after log
** position after (capture.h), once and durably, so that a batch resent
** after a cut is the same.  A window of creations per transaction keeps
** memory bounded with a million pending (tools/bench/pending.sh). */
static int settle(fs_replica *r, int64_t after)
{
	int64_t last;
	int rc;

	for (;; after = last) {
		if ((rc = fs_replica__tx_begin(r)) < 0 ||
		    (rc = fs_replica__tx_end(r, fs_capture__settle(r->db,
		             &r->schema, after, FS_CAPTURE_SETTLE_WINDOW, &last,
		             &r->err))) < 0)
			return rc;
		if (last == INT64_MAX)
			return 0;
	}
}

static int push(session *x)
{
	fs_replica *r = x->r;
	unsigned int batch = x->opts->batch ? x->opts->batch : 2000;
	int64_t total = 0, unfilled = -1;
	int rc;

	if ((rc = settle(r, 0)) < 0 || (rc = fs_change_count(&total, r)) < 0)
		return rc;
	for (;;) {
		sqlite3_stmt *st = NULL;
		fs_buf entries = FS_BUF_INIT;
		int64_t first = -1, last = -1, made = -1;
		uint64_t n = 0;
		char id[128];

		if (fs_replica__prepare(&st, r,
		        "SELECT seq, tbl, rid, op, col, val, hlc, device, base "
		        "FROM fs_change ORDER BY seq LIMIT ?") < 0)
			return r->err.code;
		sqlite3_bind_int(st, 1, (int)batch);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			fs_entry en;
			int64_t seq = sqlite3_column_int64(st, 0);
			char op = ((const char *)sqlite3_column_text(st, 3))[0];

			/* A creation logged since the settle (another process
			** wrote meanwhile): the batch ends before it, and it is
			** filled in before the next.  One that cannot be (its
			** record gone without a 'D' row: not through the library)
			** goes as it is, and the server refuses it. */
			if (op == 'I' && sqlite3_column_type(st, 5) == SQLITE_NULL &&
			    seq != unfilled) {
				made = seq;
				break;
			}
			memset(&en, 0, sizeof(en));
			last = seq;
			if (first < 0)
				first = last;
			en.tbl = (const char *)sqlite3_column_text(st, 1);
			en.rid = (const char *)sqlite3_column_text(st, 2);
			en.op = op;
			en.col = (const char *)sqlite3_column_text(st, 4);
			/* A 'D' row's val keeps the deleted fields for the log's
			** own use (capture.h): a tombstone carries none. */
			en.val = en.op == 'D' ? NULL
			         : (const char *)sqlite3_column_text(st, 5);
			en.hlc = (uint64_t)sqlite3_column_int64(st, 6);
			en.device = fs_capture__device(&r->cap,
			        (const char *)sqlite3_column_text(st, 7));
			en.seq = (uint64_t)sqlite3_column_int64(st, 8);
			fs_wr__entry(&entries, &en);
			n++;
			if (entries.len > FS_FRAME_RAW_MAX / 4)
				break;   /* keep a batch well inside the frame limits */
		}
		fs_replica__finish(r, st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			fs_buf_free(&entries);
			return fs_err__sqlite(&r->err, r->db, rc, "reading changes");
		}
		if (n == 0 && made >= 0) {
			int64_t left = 0;

			fs_buf_free(&entries);
			if ((rc = settle(r, made - 1)) < 0 ||
			    (rc = fs_change_count(&left, r)) < 0)
				return rc;
			unfilled = made;
			/* The progress counts what has been written since too. */
			total = (int64_t)(x->stats->pushed + x->stats->rejected) + left;
			continue;
		}
		if (n == 0) {
			fs_buf_free(&entries);
			return 0;
		}
		/* The same changes always form the same batch id, so a batch
		** resent after a cut is recognised as a replay. */
		snprintf(id, sizeof(id), "%s-%lld-%lld", r->cap.device,
		         (long long)first, (long long)last);
		fs_buf_clear(&x->out);
		fs_wr__str(&x->out, id);
		fs_wr__uv(&x->out, n);
		fs_buf_put(&x->out, entries.ptr, entries.len);
		fs_buf_free(&entries);
		if ((rc = send_msg(x, FS_MSG_PUSH, 1)) < 0 ||
		    (rc = expect(x, FS_MSG_ACK)) < 0 ||
		    (rc = apply_ack(x, first, last, n)) < 0)
			return rc;
		if ((rc = progress(x, "push", x->stats->pushed + x->stats->rejected,
		                   (uint64_t)total)) < 0)
			return rc;
	}
}

static int parse_server(char *host, size_t hsize, char *port, size_t psize,
                        const char *server)
{
	const char *colon = strrchr(server, ':');

	if (!colon || colon == server || (size_t)(colon - server) >= hsize ||
	    strlen(colon + 1) == 0 || strlen(colon + 1) >= psize)
		return -1;
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}

int fs_replica_sync(fs_replica *r, fs_sync_stats *stats,
                    const fs_sync_options *opts)
{
	fs_sync_options defaults = FS_SYNC_OPTIONS_INIT;
	fs_sync_stats dummy;
	session x;
	fs_tls_conf *conf = NULL;
	char server[300], host[256], port[16], now[24];
	char *ca = NULL, *cert = NULL, *key = NULL;
	fs_err e;
	int rc, lock = -1;

	memset(&e, 0, sizeof(e));
	memset(&x, 0, sizeof(x));
	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	if (!opts)
		opts = &defaults;
	if (r->explicit_tx)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "cannot sync inside a transaction");
	if ((rc = meta_text(server, sizeof(server), r, "server")) < 0)
		return rc;
	if (rc == 0)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "this replica is not enrolled: fieldsync init "
		                   "--server HOST:PORT --enroll DIR");
	if (parse_server(host, sizeof(host), port, sizeof(port), server) < 0)
		return fs_err__set(&r->err, FS_EINVALID, "bad server address '%s'",
		                   server);
	if ((rc = fs_replica__sync_lock(r, &lock)) < 0)
		return rc;
	if ((rc = fs_replica_setting_get(&ca, r, "tls_ca")) < 0 ||
	    (rc = fs_replica_setting_get(&cert, r, "tls_cert")) < 0 ||
	    (rc = fs_replica_setting_get(&key, r, "tls_key")) < 0)
		goto done;
	if ((rc = fs_tls_conf__new(&conf, 0, ca, cert, key, &e)) < 0) {
		fs_err__set(&r->err, rc, "%s", e.msg);
		goto done;
	}
	if ((rc = fs_tls__connect(&x.tls, conf, host, port, opts->timeout_ms,
	                          &e)) < 0) {
		fs_err__set(&r->err, rc, "%s", e.msg);
		goto done;
	}
	/* Once connected, a reply may wait behind other devices' batches
	** (the server merges one at a time): allow it twice the connect time
	** before giving up (nothing is lost either way; a push whose ACK
	** never came is resent and recognised). */
	fs_tls__set_timeout(x.tls, opts->timeout_ms > INT_MAX / 2 ? INT_MAX
	                           : 2 * opts->timeout_ms);
	x.r = r;
	x.s.read = s_read;
	x.s.write = s_write;
	x.s.ctx = x.tls;
	x.stats = stats;
	x.opts = opts;
	fs_buf_init(&x.in, FS_FRAME_RAW_MAX + 1);
	fs_wr__uv(&x.out, FS_PROTO_VERSION);
	fs_wr__uv(&x.out, (uint64_t)r->schema.version);
	fs_wr__str(&x.out, "fieldsync/" FS_VERSION);
	fs_wr__uv(&x.out, meta_int(r, "cursor"));
	if ((rc = send_msg(&x, FS_MSG_HELLO, 0)) < 0 ||
	    (rc = expect(&x, FS_MSG_WELCOME)) < 0)
		goto done;
	{
		uint64_t proto, schema, hlc;
		const char *user, *role, *device;
		fs_rd rd;
		fs_rd__init(&rd, &x.in);
		if ((rc = fs_rd__uv(&rd, &proto, &r->err)) < 0 ||
		    (rc = fs_rd__uv(&rd, &schema, &r->err)) < 0 ||
		    (rc = fs_rd__str(&rd, &user, &r->err)) < 0 ||
		    (rc = fs_rd__str(&rd, &role, &r->err)) < 0 ||
		    (rc = fs_rd__str(&rd, &device, &r->err)) < 0 ||
		    (rc = fs_rd__uv(&rd, &hlc, &r->err)) < 0) {
			fs_err__prefix(&r->err, "server sent a bad WELCOME");
			goto done;
		}
		fs_hlc__observe(&r->cap.clock, hlc);
		if ((user && (rc = meta_put(r, "user", user)) < 0) ||
		    (device && (rc = meta_put(r, "server_device", device)) < 0) ||
		    (rc = save_clock(r)) < 0)
			goto done;
	}
	if ((rc = push(&x)) < 0 || (rc = pull(&x)) < 0)
		goto done;
	fs_buf_clear(&x.out);
	send_msg(&x, FS_MSG_BYE, 0);
	fs_replica__now(now);
	rc = meta_put(r, "last_sync", now);
	if (rc == 0 && stats->rejected)
		rc = fs_err__set(&r->err, FS_ECONFLICT,
		                 "the server refused %llu change(s); see "
		                 "`fieldsync rejections`",
		                 (unsigned long long)stats->rejected);
done:
	stats->bytes_in = x.s.bytes_in;
	stats->bytes_out = x.s.bytes_out;
	fs_tls__close(x.tls);
	fs_tls_conf__free(conf);
	fs_buf_free(&x.in);
	fs_buf_free(&x.out);
	free(ca);
	free(cert);
	free(key);
	fs_replica__sync_unlock(lock);
	return rc;
}
