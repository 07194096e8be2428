/*
** store.c -- merging pushed changes into the central database.
**
** The rules (docs/protocol.md, "Merge"):
**  - Every field holds the version (hlc, device) that wrote it; a creation
**    versions all fields at once (fs_clock col ''), a delete is a
**    tombstone (col '*').  Versions compare by hlc, then device id bytes.
**  - An update wins when its version is greater than the field's.  Equal
**    versions are the same change seen again: nothing happens, which makes
**    every batch idempotent.
**  - Concurrent or not: an entry carries the server-log position its
**    author had seen (base).  If the field's current version was logged
**    after that, by another device, the two edits were concurrent: the
**    loser (whichever version is smaller) is kept in fs_conflict, exactly
**    once (unique on field and losing version), and announced in the log.
**  - Delete wins.  An edit of a deleted record is not applied but kept as
**    a conflict ('record deleted'); deleting a record keeps the concurrent
**    edits it overrides the same way.  Nothing is silently dropped.
**  - A replay (the same change resent after its ACK was lost) is applied
**    with no effect, even when another device has written the field on
**    top of it since: entries not newer than the device's high-water mark
**    (fs_device.pushed_hlc) are looked up in the log before merging.
**  - The author of every change is the user of the device whose
**    certificate authenticated the connection; the payload's device and
**    author are ignored.
** The ACK tells the client, for every entry that did not win, the current
** winning version ("corrections"), so the client converges at once.
*/
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/replica_int.h"
#include "hlc.h"
#include "json.h"
#include "logq.h"
#include "policy.h"
#include "uuid.h"
#include "value.h"

typedef struct clockv {
	int found;
	int64_t hlc;
	char device[64];
	int64_t seq;
} clockv;

/* A change head office refused: which, why, and where it was. */
typedef struct refusal {
	fs_entry en;         /* as sent */
	char reason[480];
	char *dept;
} refusal;

typedef struct push_ctx {
	fs_replica *r;
	const fs_peer *p;
	fs_buf *corr;        /* correction entries */
	fs_buf *evict;       /* 'X' corrections, sent after the others: a
	                     ** refused relink must be undone before the
	                     ** record it pointed at is dropped */
	uint64_t ncorr;
	/* Corrections owed (correct()), written into corr at the end of the
	** merge from the state the whole batch left: read at once, a
	** correction of a field a later entry of the same batch changed again
	** would undo that entry on the replica, which is never sent its own
	** changes back. */
	struct owed {
		const fs_table *t;
		char *rid, *col;   /* col NULL: the whole record */
	} *owed;
	size_t nowed, aowed;
	fs_buf *rej;         /* (index, reason) pairs */
	uint64_t nrej;
	uint64_t applied;
	uint64_t conflicts;
	uint64_t max_hlc;
	int64_t pushed_hlc;  /* greatest hlc accepted from this device before */
	char now[24];
	fs_rules *rules;     /* ownership rules (policy.h) */
	char *dept;          /* department of the entry being merged (logged) */
	char *move_from;     /* a customer changing department: the old one */
	char origin_seen[64];  /* the last device origin_note() recorded */
	int parent_deleted;  /* a creation under a deleted record */
	/* A creation's clocks, read once by check_scope for merge_insert
	** (check_scope always runs first, and binds the record's fields). */
	clockv c_tomb, c_rec;
	/* A new record's creation clock is written first, at the log position
	** its creation will take (next_seq): the write is the check that the
	** id is new.  Undone (merge_entry) unless the creation goes through. */
	int clock_made;
	int created;
	int64_t clock_seq;   /* the log position it was written at */
	/* Whether a tombstone may stand without a creation clock (a delete of
	** an id never created here): only then does a creation look for one
	** (clock_create).  fs_meta 'lone_tombstones', read at the start of
	** every transaction that merges (lone_tombs_read). */
	int lone_tombs;
	int64_t next_seq;    /* the next fs_log seq of this transaction */
	/* Log rows not yet written (log_add): every read of fs_log in the
	** transaction flushes them first (log_flush), and every COMMIT comes
	** after deferred_write. */
	fs_logq lq;
	/* Head office's ACK of a relayed batch (fs_store__relay_acked): the
	** changes it refused.  Its value of a field replaces the version
	** refused, whatever their clocks -- but not a newer one a device
	** wrote here meanwhile (refusal_of). */
	const struct refusal *no;
	uint64_t nno;
	/* The entry's origin: the pushing device and its user, or, from a
	** regional server (relay) or from head office (upstream), the
	** device and author the entry carries. */
	const char *dev;
	const char *author;
	const char *via;     /* logged: the relay's device id, '^' upstream */
	int64_t up;          /* logged: the upstream cursor (regional), or -1 */
	int resnap;          /* a snapshot taken again is under way: each
	                     ** record it brings leaves fs_resnap */
} push_ctx;

void fs_store__process_init(void)
{
	/* Fails harmlessly (SQLITE_MISUSE) if SQLite is already initialised. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int fs_store__auth(fs_replica *r, fs_peer *out, const char *cn,
                   const char *serial)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (fs_replica__prepare(&st, r,
	        "SELECT d.user, u.role, coalesce(u.region, ''), d.serial, "
	        "d.revoked_at, d.rescope, d.relay, d.cursor FROM fs_device d "
	        "JOIN fs_user u ON u.name = d.user "
	        "WHERE d.id = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, cn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		fs_replica__finish(r, st);
		if (rc != SQLITE_DONE)
			return fs_err__sqlite(&r->err, r->db, rc, "looking up a device");
		return fs_err__set(&r->err, FS_EAUTH, "unknown device %s", cn);
	}
	if (strcmp((const char *)sqlite3_column_text(st, 3), serial)) {
		fs_replica__finish(r, st);
		return fs_err__set(&r->err, FS_EAUTH,
		                   "device %s: certificate serial %s is not the one "
		                   "issued", cn, serial);
	}
	if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
		fs_err__set(&r->err, FS_EAUTH, "device %s was revoked at %s", cn,
		            (const char *)sqlite3_column_text(st, 4));
		fs_replica__finish(r, st);
		return FS_EAUTH;
	}
	snprintf(out->device, sizeof(out->device), "%s", cn);
	snprintf(out->user, sizeof(out->user), "%s",
	         (const char *)sqlite3_column_text(st, 0));
	snprintf(out->role, sizeof(out->role), "%s",
	         (const char *)sqlite3_column_text(st, 1));
	snprintf(out->region, sizeof(out->region), "%s",
	         (const char *)sqlite3_column_text(st, 2));
	out->rescope = sqlite3_column_int(st, 5);
	out->relay = sqlite3_column_int(st, 6);
	out->pulled = sqlite3_column_int64(st, 7);
	fs_replica__finish(r, st);
	return fs_policy__load_scope(r, out->user, &out->all);
}

int fs_store__recheck(fs_replica *r, fs_peer *p)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (p->upstream)
		return 0;
	if (fs_replica__prepare(&st, r,
	        "SELECT u.role, coalesce(u.region, ''), d.revoked_at, d.rescope "
	        "FROM fs_device d JOIN fs_user u ON u.name = d.user "
	        "WHERE d.id = ? AND d.user = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		fs_replica__finish(r, st);
		if (rc != SQLITE_DONE)
			return fs_err__sqlite(&r->err, r->db, rc, "looking up a device");
		return fs_err__set(&r->err, FS_EAUTH, "device %s is no longer "
		                   "enrolled", p->device);
	}
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		fs_err__set(&r->err, FS_EAUTH, "device %s was revoked at %s",
		            p->device, (const char *)sqlite3_column_text(st, 2));
		fs_replica__finish(r, st);
		return FS_EAUTH;
	}
	snprintf(p->role, sizeof(p->role), "%s",
	         (const char *)sqlite3_column_text(st, 0));
	snprintf(p->region, sizeof(p->region), "%s",
	         (const char *)sqlite3_column_text(st, 1));
	if (sqlite3_column_int(st, 3))
		p->rescope = 1;
	fs_replica__finish(r, st);
	return fs_policy__load_scope(r, p->user, &p->all);
}

static int clock_get(clockv *out, fs_replica *r, const char *tbl,
                     const char *rid, const char *col)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (fs_replica__prepare(&st, r,
	        "SELECT hlc, device, seq FROM fs_clock "
	        "WHERE tbl = ? AND rid = ? AND col = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->found = 1;
		out->hlc = sqlite3_column_int64(st, 0);
		snprintf(out->device, sizeof(out->device), "%s",
		         (const char *)sqlite3_column_text(st, 1));
		out->seq = sqlite3_column_int64(st, 2);
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading a clock");
	return 0;
}

/* The record's tombstone, its creation version and field col's version
** in one lookup (col may be NULL). */
static int clocks_get(clockv *tomb, clockv *rec, clockv *field,
                      fs_replica *r, const char *tbl, const char *rid,
                      const char *col)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(tomb, 0, sizeof(*tomb));
	memset(rec, 0, sizeof(*rec));
	memset(field, 0, sizeof(*field));
	/* All of the record's clocks by primary-key prefix (a record has a
	** few), picked here: "col IN ('*', '', ?)" would build an ephemeral
	** index on every call. */
	if (fs_replica__prepare(&st, r,
	        "SELECT col, hlc, device, seq FROM fs_clock WHERE tbl = ?1 AND "
	        "rid = ?2") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);
		clockv *v = !strcmp(c, "*") ? tomb : !*c ? rec
		          : col && !strcmp(c, col) ? field : NULL;
		if (!v)
			continue;
		v->found = 1;
		v->hlc = sqlite3_column_int64(st, 1);
		snprintf(v->device, sizeof(v->device), "%s",
		         (const char *)sqlite3_column_text(st, 2));
		v->seq = sqlite3_column_int64(st, 3);
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading clocks");
	return 0;
}

static int clock_put(fs_replica *r, const char *tbl, const char *rid,
                     const char *col, int64_t hlc, const char *device,
                     int64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "INSERT OR REPLACE INTO fs_clock(tbl, rid, col, hlc, device, seq) "
	        "VALUES (?, ?, ?, ?, ?, ?)") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, hlc);
	sqlite3_bind_text(st, 5, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, seq);
	rc = fs_replica__step_done(r, st, "writing a clock");
	fs_replica__finish(r, st);
	return rc;
}

/* Whether creation entry en is the one this server holds already (its
** creation clock, read by check_scope, has the same version). */
static int same_creation(const push_ctx *x, const fs_entry *en)
{
	return x->c_rec.found && x->c_rec.hlc == (int64_t)en->hlc &&
	       !strcmp(x->c_rec.device, x->dev);
}

/* Reads the lone-tombstone mark into x->lone_tombs.  A database from
** before the mark has none: whether it holds a tombstone without a
** creation clock is found out once, by a scan of fs_clock, and recorded
** (in the caller's transaction). */
static int lone_tombs_read(push_ctx *x)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT v FROM fs_meta WHERE k = 'lone_tombstones'") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		x->lone_tombs = sqlite3_column_int(st, 0) != 0;
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading fs_meta");
	return fs_replica__exec(r,
	        "INSERT INTO fs_meta(k, v) SELECT 'lone_tombstones', EXISTS "
	        "(SELECT 1 FROM fs_clock t WHERE t.col = '*' AND NOT EXISTS "
	        "(SELECT 1 FROM fs_clock c WHERE c.tbl = t.tbl AND c.rid = t.rid "
	        "AND c.col = ''))", "recording lone tombstones") < 0
	       ? r->err.code : lone_tombs_read(x);
}

/* Records that a tombstone now stands without a creation clock: from
** here on, creations look for one.  (Never cleared: compaction may drop
** the last one, and a needless look-up costs only time.) */
static int lone_tombs_mark(push_ctx *x)
{
	x->lone_tombs = 1;
	return fs_replica__exec(x->r, "INSERT OR REPLACE INTO fs_meta(k, v) "
	                        "VALUES ('lone_tombstones', 1)",
	                        "recording a lone tombstone") < 0
	       ? x->r->err.code : 0;
}

/* The log position the transaction's next entry takes (x->next_seq),
** read once: the transaction holds the write lock, and every entry goes
** through log_add or conflict_announce, which keep it. */
static int next_seq_read(push_ctx *x)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	if (x->next_seq > 0)
		return 0;
	if (fs_replica__prepare(&st, r,
	        "SELECT coalesce(max(seq), 0) + 1 FROM fs_log") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	x->next_seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "reading the log");
	return 0;
}

/* Writes the log rows log_add queued: before any read of fs_log, and
** before COMMIT. */
static int log_flush(push_ctx *x)
{
	return fs_logq__flush(&x->lq, x->r);
}

/* The creation clock of a record new here, written before its creation
** is merged: 1 written (the id was never here: a record keeps its
** creation clock, deleted too, until compaction drops all its clocks),
** 0 the id has one already (nothing written), <0 on failure. */
static int clock_create(push_ctx *x, const fs_table *t, const fs_entry *en)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	memset(&x->c_tomb, 0, sizeof(x->c_tomb));
	memset(&x->c_rec, 0, sizeof(x->c_rec));
	if ((rc = next_seq_read(x)) < 0)
		return rc;
	/* Plain INSERT: a creation clock already there fails it, before any
	** write.  So does a tombstone, when the server may hold one alone (a
	** delete of an id never created here): its col is then NULL, which
	** the NOT NULL constraint refuses.  That look-up is 7% of a creation's
	** merge (callgrind), for a case most servers never see: it runs only
	** once one has been written (lone_tombs).  (INSERT ... SELECT ...
	** WHERE NOT EXISTS read the table it writes, which SQLite copies into
	** a temporary table first: five times the cost.) */
	if (fs_replica__prepare(&st, r, x->lone_tombs
	        ? "INSERT INTO fs_clock(tbl, rid, col, hlc, device, seq) VALUES "
	          "(?1, ?2, CASE WHEN EXISTS (SELECT 1 FROM fs_clock WHERE "
	          "tbl = ?1 AND rid = ?2 AND col = '*') THEN NULL ELSE '' END, "
	          "?3, ?4, ?5)"
	        : "INSERT INTO fs_clock(tbl, rid, col, hlc, device, seq) VALUES "
	          "(?1, ?2, '', ?3, ?4, ?5)") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, en->rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)en->hlc);
	sqlite3_bind_text(st, 4, x->dev, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, x->next_seq);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_DONE) {
		x->clock_made = 1;
		x->clock_seq = x->next_seq;
		return 1;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, "writing a clock");
}

/* Appends to fs_log (queued: log_flush); *seq receives the new
** position. */
static int log_add(int64_t *seq, push_ctx *x, const char *tbl,
                   const char *rid, char op, const char *col,
                   const char *val, int64_t hlc, const char *device,
                   const char *author, const char *scope)
{
	fs_logq_row row;
	int rc;

	if ((rc = next_seq_read(x)) < 0)
		return rc;
	row.seq = *seq = x->next_seq;
	row.tbl = tbl;
	row.rid = rid;
	row.op = op;
	row.col = col;
	row.val = val;
	row.hlc = hlc;
	row.device = device;
	row.author = author;
	row.scope = scope;
	row.via = x->via;
	row.up = x->up;
	if ((rc = fs_logq__add(&x->lq, x->r, &row)) < 0)
		return rc;
	x->next_seq++;
	return 0;
}

static const char *author_of(fs_replica *r, const char *device, char *buf,
                             size_t size)
{
	sqlite3_stmt *st = NULL;

	snprintf(buf, size, "%s", device);
	/* A device of this server, or one of another tier's (fs_origin). */
	if (fs_replica__prepare(&st, r,
	        "SELECT user FROM fs_device WHERE id = ?1 UNION ALL "
	        "SELECT author FROM fs_origin WHERE device = ?1 LIMIT 1") == 0) {
		sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(buf, size, "%s",
			         (const char *)sqlite3_column_text(st, 0));
	}
	fs_replica__finish(r, st);
	return buf;
}

/* A conflict as the JSON of its C entry (docs/protocol.md), the
** arguments of json_object() over a row of fs_conflict. */
#define CONFLICT_FIELDS \
	"'id', id, 'table', tbl, 'record', rid, 'field', col, " \
	"'reason', reason, 'winner_value', winner_value, " \
	"'winner_hlc', winner_hlc, 'winner_device', winner_device, " \
	"'winner_author', winner_author, 'loser_value', loser_value, " \
	"'loser_hlc', loser_hlc, 'loser_device', loser_device, " \
	"'loser_author', loser_author, 'created_at', created_at"

/* A conflict's natural key, the same on every server (its id is not):
** between servers, R entries name their conflict by it (docs/protocol.md,
** "Between servers"). */
#define CONFLICT_KEY "json_array(tbl, rid, col, loser_hlc, loser_device)"

/* The same with the resolution: a conflict as snapshots carry it. */
#define CONFLICT_FIELDS_RESOLVED CONFLICT_FIELDS ", " \
	"'resolved_at', resolved_at, 'resolved_by', resolved_by, " \
	"'resolution', resolution"

static const char *or_empty_object(const char *s)
{
	return s ? s : "{}";
}

/* Version order: hlc, then device id bytes.  Returns <0, 0, >0. */
static int vcmp(int64_t h1, const char *d1, int64_t h2, const char *d2)
{
	if (h1 != h2)
		return h1 < h2 ? -1 : 1;
	return strcmp(d1, d2);
}

/* Announces conflict id in the log: the entry carries the whole conflict
** as JSON.  via: as log_add's (NULL: every replica and tier hears of it). */
static int conflict_announce(push_ctx *x, int64_t id, const char *via)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = log_flush(x)) < 0)
		return rc;
	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_log(tbl, rid, op, col, val, hlc, device, author, "
	        "scope, via, up) SELECT tbl, CAST(id AS TEXT), 'C', col, "
	        "json_object(" CONFLICT_FIELDS "), max(winner_hlc, loser_hlc), "
	        "'', '', scope, ?2, ?3 FROM fs_conflict WHERE id = ?1") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, id);
	if (via)
		sqlite3_bind_text(st, 2, via, -1, SQLITE_STATIC);
	if (x->up >= 0)
		sqlite3_bind_int64(st, 3, x->up);
	rc = fs_replica__step_done(r, st, "announcing a conflict");
	fs_replica__finish(r, st);
	if (rc == 0 && sqlite3_changes(r->db) > 0)
		x->next_seq = sqlite3_last_insert_rowid(r->db) + 1;
	return rc;
}

/* Records a conflict once and announces it in the log. */
static int conflict_add(push_ctx *x, const char *tbl, const char *rid,
                        const char *col, const char *reason,
                        const char *wval, int64_t whlc, const char *wdev,
                        const char *lval, int64_t lhlc, const char *ldev)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	char wauth[128], lauth[128];
	int64_t id;
	int rc;

	author_of(r, wdev, wauth, sizeof(wauth));
	author_of(r, ldev, lauth, sizeof(lauth));
	if (fs_replica__prepare(&st, r,
	        "INSERT OR IGNORE INTO fs_conflict(tbl, rid, col, reason, "
	        "winner_value, winner_hlc, winner_device, winner_author, "
	        "loser_value, loser_hlc, loser_device, loser_author, created_at, "
	        "scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	if (wval)
		sqlite3_bind_text(st, 5, wval, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, whlc);
	sqlite3_bind_text(st, 7, wdev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, wauth, -1, SQLITE_STATIC);
	if (lval)
		sqlite3_bind_text(st, 9, lval, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, lhlc);
	sqlite3_bind_text(st, 11, ldev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, lauth, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, x->now, -1, SQLITE_STATIC);
	if (x->dept)
		sqlite3_bind_text(st, 14, x->dept, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a conflict");
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(r->db) == 0)
		return 0;   /* already recorded: a replayed batch */
	id = sqlite3_last_insert_rowid(r->db);
	x->conflicts++;
	/* Announce it.  A conflict found here is news to the relay whose
	** entry met it; one found merging head office's changes, head office
	** finds too (or it refused our change): it is not sent up. */
	return conflict_announce(x, id, x->p->upstream ? "^" : NULL);
}

static int reject(push_ctx *x, uint64_t index, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int reject(push_ctx *x, uint64_t index, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fs_wr__uv(x->rej, index);
	fs_wr__str(x->rej, msg);
	x->nrej++;
	return 0;
}

/* Removes the creation clock of record (tbl, rid) that clock_create
** wrote for a creation that did not go through. */
static int clock_take_back(fs_replica *r, const char *tbl, const char *rid)
{
	return fs_replica__exec2(r, "DELETE FROM fs_clock WHERE tbl = ? AND "
	                         "rid = ? AND col = ''", tbl, rid,
	                         "taking a clock back");
}

/* A creation that waited in a group insert and that the database
** refused (a constraint: r->err says which): refused as it would have
** been at once, and undone -- its log entry and creation clock. */
static int creation_refused(void *ctx, const fs_table *t, const char *rid,
                            uint64_t idx, int64_t seq)
{
	push_ctx *x = ctx;
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	reject(x, idx, "%s", r->err.msg);
	fs_err__clear(&r->err);
	x->applied--;
	if ((rc = log_flush(x)) < 0)
		return rc;
	if (fs_replica__prepare(&st, r, "DELETE FROM fs_log WHERE seq = ?") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, seq);
	rc = fs_replica__step_done(r, st, "taking a log entry back");
	fs_replica__finish(r, st);
	return rc < 0 ? rc : clock_take_back(r, t->name, rid);
}

/* Inserts the new records waiting in group inserts: before anything
** reads a record table, and before COMMIT. */
static int records_flush(push_ctx *x)
{
	return fs_replica__group_run(x->r, creation_refused, x);
}

/* Writes all the merge deferred -- new records waiting in group inserts,
** then queued log rows: before every COMMIT. */
static int deferred_write(push_ctx *x)
{
	int rc = records_flush(x);

	return rc < 0 ? rc : log_flush(x);
}

/* A creation bound into a group insert links to records that may be
** waiting there too (its parent, say): they go in first, since the scope
** check, the rules and the link check read them. */
static int links_flush(push_ctx *x, const fs_table *t, const char *link)
{
	fs_replica *r = x->r;
	int i;

	for (i = 0; i < r->ins_nlinks; i++)
		if (fs_replica__group_holds(r, r->ins_link_id[i]))
			return records_flush(x);
	if (t->scope_parent && link && fs_replica__group_holds(r, link))
		return records_flush(x);
	return 0;
}

static int evict(push_ctx *x, const fs_table *t, const char *rid);
static int tomb_dept(char **dept, push_ctx *x, const char *tbl,
                     const char *rid);

/* Whether stored record (t, rid) lies outside the scope loaded (0/1, <0
** on failure; missing for no such record). */
static int out_of_scope(fs_replica *r, int all, const fs_table *t,
                        const char *rid, int missing)
{
	char *dept = NULL;
	int rc;

	if (all)
		return 0;
	if ((rc = fs_policy__record_dept(r, t, rid, &dept, NULL)) <= 0)
		return rc < 0 ? rc : missing;
	rc = fs_policy__in_scope(r, all, dept);
	free(dept);
	return rc < 0 ? rc : !rc;
}

/* Whether deleted record (t, rid) was outside the pushing peer's scope,
** as its tombstone places it (0/1, <0; 0 when it names no department). */
static int tomb_out_of_scope(push_ctx *x, const fs_table *t,
                             const char *rid)
{
	char *dept = NULL;
	int rc;

	if (x->p->all)
		return 0;
	if ((rc = tomb_dept(&dept, x, t->name, rid)) <= 0 || !dept)
		return rc < 0 ? rc : 0;
	rc = fs_policy__in_scope(x->r, x->p->all, dept);
	free(dept);
	return rc < 0 ? rc : !rc;
}

/* Writes the correction of a field (or of the whole record, col NULL):
** its current winner (0), or the record's tombstone or eviction (1:
** nothing more to say of the record). */
static int correction_write(push_ctx *x, const fs_table *t, const char *rid,
                            const char *col)
{
	fs_replica *r = x->r;
	clockv tomb, c;
	fs_entry en;
	char *val = NULL;
	int rc;

	memset(&en, 0, sizeof(en));
	en.tbl = t->name;
	en.rid = rid;
	if ((rc = clock_get(&tomb, r, t->name, rid, "*")) < 0)
		return rc;
	/* Nothing of a record outside the writer's scope: not a value (an
	** edit taken because it was made before its customer moved away),
	** nor who deleted it, and when (a creation of a deleted id elsewhere
	** is refused as outside the scope: check_scope).  The writer drops
	** the record instead, as its pull would. */
	if ((rc = tomb.found ? tomb_out_of_scope(x, t, rid)
	                     : out_of_scope(r, x->p->all, t, rid, 0)) != 0) {
		if (rc > 0 && (rc = evict(x, t, rid)) == 0)
			rc = 1;
		return rc;
	}
	if (tomb.found) {
		en.op = 'D';
		en.hlc = (uint64_t)tomb.hlc;
		en.device = tomb.device;
		en.seq = (uint64_t)tomb.seq;
	} else {
		if ((rc = clock_get(&c, r, t->name, rid, col ? col : "")) < 0)
			return rc;
		if (!c.found && col &&
		    (rc = clock_get(&c, r, t->name, rid, "")) < 0)
			return rc;
		if ((rc = fs_replica__field_json(&val, r, t, rid, col)) < 0)
			return rc;
		if (rc == 0)
			return 0;   /* nothing to correct with */
		en.op = col ? 'U' : 'I';
		en.col = col;
		en.val = val;
		en.hlc = (uint64_t)c.hlc;
		en.device = c.device;
		en.seq = (uint64_t)c.seq;
	}
	fs_wr__entry(x->corr, &en);
	x->ncorr++;
	free(val);
	return tomb.found;
}

/* Tells the client the winner of a field (or the tombstone) as the batch
** leaves it (corrections_write). */
static int correct(push_ctx *x, const fs_table *t, const char *rid,
                   const char *col)
{
	struct owed *o;

	if (x->nowed == x->aowed) {
		size_t want = x->aowed ? x->aowed * 2 : 16;
		if (!(o = realloc(x->owed, want * sizeof(*o))))
			return fs_err__set(&x->r->err, FS_ERROR, "out of memory");
		x->owed = o;
		x->aowed = want;
	}
	o = &x->owed[x->nowed];
	o->t = t;
	o->rid = strdup(rid);
	o->col = col ? strdup(col) : NULL;
	if (!o->rid || (col && !o->col)) {
		free(o->rid);
		free(o->col);
		return fs_err__set(&x->r->err, FS_ERROR, "out of memory");
	}
	x->nowed++;
	return 0;
}

/* Order of corrections owed: by table, in schema order (the tables array
** follows fs_entity.ord: parents first, which a regional server undoing
** refused deletes relies on, see undelete), then by record, the whole
** record's first. */
static int owed_cmp(const void *a, const void *b)
{
	const struct owed *p = a, *q = b;
	int c;

	if (p->t != q->t)
		return p->t < q->t ? -1 : 1;
	if ((c = strcmp(p->rid, q->rid)) != 0)
		return c;
	if (!p->col || !q->col)
		return !q->col - !p->col;
	return strcmp(p->col, q->col);
}

/* Writes the corrections owed, each once (sorted: a batch may owe one per
** entry, and comparing each with all the others grew with the square of
** the batch); a record found deleted gets one tombstone for all. */
static int corrections_write(push_ctx *x)
{
	size_t i;
	int rc;

	if (x->nowed > 1)
		qsort(x->owed, x->nowed, sizeof(*x->owed), owed_cmp);
	for (i = 0; i < x->nowed; i++) {
		const struct owed *o = &x->owed[i];
		if (i > 0 && !owed_cmp(o, o - 1))
			continue;
		if ((rc = correction_write(x, o->t, o->rid, o->col)) < 0)
			return rc;
		while (rc == 1 && i + 1 < x->nowed && x->owed[i + 1].t == o->t &&
		       !strcmp(x->owed[i + 1].rid, o->rid))
			i++;   /* (its tombstone said it all) */
	}
	return 0;
}

/* Tells the client to drop a record (and what hangs off it) it may not
** hold: a creation refused, or a record outside its scope.  Clients of
** schema 3 do not know the 'X' entry; they keep the record (and, for a
** losing edit of one outside their scope, their own value: see
** correction_write). */
static int evict(push_ctx *x, const fs_table *t, const char *rid)
{
	fs_entry en;

	if (x->p->schema < 4)
		return 0;
	memset(&en, 0, sizeof(en));
	en.op = 'X';
	en.tbl = t->name;
	en.rid = rid;
	en.device = "";
	fs_wr__entry(x->evict, &en);
	x->ncorr++;
	return 0;
}

/* The conflicts of a moved customer's records go with them: the new
** department's replicas receive them (expand_move), the old one's drop
** them with the records. */
static int conflicts_move(fs_replica *r, const char *customer,
                          const char *dept)
{
	const fs_table *root = fs_schema__scope_root(&r->schema);
	size_t ti;
	int rc = 0;

	for (ti = 0; root && ti < r->schema.ntables && rc == 0; ti++) {
		const fs_table *t = &r->schema.tables[ti];
		char fmt[300];

		snprintf(fmt, sizeof(fmt), "UPDATE fs_conflict SET scope = ?2 WHERE "
		         "tbl = '%s' AND rid IN (SELECT id FROM \"%s\" WHERE %%s)",
		         t->name, t->name);
		rc = fs_replica__exec_hanging(r, t, root, fmt, customer, dept,
		                              "moving conflicts");
	}
	return rc;
}

/* A customer changed department (its update logged at seq): replicas of
** the old department drop it ('X', col = the new department), replicas of
** the new one receive it whole ('M', col = the old one; the pull expands
** it), and fs_move remembers it for writes made before the move. */
static int log_move(push_ctx *x, const char *rid, int64_t seq, int64_t hlc)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int64_t mseq;
	int rc;

	(void)seq;
	if ((rc = log_add(&mseq, x, "customer", rid, 'X', x->dept, NULL, hlc,
	                  "", x->author, x->move_from)) < 0 ||
	    (rc = log_add(&mseq, x, "customer", rid, 'M', x->move_from, NULL, hlc,
	                  "", x->author, x->dept)) < 0)
		return rc;
	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_move(seq, customer, from_scope, to_scope) "
	        "VALUES (?, ?, ?, ?)") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, mseq);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	if (x->move_from)
		sqlite3_bind_text(st, 3, x->move_from, -1, SQLITE_STATIC);
	if (x->dept)
		sqlite3_bind_text(st, 4, x->dept, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a move");
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	return conflicts_move(r, rid, x->dept);
}

static int same_dept(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Whether customer root left a department of this scope after log
** position base: a write the device made before the move is accepted.
** The base is the client's word: a device's own is raised to what it is
** known to have pulled (it cannot have made a write before a move it had
** pulled).  A regional server's is taken as it is: it passes up its reps'
** writes with the position each rep had seen. */
static int moved_away(push_ctx *x, const char *root, int64_t base)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc;

	/* (a move's 'X', which tells the old department, is logged just
	** before the move's own position, fs_move.seq: log_move) */
	if (!x->p->relay && x->p->pulled + 1 > base)
		base = x->p->pulled + 1;
	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_move WHERE customer = ? AND seq > ? AND "
	        "from_scope IN (SELECT code FROM temp.fs_scope) LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, base);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "looking up a move");
	return 0;
}

/* The text of the one row sql selects for parameters a and b (b may be
** NULL: unbound): 0 no row, 1 a row (*out malloc'd, NULL for NULL). */
static int text_row(char **out, fs_replica *r, const char *sql,
                    const char *a, const char *b, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
	    !(*out = strdup((const char *)sqlite3_column_text(st, 0))))
		rc = SQLITE_NOMEM;
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, what);
}

/* The department of a deleted record: its tombstone's log entry's. */
static int tomb_dept(char **dept, push_ctx *x, const char *tbl,
                     const char *rid)
{
	int rc;

	if ((rc = log_flush(x)) < 0)
		return rc;
	return text_row(dept, x->r,
	        "SELECT l.scope FROM fs_clock c JOIN fs_log l ON l.seq = c.seq "
	        "WHERE c.tbl = ?1 AND c.rid = ?2 AND c.col = '*'", tbl, rid,
	        "placing a deleted record");
}

/* Whether the creation of record (tbl, rid) was kept as a 'record
** deleted' conflict (made under a record deleted meanwhile): 1 with the
** delete's version in *winner and the conflict's department in *dept
** (either may be NULL; *dept malloc'd, NULL for none), 0 if not. */
static int kept_creation(fs_replica *r, const char *tbl, const char *rid,
                         clockv *winner, char **dept)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (dept)
		*dept = NULL;
	if (fs_replica__prepare(&st, r,
	        "SELECT winner_hlc, winner_device, scope FROM fs_conflict WHERE "
	        "tbl = ? AND rid = ? AND col = '' AND reason = 'record deleted' "
	        "LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && winner) {
		winner->found = 1;
		winner->hlc = sqlite3_column_int64(st, 0);
		snprintf(winner->device, sizeof(winner->device), "%s",
		         (const char *)sqlite3_column_text(st, 1));
	}
	if (rc == SQLITE_ROW && dept && sqlite3_column_type(st, 2) != SQLITE_NULL &&
	    !(*dept = strdup((const char *)sqlite3_column_text(st, 2))))
		rc = SQLITE_NOMEM;
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading a conflict");
	return 0;
}

/* The department of the conflict a resolution resolves. */
static int conflict_dept(char **dept, fs_replica *r, const char *id)
{
	return text_row(dept, r, "SELECT scope FROM fs_conflict WHERE id = ?1",
	                id, NULL, "placing a conflict");
}

/* At a regional server: a rep's write to a record that left this
** server's holdings (fs_gone: its customer moved to another region at
** head office) after the rep's base, or a creation under one, is passed
** on to head office unmerged (logged with via '>', which this server's
** devices are not sent), with the head-office position of the rep's
** base: head office takes writes made before a move.  (t, rid): the
** record looked up (for a creation, its parent).  1 passed on, 0 not
** such a write, <0 failure. */
static int pass_up(push_ctx *x, const fs_table *t, const char *rid,
                   const fs_entry *en)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	const char *keep_via = x->via;
	int64_t keep_up = x->up, seq, up = 0;
	char *scope = NULL;
	int rc, found = 0;

	if (x->up < 0 || x->p->relay || x->p->upstream)
		return 0;
	if ((rc = log_flush(x)) < 0)
		return rc;
	if (fs_replica__prepare(&st, r,
	        "SELECT scope, (SELECT coalesce((SELECT up FROM fs_log WHERE "
	        "seq <= ?3 AND up IS NOT NULL ORDER BY seq DESC LIMIT 1), 0)) "
	        "FROM fs_gone WHERE tbl = ?1 AND rid = ?2 AND seq > ?3") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)en->seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		found = 1;
		up = sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
		    !(scope = strdup((const char *)sqlite3_column_text(st, 0))))
			rc = SQLITE_NOMEM;
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "looking up a moved record");
	if (!found)
		return 0;
	x->via = ">";
	x->up = up;
	rc = log_add(&seq, x, en->tbl, en->rid, en->op, en->col, en->val,
	             (int64_t)en->hlc, x->dev, x->author, scope);
	x->via = keep_via;
	x->up = keep_up;
	free(scope);
	if (rc < 0)
		return rc;
	x->applied++;
	return 1;
}

/* A check's verdict on entry idx: FS_EINVALID (a value or link refused,
** the reason in r->err) is recorded as a rejection: 1; 0 passed; <0 a
** failure. */
static int rejected(push_ctx *x, uint64_t idx, int rc)
{
	if (rc != FS_EINVALID)
		return rc;
	reject(x, idx, "%s", x->r->err.msg);
	fs_err__clear(&x->r->err);
	return 1;
}

/* A pushed value not of its field's kind, or (head office: it holds every
** record, no upstream above it) a link to a record it never held
** (apply.c): 1 refused (rejection recorded), 0 fits, <0 failure. */
static int value_refused(push_ctx *x, uint64_t idx, const fs_table *t,
                         const char *rid, const fs_column *c, const char *val)
{
	return rejected(x, idx, fs_replica__value_check(x->r, t, rid, c, val,
	                                                x->up < 0));
}

/* Places the entry (x->dept: its department, logged with it) and keeps
** it inside the writer's scope: 0 go on, 1 refused (rejected, with an
** 'X' correction for a record the writer may not hold), <0 failure. */
static int check_scope(push_ctx *x, uint64_t idx, const fs_table *t,
                       const fs_entry *en)
{
	fs_replica *r = x->r;
	char *dept = NULL, *root = NULL, *link = NULL, *to = NULL;
	char bad[sizeof(((fs_err *)0)->msg)] = "";
	const char *why = NULL;
	const fs_column *c;
	int rc, found, in, has_link = 0;

	free(x->dept);
	free(x->move_from);
	x->dept = x->move_from = NULL;
	x->parent_deleted = 0;
	if (en->op == 'R') {
		if ((rc = conflict_dept(&dept, r, en->rid)) < 0)
			return rc;
		found = rc;
		if (!found) {
			free(dept);
			return 0;   /* no such conflict: nothing will happen */
		}
		if ((in = fs_policy__in_scope(r, x->p->all, dept)) < 0) {
			free(dept);
			return in;
		}
		x->dept = dept;
		if (in)
			return 0;
		reject(x, idx, "conflict %s is outside your scope", en->rid);
		return 1;
	}
	if (en->op == 'I') {
		/* A creation: its clocks say whether the record was ever here
		** (a record row always has its creation clock, and keeps its
		** tombstone until compaction has dropped both).  A new id, the
		** common case, then needs no lookup of the record itself. */
		clockv none;
		int fresh;
		if ((rc = fresh = clock_create(x, t, en)) < 0)
			return rc;
		/* (the record may be waiting in a group insert) */
		if (!fresh && ((rc = records_flush(x)) < 0 ||
		               (rc = clocks_get(&x->c_tomb, &x->c_rec, &none, r,
		                                t->name, en->rid, NULL)) < 0))
			return rc;
		/* Read whole, once, and bound for merge_insert's INSERT: a field
		** given twice (refused) would let the scope check and the rules
		** read one value and the INSERT another.  A new record's INSERT
		** waits in a group insert (apply.c), for a device or a relay;
		** head office's changes at a regional server take the one-by-one
		** path.  Every entry that may read a record table runs the
		** groups first (records_flush). */
		if (fresh && !x->p->upstream) {
			if (!fs_replica__group_room(r, t) &&
			    (rc = records_flush(x)) < 0)
				return rc;
			has_link = fs_replica__group_bind(r, t, en->rid, en->val,
			                                  FS_BIND_KINDS, t->scope_col,
			                                  &link);
		} else {
			has_link = fs_replica__insert_bind(r, t, en->rid, en->val,
			                                   x->p->upstream
			                                   ? FS_BIND_STRICT
			                                   : FS_BIND_KINDS,
			                                   t->scope_col, &link);
		}
		if (has_link == FS_EINVALID || has_link == FS_ECORRUPT) {
			/* Refused here, before anything reads it otherwise. */
			snprintf(bad, sizeof(bad), "%s", r->err.msg);
			fs_err__clear(&r->err);
		} else if (has_link < 0) {
			return has_link;
		} else if (fresh && !x->p->upstream &&
		           (rc = links_flush(x, t, link)) < 0) {
			free(link);
			return rc;
		}
	}
	if (en->op == 'I' && !x->c_tomb.found && !x->c_rec.found)
		found = 0;
	else if ((rc = found = fs_policy__record_dept(r, t, en->rid, &dept,
	                                              &root)) < 0)
		goto done;
	if (*bad) {
		/* The replica is corrected only to a record it may see: out of
		** its scope, or unknown here, the record is dropped from it. */
		reject(x, idx, "%s %s: %s", t->noun, en->rid, bad);
		in = found ? fs_policy__in_scope(r, x->p->all, dept) : 0;
		rc = in < 0 ? in : in ? correct(x, t, en->rid, NULL)
		                      : evict(x, t, en->rid);
		rc = rc < 0 ? rc : 1;
		goto done;
	}
	/* A creation of an id deleted here is placed where the record was
	** (when its tombstone says), not where its new link says, so that a
	** device learns nothing of another department's delete: a creation
	** outside the scope is refused, and only that is said. */
	if (!found && en->op == 'I' && x->c_tomb.found &&
	    (rc = tomb_dept(&dept, x, t->name, en->rid)) < 0)
		goto done;
	if (!found && en->op == 'I' && dept) {
		free(link);
		link = NULL;
		rc = 0;
	} else if (!found && en->op == 'I') {
		/* A creation: where its link puts it. */
		rc = fs_policy__link_dept(r, t, link, &dept, &root);
		if (rc == 0 && !dept && link && t->scope_parent &&
		    (rc = tomb_dept(&dept, x, t->scope_parent->name, link)) == 1) {
			/* Its parent was deleted (its tombstone says where it
			** was): the merge keeps the creation as a conflict. */
			x->parent_deleted = 1;
			rc = 0;
		} else if (rc == 0 && !dept && link && t->scope_parent &&
		           (rc = pass_up(x, t->scope_parent, link, en)) == 1) {
			free(link);
			link = NULL;
			goto done;
		}
		free(link);
		link = NULL;
		if (rc < 0)
			goto done;
	} else if (!found && (rc = tomb_dept(&dept, x, t->name, en->rid)) < 0) {
		goto done;
	} else if (!found && rc == 0 && en->op == 'U' &&
	           (rc = kept_creation(r, t->name, en->rid, NULL, &dept)) != 0) {
		/* Its creation was kept as a conflict (made under a record
		** deleted meanwhile): so is this edit of it (merge_field). */
		if (rc < 0)
			goto done;
		x->parent_deleted = 1;
		x->dept = dept;
		dept = NULL;
		rc = 0;
		goto done;
	} else if (!found && rc == 0 && en->op == 'U' && !x->p->upstream &&
	           (c = fs_schema__column(t, en->col)) != NULL &&
	           (rc = value_refused(x, idx, t, en->rid, c, en->val)) != 0) {
		goto done;   /* not passed on: refused here (or a failure) */
	} else if (!found && rc == 0 &&
	           (rc = pass_up(x, t, en->rid, en)) != 0) {
		goto done;   /* passed on to head office, or a failure */
	} else if (!found && rc == 0) {
		/* Never seen here: the merge says it does not exist. */
		rc = 0;
		if (!x->p->all)
			why = "does not exist on the server or is outside your scope";
		goto refuse;
	}
	if ((rc = in = fs_policy__in_scope(r, x->p->all, dept)) < 0)
		goto done;
	/* A customer that left the scope after the device's base: what the
	** device wrote to it (or under it) before it knew is still taken. */
	if (!in && root && (rc = in = moved_away(x, root, (int64_t)en->seq)) < 0)
		goto done;
	if (!in) {
		why = "is outside your scope";
		goto refuse;
	}
	if (found && en->op == 'I' && t->scope_col && has_link &&
	    !x->p->upstream && !same_creation(x, en)) {
		/* A creation of a record held here already (not the same
		** creation again; in the writer's scope, checked above) is
		** merged field by field: it must not move the record.  A move
		** is an edit of the link, checked as such. */
		if ((rc = fs_policy__link_dept(r, t, link, &to, NULL)) < 0)
			goto done;
		if (!same_dept(dept, to)) {
			reject(x, idx, "%s %s exists already, in department '%s': a "
			       "creation cannot move it (edit its %s instead)",
			       t->noun, en->rid, dept ? dept : "",
			       t->scope_col->name);
			rc = correct(x, t, en->rid, NULL);
			rc = rc < 0 ? rc : 1;
			goto done;
		}
	}
	if (en->op == 'U' && found && t->scope_col && en->col &&
	    !strcmp(en->col, t->scope_col->name)) {
		/* The link itself changes: the record changes department. */
		if ((rc = fs_policy__json_text(&link, en->val, &r->err)) < 0) {
			fs_err__clear(&r->err);
			rc = 0;
			goto done;
		}
		if ((rc = fs_policy__link_dept(r, t, link, &to, NULL)) < 0)
			goto done;
		if (!same_dept(dept, to)) {
			if (t->scope_parent) {
				reject(x, idx, "%s %s: linking it to a record of another "
				       "department is not supported (move the customer "
				       "instead)", t->noun, en->rid);
				rc = correct(x, t, en->rid, en->col);
				rc = rc < 0 ? rc : 1;
				goto done;
			}
			if ((rc = in = fs_policy__in_scope(r, x->p->all, to)) < 0)
				goto done;
			if (!in) {
				reject(x, idx, "%s %s: department '%s' is outside your "
				       "scope", t->noun, en->rid, to ? to : "");
				rc = correct(x, t, en->rid, en->col);
				rc = rc < 0 ? rc : 1;
				goto done;
			}
			x->move_from = dept;
			dept = to;
			to = NULL;
		}
	}
	x->dept = dept;
	dept = NULL;
	rc = 0;
	goto done;
refuse:
	if (why) {
		reject(x, idx, "%s %s %s%s%s%s", t->noun, en->rid, why,
		       dept ? " (department '" : "", dept ? dept : "",
		       dept ? "')" : "");
		rc = evict(x, t, en->rid);
		rc = rc < 0 ? rc : 1;
	}
done:
	free(dept);
	free(root);
	free(link);
	free(to);
	return rc;
}

/* Applies the ownership rules of fs_rule: 0 go on, 1 refused. */
static int check_rules(push_ctx *x, uint64_t idx, const fs_table *t,
                       const fs_entry *en)
{
	const char *why;
	int rc;

	if ((rc = fs_policy__rules_check(x->rules, x->r, x->p->role, t, en,
	                                 &why)) <= 0)
		return rc;
	reject(x, idx, "%s %s: %s (you are %s)", t->noun, en->rid, why,
	       x->p->role);
	if (en->op == 'I') {
		clockv rec;
		if ((rc = clock_get(&rec, x->r, t->name, en->rid, "")) < 0)
			return rc;
		/* (a clock this entry wrote itself says nothing) */
		rc = rec.found && !x->clock_made ? correct(x, t, en->rid, NULL)
		                                 : evict(x, t, en->rid);
	} else {
		rc = correct(x, t, en->rid, en->op == 'U' ? en->col : NULL);
	}
	return rc < 0 ? rc : 1;
}

/* Whether the entry (hlc, this device) on field col was merged before:
** applied between the author's base and position upto, or kept as a
** conflict loser.  Only entries at or below the device's high-water mark
** can be; for them the log range is scanned, which only a resent batch
** pays for. */
static int is_replay(push_ctx *x, const char *tbl, const char *rid,
                     const char *col, int64_t hlc, int64_t base, int64_t upto)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	int rc, found = 0;

	if (hlc > x->pushed_hlc)
		return 0;
	if ((found = log_flush(x)) < 0)
		return found;
	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_log WHERE seq > ?1 AND seq < ?2 AND hlc = ?3 "
	        "AND device = ?4 AND tbl = ?5 AND rid = ?6 "
	        "AND (col = ?7 OR op = 'I') "
	        "UNION ALL SELECT 1 FROM fs_conflict WHERE tbl = ?5 AND rid = ?6 "
	        "AND col = ?7 AND loser_hlc = ?3 AND loser_device = ?4 "
	        "LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, upto);
	sqlite3_bind_int64(st, 3, hlc);
	sqlite3_bind_text(st, 4, x->dev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, col, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = 1;
	else if (rc != SQLITE_DONE)
		found = fs_err__sqlite(&r->err, r->db, rc, "looking up a replay");
	fs_replica__finish(r, st);
	return found;
}

/* Whether the version logged at seq came through the pushing relay
** (a regional server): it judged that version against the entry it is
** pushing now, which it logged later (0/1, <0 on failure). */
static int via_self(push_ctx *x, int64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!x->p->relay)
		return 0;
	if ((rc = log_flush(x)) < 0)
		return rc;
	if (fs_replica__prepare(&st, x->r,
	        "SELECT 1 FROM fs_log WHERE seq = ? AND via = ?") < 0)
		return x->r->err.code;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, x->p->device, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(x->r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&x->r->err, x->r->db, rc, "reading the log");
	return 0;
}

/* Whether version (hlc of device dev, logged at seq) was written without
** the author of an entry with this base having seen it (0/1, <0). */
static int unseen(push_ctx *x, int64_t seq, const char *dev, int64_t base)
{
	int rc;

	if (seq <= base || !strcmp(dev, x->dev))
		return 0;
	rc = via_self(x, seq);
	return rc < 0 ? rc : !rc;
}

/* Whether head office refused a version of field col of record (tbl,
** rid) -- an edit of it, or the record's creation: 0 no (its correction
** merges by version), 1 yes and cur, the version here, is one it refused
** (its value replaces it, whatever the clocks), 2 yes but cur is newer:
** a device wrote the field since the batch went up (the wait is outside
** the write lock).  That version stays: head office, which never sends a
** relay its own changes back, takes it from the next batch and judges
** it. */
/* Whether refused entry en is version v. */
static int refused_version(const fs_entry *en, const clockv *v)
{
	return (int64_t)en->hlc == v->hlc &&
	       !strcmp(en->device ? en->device : "", v->device);
}

static int refusal_of(const push_ctx *x, const char *tbl, const char *rid,
                      const char *col, const clockv *cur)
{
	uint64_t k;
	int found = 0;

	for (k = 0; k < x->nno; k++) {
		const fs_entry *en = &x->no[k].en;

		if ((en->op != 'U' && en->op != 'I') || strcmp(en->tbl, tbl) ||
		    strcmp(en->rid, rid) ||
		    (en->op == 'U' && (!en->col || strcmp(en->col, col))))
			continue;
		if (refused_version(en, cur))
			return 1;
		found = 2;
	}
	return found;
}

/* One field version arriving: the heart of the merge. */
static int merge_field(push_ctx *x, uint64_t idx, const fs_table *t,
                       const char *rid, const fs_column *c, const char *val,
                       int64_t hlc, int64_t base)
{
	fs_replica *r = x->r;
	const char *dev = x->dev;
	clockv cur, tomb, rec;
	char *old = NULL;
	int64_t seq;
	int rc, cmp, concurrent;

	if ((rc = clocks_get(&tomb, &rec, &cur, r, t->name, rid, c->name)) < 0)
		return rc;
	/* A value not of the field's kind, or a link to a record the server
	** never held (see merge_insert), is refused, winning or losing (a
	** loser is kept as a conflict, and may be chosen by its resolution),
	** and the replica is told the value the server holds.  Not the same
	** version again (a batch resent, perhaps from before this check), nor
	** head office's changes at a regional server (head office judged
	** them). */
	if (!x->p->upstream &&
	    !(cur.found && vcmp(hlc, dev, cur.hlc, cur.device) == 0) &&
	    (rc = value_refused(x, idx, t, rid, c, val)) != 0)
		return rc < 0 ? rc : correct(x, t, rid, c->name);
	if (tomb.found) {
		if ((rc = is_replay(x, t->name, rid, c->name, hlc, base,
		                    tomb.seq)) != 0)
			return rc < 0 ? rc : correct(x, t, rid, c->name);
		/* Delete wins; the edit is kept as a conflict. */
		rc = conflict_add(x, t->name, rid, c->name, "record deleted", NULL,
		                  tomb.hlc, tomb.device, val, hlc, dev);
		return rc < 0 ? rc : correct(x, t, rid, c->name);
	}
	if (!cur.found)
		cur = rec;   /* not updated since its creation */
	if (!cur.found && x->parent_deleted) {
		/* Made under a deleted record, its creation kept as a conflict:
		** the edit is kept the same way, against the same delete. */
		if ((rc = kept_creation(r, t->name, rid, &tomb, NULL)) <= 0)
			return rc < 0 ? rc : fs_err__set(&r->err, FS_ECORRUPT,
			                                 "%s %s: its conflict is gone",
			                                 t->noun, rid);
		rc = conflict_add(x, t->name, rid, c->name, "record deleted", NULL,
		                  tomb.hlc, tomb.device, val, hlc, dev);
		return rc < 0 ? rc : evict(x, t, rid);
	}
	if (!cur.found)
		return reject(x, idx, "%s %s does not exist on the server", t->noun,
		              rid);
	cmp = vcmp(hlc, dev, cur.hlc, cur.device);
	if (cmp == 0)
		return 0;   /* the same change again */
	if ((concurrent = unseen(x, cur.seq, cur.device, base)) < 0)
		return concurrent;
	if (x->nno && cmp < 0 &&
	    (rc = refusal_of(x, t->name, rid, c->name, &cur)) != 0) {
		/* Head office's value, in its ACK of our refused change. */
		if (rc == 2)
			return 0;   /* newer here: it goes up next, and is judged */
		cmp = 1;
		concurrent = 0;
	}
	if (cmp < 0 && concurrent &&
	    (rc = is_replay(x, t->name, rid, c->name, hlc, base, cur.seq)) != 0)
		return rc < 0 ? rc : correct(x, t, rid, c->name);
	if (concurrent &&
	    (rc = fs_replica__field_json(&old, r, t, rid, c->name)) < 0)
		return rc;
	if (cmp > 0) {
		if ((rc = fs_replica__apply_update(r, t, rid, c, val)) < 0) {
			free(old);
			if (rc == FS_EINVALID || rc == FS_ECORRUPT ||
			    (r->err.msg[0] && strstr(r->err.msg,
			                                            "constraint")))
				return reject(x, idx, "%s", r->err.msg);
			return rc;
		}
		if ((rc = log_add(&seq, x, t->name, rid, 'U', c->name, val, hlc,
		                  dev, x->author, x->dept)) < 0 ||
		    (rc = clock_put(r, t->name, rid, c->name, hlc, dev, seq)) < 0) {
			free(old);
			return rc;
		}
		x->applied++;
		if (concurrent)
			rc = conflict_add(x, t->name, rid, c->name, "concurrent edit",
			                  val, hlc, dev, old, cur.hlc, cur.device);
		if (rc == 0 && x->move_from)
			rc = log_move(x, rid, seq, hlc);
	} else {
		/* The incoming version loses.  Sequential-but-older cannot come
		** from a correct client (its clock observed the current version);
		** keep it as a conflict all the same rather than drop it. */
		if (!old && (rc = fs_replica__field_json(&old, r, t, rid,
		                                         c->name)) < 0)
			return rc;
		rc = conflict_add(x, t->name, rid, c->name, "concurrent edit", old,
		                  cur.hlc, cur.device, val, hlc, dev);
		if (rc == 0)
			rc = correct(x, t, rid, c->name);
	}
	free(old);
	return rc;
}

/* Field versions of a record from head office's snapshot: clocks is a
** JSON object {field: [hlc, device]} (docs/protocol.md, "Between
** servers"), all logged at seq. */
static int field_clocks_put(push_ctx *x, const fs_table *t, const char *rid,
                            const char *clocks, int64_t seq)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, x->r,
	        "INSERT OR REPLACE INTO fs_clock(tbl, rid, col, hlc, device, seq) "
	        "SELECT ?1, ?2, key, json_extract(value, '$[0]'), "
	        "coalesce(json_extract(value, '$[1]'), ''), ?3 FROM json_each(?4) "
	        "WHERE json_valid(?4) AND json_type(?4) = 'object' AND "
	        "key NOT IN ('', '*') AND json_type(value, '$[0]') = 'integer'") < 0)
		return x->r->err.code;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, seq);
	sqlite3_bind_text(st, 4, clocks, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(x->r, st, "writing field clocks");
	fs_replica__finish(x->r, st);
	return rc;
}

/* A creation of a record this server holds already, merged field by
** field: each field at the creation's version, or, in head office's
** snapshot of a record (upstream), at the version its clocks give it. */
static int merge_versioned(push_ctx *x, uint64_t idx, const fs_table *t,
                           const fs_entry *en)
{
	fs_replica *r = x->r;
	sqlite3_stmt *each = NULL;
	const char *keep = x->dev;
	int rc;

	if (fs_replica__prepare(&each, r,
	        "SELECT e.key, json_quote(e.value), "
	        "coalesce(json_extract(?2, '$.\"' || e.key || '\"[0]'), ?3), "
	        "coalesce(json_extract(?2, '$.\"' || e.key || '\"[1]'), ?4) "
	        "FROM json_each(?1) e WHERE json_type(?1) = 'object'") < 0)
		return r->err.code;
	sqlite3_bind_text(each, 1, en->val ? en->val : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_text(each, 2, x->p->upstream ? or_empty_object(en->col)
	                  : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(each, 3, (int64_t)en->hlc);
	sqlite3_bind_text(each, 4, x->dev, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(each)) == SQLITE_ROW) {
		const fs_column *c = fs_schema__column(t,
		        (const char *)sqlite3_column_text(each, 0));
		char *v, *d;
		if (!c)
			continue;
		v = strdup((const char *)sqlite3_column_text(each, 1));
		d = strdup((const char *)sqlite3_column_text(each, 3));
		if (!v || !d) {
			free(v);
			free(d);
			fs_replica__finish(r, each);
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
		}
		x->dev = d;
		rc = merge_field(x, idx, t, en->rid, c, v,
		                 sqlite3_column_int64(each, 2), (int64_t)en->seq);
		x->dev = keep;
		free(v);
		free(d);
		if (rc < 0) {
			fs_replica__finish(r, each);
			return rc;
		}
	}
	fs_replica__finish(r, each);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "merging a record");
	return 0;
}

/* Whether head office refused the delete that left tombstone tomb of
** record (tbl, rid) here (0/1). */
static int refused_delete(const push_ctx *x, const char *tbl,
                          const char *rid, const clockv *tomb)
{
	uint64_t k;

	for (k = 0; k < x->nno; k++) {
		const fs_entry *en = &x->no[k].en;

		if (en->op == 'D' && !strcmp(en->tbl, tbl) &&
		    !strcmp(en->rid, rid) && refused_version(en, tomb))
			return 1;
	}
	return 0;
}

/* Head office refused the delete of record (t, en->rid) and holds the
** record, as its correction en says: the record comes back here as it
** is there (its fields bound by check_scope), logged as a creation for
** this server's replicas, with head office's creation version (head
** office's whole-record corrections carry no field versions: the fields
** take that one).  The tombstone and the field versions from before the
** delete go, once the record is back.  1 done; 0 when this database
** refuses the record (a constraint: the caller keeps it deleted, as a
** conflict); <0 on failure.
** Records that hung off it come back only if head office refused their
** deletes too (they went up before it, device ''), and only after it:
** head office orders its corrections by table, parents first
** (corrections_write, fs_entity.ord). */
static int undelete(push_ctx *x, const fs_table *t, const fs_entry *en)
{
	fs_replica *r = x->r;
	int64_t seq;
	int rc;

	if ((rc = fs_replica__insert_run(r, t, en->rid)) < 0) {
		if (rc != FS_EINVALID && rc != FS_ECORRUPT)
			return rc;
		fs_err__clear(&r->err);
		return 0;
	}
	if ((rc = fs_replica__exec2(r, "DELETE FROM fs_clock WHERE tbl = ? AND "
	                            "rid = ? AND col <> ''", t->name, en->rid,
	                            "undoing a delete")) < 0 ||
	    (rc = log_add(&seq, x, t->name, en->rid, 'I', NULL, en->val,
	                  (int64_t)en->hlc, x->dev, x->author, x->dept)) < 0 ||
	    (rc = clock_put(r, t->name, en->rid, "", (int64_t)en->hlc, x->dev,
	                    seq)) < 0)
		return rc;
	x->applied++;
	x->created = 1;
	if (en->col && (rc = field_clocks_put(x, t, en->rid, en->col, seq)) < 0)
		return rc;
	return 1;
}

static int merge_insert(push_ctx *x, uint64_t idx, const fs_table *t,
                        const fs_entry *en)
{
	fs_replica *r = x->r;
	const char *dev = x->dev;
	clockv tomb;
	int64_t seq;
	int rc, grouped;

	if (!fs_uuid__valid(en->rid))
		return reject(x, idx, "%s id '%s' is not a UUID", t->noun, en->rid);
	if (x->parent_deleted) {
		/* Made under a record another device deleted: delete wins, the
		** creation is kept as a conflict, and the replica drops it. */
		char *link = NULL;
		rc = fs_policy__json_member(&link, en->val, t->scope_col->name,
		                            &r->err);
		if (rc == 1 && (rc = clock_get(&tomb, r, t->scope_parent->name, link,
		                               "*")) == 0 && tomb.found)
			rc = conflict_add(x, t->name, en->rid, "", "record deleted",
			                  NULL, tomb.hlc, tomb.device, en->val,
			                  (int64_t)en->hlc, dev);
		free(link);
		return rc < 0 ? rc : evict(x, t, en->rid);
	}
	/* check_scope read the clocks (x->c_*) and bound the fields. */
	if (x->c_tomb.found && x->nno &&
	    refused_delete(x, t->name, en->rid, &x->c_tomb) &&
	    (rc = undelete(x, t, en)) != 0)
		return rc < 0 ? rc : 0;
	if (x->c_tomb.found) {
		rc = conflict_add(x, t->name, en->rid, "", "record deleted", NULL,
		                  x->c_tomb.hlc, x->c_tomb.device, en->val,
		                  (int64_t)en->hlc, dev);
		return rc < 0 ? rc : correct(x, t, en->rid, NULL);
	}
	if (!x->c_rec.found) {
		/* A link to a record this server never held is refused (head
		** office holds every record; a regional server only its
		** scope's, and leaves it to head office). */
		if (x->up < 0 && !x->p->upstream &&
		    (rc = rejected(x, idx, fs_replica__links_check(r, t,
		                                                   en->rid))) != 0)
			return rc < 0 ? rc : evict(x, t, en->rid);
		/* Inserted now, or with its group (records_flush); refused
		** there, it is taken back (creation_refused). */
		grouped = fs_replica__group_pending(r, t);
		if (!grouped && (rc = fs_replica__insert_run(r, t, en->rid)) < 0) {
			if (rc == FS_EINVALID || rc == FS_ECORRUPT)
				return reject(x, idx, "%s", r->err.msg);
			return rc;
		}
		if ((rc = log_add(&seq, x, t->name, en->rid, 'I', NULL, en->val,
		                  (int64_t)en->hlc, dev, x->author, x->dept)) < 0 ||
		    (grouped &&
		     (rc = fs_replica__group_add(r, t, en->rid, idx, seq)) < 0))
			return rc;
		x->applied++;
		if ((!x->clock_made || seq != x->clock_seq) &&
		    (rc = clock_put(r, t->name, en->rid, "", (int64_t)en->hlc, dev,
		                    seq)) < 0)
			return rc;
		x->created = 1;
		return en->col && x->p->upstream
		       ? field_clocks_put(x, t, en->rid, en->col, seq) : 0;
	}
	if (en->col && x->p->upstream)
		return merge_versioned(x, idx, t, en);
	if (same_creation(x, en))
		return 0;
	/* The id exists already (a creation seen twice through another path):
	** take it field by field under the normal rules. */
	return merge_versioned(x, idx, t, en);
}

/* Deletes record (t, rid) at version (hlc, the pusher's device), logged
** as by log_dev, for an author whose base was base.  What the deleting
** device had not seen is kept as a 'record deleted' conflict: field edits
** made since, and the record itself if it was created since.  Records
** hanging off it (fs_entity.scope_via) go with it, logged by the server
** (device '') so that every replica drops them, the deleting one too: a
** contact added offline to a customer another rep deleted must not stay
** behind, an orphan no scope can place. */
static int delete_one(push_ctx *x, const fs_table *t, const char *rid,
                      int64_t hlc, int64_t base, const char *log_dev)
{
	fs_replica *r = x->r;
	const char *dev = x->dev;
	sqlite3_stmt *st = NULL;
	clockv tomb, rec;
	char **kids = NULL;
	size_t nkids = 0, cap = 0, i, ti;
	int64_t seq;
	int rc;

	if ((rc = clock_get(&tomb, r, t->name, rid, "*")) < 0)
		return rc;
	if (tomb.found)
		return 0;
	if ((rc = clock_get(&rec, r, t->name, rid, "")) < 0)
		return rc;
	if (rec.found && (rc = unseen(x, rec.seq, rec.device, base)) < 0)
		return rc;
	if (rec.found && rc) {
		char *old = NULL;
		if ((rc = fs_replica__field_json(&old, r, t, rid, NULL)) < 0)
			return rc;
		rc = conflict_add(x, t->name, rid, "", "record deleted", NULL, hlc,
		                  dev, old, rec.hlc, rec.device);
		free(old);
		if (rc < 0)
			return rc;
	}
	/* Edits the deleting device had not seen are overridden: keep them. */
	if ((rc = log_flush(x)) < 0)
		return rc;
	if (fs_replica__prepare(&st, r,
	        "SELECT col, hlc, device FROM fs_clock k WHERE tbl = ? AND rid = ? "
	        "AND col NOT IN ('', '*') AND seq > ? AND device <> ? AND NOT "
	        "EXISTS (SELECT 1 FROM fs_log l WHERE l.seq = k.seq AND "
	        "l.via = ?5)") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, base);
	sqlite3_bind_text(st, 4, dev, -1, SQLITE_STATIC);
	if (x->p->relay)   /* what came through the relay, it has judged */
		sqlite3_bind_text(st, 5, x->p->device, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char col[128], ldev[64], *old = NULL;
		int64_t lhlc = sqlite3_column_int64(st, 1);

		snprintf(col, sizeof(col), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(ldev, sizeof(ldev), "%s", (const char *)sqlite3_column_text(st, 2));
		if ((rc = fs_replica__field_json(&old, r, t, rid, col)) < 0)
			break;
		rc = conflict_add(x, t->name, rid, col, "record deleted", NULL, hlc,
		                  dev, old, lhlc, ldev);
		free(old);
		if (rc < 0)
			break;
	}
	fs_replica__finish(r, st);
	st = NULL;
	if (rc < 0)
		return rc;
	/* The records hanging directly off it, read before anything goes. */
	for (ti = 0; ti < r->schema.ntables && rc >= 0; ti++) {
		const fs_table *u = &r->schema.tables[ti];
		char sql[200];

		if (u->scope_parent != t)
			continue;
		snprintf(sql, sizeof(sql), "SELECT '%s', id FROM \"%s\" WHERE "
		         "\"%s\" = ?", u->name, u->name, u->scope_col->name);
		if ((rc = fs_replica__prepare(&st, r, sql)) < 0)
			break;
		sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			char *k;
			if (nkids == cap) {
				char **n = realloc(kids, (cap = cap ? cap * 2 : 8) *
				                   sizeof(*n));
				if (!n) {
					rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
					break;
				}
				kids = n;
			}
			/* "table\tid" */
			if (!(k = malloc(strlen(u->name) + 64))) {
				rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
				break;
			}
			snprintf(k, strlen(u->name) + 64, "%s\t%s", u->name,
			         (const char *)sqlite3_column_text(st, 1));
			kids[nkids++] = k;
		}
		fs_replica__finish(r, st);
		st = NULL;
		if (rc == SQLITE_DONE)
			rc = 0;
		else if (rc > 0)
			rc = fs_err__sqlite(&r->err, r->db, rc, "reading records to delete");
	}
	for (i = 0; i < nkids && rc >= 0; i++) {
		char *tab = strchr(kids[i], '\t');
		*tab = '\0';
		rc = delete_one(x, fs_schema__table(&r->schema, kids[i]), tab + 1,
		                hlc, base, "");
	}
	for (i = 0; i < nkids; i++)
		free(kids[i]);
	free(kids);
	if (rc < 0)
		return rc;
	if ((rc = fs_replica__apply_delete(r, t, rid)) < 0 ||
	    (rc = log_add(&seq, x, t->name, rid, 'D', NULL, NULL, hlc, log_dev,
	                  x->author, x->dept)) < 0)
		return rc;
	x->applied++;
	if (!rec.found && !x->lone_tombs &&
	    (rc = lone_tombs_mark(x)) < 0)
		return rc;
	return clock_put(r, t->name, rid, "*", hlc, log_dev, seq);
}

static int merge_delete(push_ctx *x, const fs_table *t, const fs_entry *en)
{
	return delete_one(x, t, en->rid, (int64_t)en->hlc, (int64_t)en->seq,
	                  x->dev);
}

static int merge_resolve(push_ctx *x, const fs_entry *en)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	char when[24];
	int64_t seq;
	int rc;

	/* Resolved when the resolver resolved it (its clock), not when the
	** server heard of it: every replica shows the same time. */
	fs_value__format_time(when, FS_HLC_MS(en->hlc));
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_conflict SET resolved_at = ?, resolved_by = ?, "
	        "resolution = ? WHERE id = ? AND resolved_at IS NULL") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, x->author, -1, SQLITE_STATIC);
	if (en->val)
		sqlite3_bind_text(st, 3, en->val, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, en->rid, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "resolving a conflict");
	fs_replica__finish(r, st);
	if (rc < 0 || sqlite3_changes(r->db) == 0)
		return rc;
	x->applied++;
	return log_add(&seq, x, "fs_conflict", en->rid, 'R', NULL, en->val,
	               (int64_t)en->hlc, x->dev, x->author, x->dept);
}

/* ------------------------------------------------ entries of other tiers
** A regional server's pushes (relay) and head office's changes applied at
** a regional server (upstream) carry their own device, author and clock
** (docs/tiers.md). */

/* Remembers the author of another tier's device, for its conflicts. */
static int origin_note(push_ctx *x)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!*x->dev || !*x->author || !strcmp(x->dev, x->origin_seen))
		return 0;
	if (fs_replica__prepare(&st, x->r,
	        "INSERT INTO fs_origin(device, author) VALUES (?, ?) "
	        "ON CONFLICT(device) DO UPDATE SET author = excluded.author "
	        "WHERE author <> excluded.author") < 0)
		return x->r->err.code;
	sqlite3_bind_text(st, 1, x->dev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, x->author, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(x->r, st, "recording an author");
	fs_replica__finish(x->r, st);
	snprintf(x->origin_seen, sizeof(x->origin_seen), "%s", x->dev);
	return rc;
}

/* The local id of the conflict with natural key key (a JSON array
** [table, record, field, loser_hlc, loser_device]): 1 found, 0 not. */
static int conflict_by_key(char *id, size_t size, fs_replica *r,
                           const char *key)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT id FROM fs_conflict WHERE json_valid(?1) AND "
	        "tbl = json_extract(?1, '$[0]') AND rid = json_extract(?1, '$[1]') "
	        "AND col = json_extract(?1, '$[2]') AND "
	        "loser_hlc = json_extract(?1, '$[3]') AND "
	        "loser_device = json_extract(?1, '$[4]')") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(id, size, "%lld", (long long)sqlite3_column_int64(st, 0));
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "looking up a conflict");
	return 0;
}

/* A conflict recorded on another tier (its C entry's JSON): recorded
** here once, under its natural key, in the department of its record. */
static int conflict_import(push_ctx *x, uint64_t idx, const fs_entry *en)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	char *tbl = NULL, *rid = NULL, *dept = NULL, id[32];
	const fs_table *t;
	int rc, in;

	free(x->dept);
	x->dept = NULL;
	if ((rc = fs_policy__json_member(&tbl, en->val, "table", &r->err)) < 0 ||
	    (rc = fs_policy__json_member(&rid, en->val, "record", &r->err)) < 0 ||
	    !tbl || !rid || !(t = fs_schema__table(&r->schema, tbl))) {
		fs_err__clear(&r->err);
		rc = reject(x, idx, "a conflict entry without a known table and "
		            "record");
		goto done;
	}
	if ((rc = fs_policy__record_dept(r, t, rid, &dept, NULL)) == 0)
		rc = tomb_dept(&dept, x, t->name, rid);
	if (rc == 0 && t->scope_col) {
		/* A record this server never held (made under a record deleted
		** meanwhile): where its link put it, as the creation said. */
		char *lval = NULL, *link = NULL;
		if ((rc = fs_policy__json_member(&lval, en->val, "loser_value",
		                                 &r->err)) >= 0 && lval &&
		    (rc = fs_policy__json_member(&link, lval, t->scope_col->name,
		                                 &r->err)) >= 0 && link) {
			rc = fs_policy__link_dept(r, t, link, &dept, NULL);
			if (rc >= 0 && !dept && t->scope_parent)
				rc = tomb_dept(&dept, x, t->scope_parent->name, link);
		}
		free(lval);
		free(link);
		if (rc < 0)
			fs_err__clear(&r->err);
		/* An edit of such a record: where its creation's conflict is. */
		rc = dept ? 0 : text_row(&dept, r, "SELECT scope FROM fs_conflict "
		                         "WHERE tbl = ?1 AND rid = ?2 AND scope IS NOT "
		                         "NULL LIMIT 1", t->name, rid,
		                         "placing a conflict");
	}
	if (rc < 0)
		goto done;
	if ((rc = in = fs_policy__in_scope(r, x->p->all, dept)) < 0)
		goto done;
	if (!in) {
		rc = reject(x, idx, "a conflict on %s %s is outside your scope",
		            t->noun, rid);
		goto done;
	}
	if (fs_replica__prepare(&st, r,
	        "INSERT OR IGNORE INTO fs_conflict(tbl, rid, col, reason, "
	        "winner_value, winner_hlc, winner_device, winner_author, "
	        "loser_value, loser_hlc, loser_device, loser_author, created_at, "
	        "scope) SELECT j->>'table', j->>'record', coalesce(j->>'field', ''), "
	        "coalesce(j->>'reason', 'concurrent edit'), j->>'winner_value', "
	        "coalesce(j->>'winner_hlc', 0), coalesce(j->>'winner_device', ''), "
	        "coalesce(j->>'winner_author', ''), j->>'loser_value', "
	        "coalesce(j->>'loser_hlc', 0), coalesce(j->>'loser_device', ''), "
	        "coalesce(j->>'loser_author', ''), coalesce(j->>'created_at', ?3), "
	        "?2 FROM (SELECT json(?1) AS j)") < 0) {
		rc = r->err.code;
		goto done;
	}
	sqlite3_bind_text(st, 1, en->val, -1, SQLITE_STATIC);
	if (dept)
		sqlite3_bind_text(st, 2, dept, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, x->now, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a conflict");
	fs_replica__finish(r, st);
	st = NULL;
	if (rc < 0)
		goto done;
	x->dept = dept;
	dept = NULL;
	if (sqlite3_changes(r->db) > 0) {
		x->conflicts++;
		if ((rc = conflict_announce(x, sqlite3_last_insert_rowid(r->db),
		                            x->via)) < 0)
			goto done;
	}
	/* A snapshot's conflict may come resolved. */
	if (!strstr(en->val, "\"resolved_at\":\"")) {
		rc = 0;
		goto done;
	}
	{
		char *key = NULL;
		if ((rc = text_row(&key, r, "SELECT json_array(j->>'table', "
		        "j->>'record', coalesce(j->>'field', ''), j->>'loser_hlc', "
		        "j->>'loser_device') FROM (SELECT json(?1) AS j)", en->val,
		        NULL, "reading a conflict")) < 0)
			goto done;
		rc = key ? conflict_by_key(id, sizeof(id), r, key) : 0;
		free(key);
	}
	if (rc <= 0)
		goto done;
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_conflict SET resolved_at = j->>'resolved_at', "
	        "resolved_by = j->>'resolved_by', resolution = j->>'resolution' "
	        "FROM (SELECT json(?1) AS j) WHERE id = ?2 AND "
	        "fs_conflict.resolved_at IS NULL") < 0) {
		rc = r->err.code;
		goto done;
	}
	sqlite3_bind_text(st, 1, en->val, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "resolving a conflict");
	fs_replica__finish(r, st);
	st = NULL;
	if (rc == 0 && sqlite3_changes(r->db) > 0) {
		char *val = NULL;
		int64_t seq;
		if ((rc = text_row(&val, r, "SELECT resolution FROM fs_conflict "
		                   "WHERE id = ?1", id, NULL,
		                   "reading a resolution")) >= 0)
			rc = log_add(&seq, x, "fs_conflict", id, 'R', NULL, val,
			             (int64_t)en->hlc, "", "", x->dept);
		free(val);
	}
done:
	fs_replica__finish(r, st);
	free(tbl);
	free(rid);
	free(dept);
	return rc < 0 ? rc : 0;
}

/* At a regional server: head office says record (t, rid) left this
** server's holdings (its customer moved to another region, or head office
** refused its creation).  It goes with everything hanging off it, their
** clocks and conflicts, without tombstones, and an 'X' tells this
** server's replicas to drop it too. */
static int evict_here(push_ctx *x, const fs_table *t, const char *rid,
                      int64_t hlc)
{
	fs_replica *r = x->r;
	char *dept = NULL;
	int64_t seq;
	size_t i;
	int rc;

	if ((rc = fs_policy__record_dept(r, t, rid, &dept, NULL)) <= 0)
		return rc;
	rc = log_add(&seq, x, t->name, rid, 'X', NULL, NULL, hlc, "", x->author,
	             dept);
	for (i = r->schema.ntables; i-- > 0 && rc == 0;) {
		const fs_table *u = &r->schema.tables[i];
		static const char *what[] = { "fs_clock", "fs_conflict" };
		char fmt[300];
		int k;

		/* Remembered: a rep's write made before this still goes up. */
		snprintf(fmt, sizeof(fmt), "INSERT OR REPLACE INTO fs_gone(tbl, rid, "
		         "scope, seq) SELECT '%s', id, ?2, %lld FROM \"%s\" WHERE %%s",
		         u->name, (long long)seq, u->name);
		if ((rc = fs_replica__exec_hanging(r, u, t, fmt, rid, dept,
		                                   "remembering a record")) < 0)
			break;
		for (k = 0; k < 2 && rc == 0; k++) {
			snprintf(fmt, sizeof(fmt), "DELETE FROM %s WHERE tbl = '%s' AND "
			         "rid IN (SELECT id FROM \"%s\" WHERE %%s)", what[k],
			         u->name, u->name);
			rc = fs_replica__exec_hanging(r, u, t, fmt, rid, NULL,
			                              "dropping a record");
		}
		snprintf(fmt, sizeof(fmt), "DELETE FROM \"%s\" WHERE %%s", u->name);
		if (rc == 0)
			rc = fs_replica__exec_hanging(r, u, t, fmt, rid, NULL,
			                              "dropping a record");
	}
	free(dept);
	if (rc == 0)
		x->applied++;
	return rc;
}

static int merge_one(push_ctx *x, uint64_t idx, const fs_entry *en)
{
	const fs_table *t;
	fs_entry e;
	char id[32];
	int rc;

	x->dev = x->p->device;
	x->author = x->p->user;
	if (x->p->relay || x->p->upstream) {
		/* Another server's entry: it names its device and author. */
		x->dev = en->device ? en->device : "";
		x->author = en->author ? en->author : "";
		if ((rc = origin_note(x)) < 0)
			return rc;
		if (en->op == 'C')
			return conflict_import(x, idx, en);
		if (en->op == 'R' && en->col) {
			/* Conflict ids differ per server: its natural key. */
			if ((rc = conflict_by_key(id, sizeof(id), x->r, en->col)) <= 0)
				return rc;
			e = *en;
			e.rid = id;
			e.col = NULL;
			en = &e;
		}
		if (x->p->upstream && en->op == 'X') {
			t = fs_schema__table(&x->r->schema, en->tbl);
			return t ? evict_here(x, t, en->rid, (int64_t)en->hlc) : 0;
		}
		if (x->p->upstream) {
			/* Head office has judged what was concurrent: its
			** conflicts come as C entries. */
			if (en != &e) {
				e = *en;
				en = &e;
			}
			e.seq = INT64_MAX;
		}
	}
	if (en->op == 'R') {
		if ((rc = check_scope(x, idx, NULL, en)) != 0)
			return rc < 0 ? rc : 0;
		return merge_resolve(x, en);
	}
	t = fs_schema__table(&x->r->schema, en->tbl);
	if (!t || strcmp(t->name, en->tbl))
		return reject(x, idx, "unknown table '%s'", en->tbl);
	if (en->op != 'I' && en->op != 'U' && en->op != 'D')
		return reject(x, idx, "op '%c' cannot be pushed", en->op);
	if ((rc = check_scope(x, idx, t, en)) != 0 ||
	    (x->rules && (rc = check_rules(x, idx, t, en)) != 0))
		return rc < 0 ? rc : 0;
	switch (en->op) {
	case 'I':
		return merge_insert(x, idx, t, en);
	case 'U': {
		const fs_column *c = fs_schema__column(t, en->col);
		if (!c)
			return reject(x, idx, "%s has no field '%s'", t->noun, en->col);
		return merge_field(x, idx, t, en->rid, c, en->val, (int64_t)en->hlc,
		                   (int64_t)en->seq);
	}
	case 'D':
		return merge_delete(x, t, en);
	default:
		return reject(x, idx, "op '%c' cannot be pushed", en->op);
	}
}

/* Merges one entry.  A creation clock written for it (clock_create)
** stays only if the creation went through. */
static int merge_entry(push_ctx *x, uint64_t idx, const fs_entry *en)
{
	int rc;

	x->clock_made = x->created = 0;
	fs_replica__group_unpend(x->r);
	/* Only a creation of a new record leaves the records waiting in
	** group inserts where they are (check_scope). */
	if (en->op != 'I' && (rc = records_flush(x)) < 0)
		return rc;
	rc = merge_one(x, idx, en);
	if (rc < 0 || !x->clock_made || x->created)
		return rc;
	return clock_take_back(x->r, en->tbl, en->rid);
}

/* Starts a merge context for peer p (corr, rej, evict: the ACK's parts). */
static int ctx_init(push_ctx *x, fs_replica *r, const fs_peer *p,
                    fs_buf *corr, fs_buf *rej, fs_buf *ev)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(x, 0, sizeof(*x));
	x->r = r;
	x->p = p;
	x->corr = corr;
	x->evict = ev;
	x->rej = rej;
	x->dev = p->device;
	x->author = p->user;
	x->via = p->relay ? p->device : p->upstream ? "^" : NULL;
	x->up = -1;
	fs_replica__now(x->now);
	/* A regional server notes, with every change, the head-office log
	** position it had pulled: head office's base for it (for head
	** office's own changes, the position before their frame). */
	if (fs_replica__prepare(&st, r,
	        "SELECT cursor FROM fs_upstream WHERE id = 1") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		x->up = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading the upstream");
	if ((rc = lone_tombs_read(x)) < 0)
		return rc;
	if (p->upstream)   /* head office has checked the rules */
		return 0;
	return fs_policy__rules_load(&x->rules, r);
}

static void ctx_free(push_ctx *x)
{
	size_t i;

	for (i = 0; i < x->nowed; i++) {
		free(x->owed[i].rid);
		free(x->owed[i].col);
	}
	free(x->owed);
	x->owed = NULL;
	x->nowed = x->aowed = 0;
	fs_replica__group_reset(x->r);
	fs_logq__free(&x->lq);
	fs_policy__rules_free(x->rules);
	free(x->dept);
	free(x->move_from);
	x->rules = NULL;
	x->dept = x->move_from = NULL;
}

/* ---------------------------------------------- a snapshot taken again
**
** Head office answers a regional server's pull "take a snapshot again"
** when its user's scope changed or when it compacted its log past the
** regional server's cursor.  The snapshot is merged over what is held
** here, so it brings back what is still the region's; what it does not
** bring, head office no longer gives the region: deleted there (its 'D'
** compacted away) or moved out.  fs_resnap (made at the first answer,
** dropped when the snapshot is complete; it lasts across cuts and
** restarts) lists the records held when the snapshot began; each record
** a snapshot frame brings leaves it, and what is left at the end is
** dropped as a record that left the region is (evict_here): logged 'X'
** for this server's replicas, remembered in fs_gone.  A record created
** here since the snapshot began stays (fs_meta 'resnap_pushed' keeps the
** relay position of then): the snapshot may have passed its place before
** it went up, and head office never sends a relay its own changes back.
** A record's edits made here do not keep it: they still go up, and head
** office judges them as it judges any write made before a move. */

static int resnap_begin(fs_replica *r)
{
	fs_buf sql = FS_BUF_INIT;
	size_t i;
	int rc;

	fs_buf_puts(&sql, "DROP TABLE IF EXISTS fs_resnap; CREATE TABLE "
	            "fs_resnap(tbl TEXT NOT NULL, rid TEXT NOT NULL, PRIMARY KEY "
	            "(tbl, rid)) WITHOUT ROWID;\n"
	            "INSERT OR REPLACE INTO fs_meta(k, v) SELECT 'resnap_pushed', "
	            "pushed FROM fs_upstream WHERE id = 1;\n");
	for (i = 0; i < r->schema.ntables; i++)
		fs_buf_printf(&sql, "INSERT INTO fs_resnap SELECT '%s', id FROM "
		              "\"%s\";\n", r->schema.tables[i].name,
		              r->schema.tables[i].name);
	rc = sql.failed ? fs_err__set(&r->err, FS_ERROR, "out of memory")
	     : fs_replica__exec(r, sql.ptr, "noting what is held before a "
	                        "snapshot");
	fs_buf_free(&sql);
	return rc;
}

/* Whether a snapshot taken again is under way (0/1, <0). */
static int resnap_active(fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, "SELECT 1 FROM sqlite_master WHERE "
	                        "type = 'table' AND name = 'fs_resnap'") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading the schema");
	return 0;
}

static int resnap_brought(push_ctx *x, const char *tbl, const char *rid)
{
	return fs_replica__exec2(x->r, "DELETE FROM fs_resnap WHERE tbl = ? AND "
	                         "rid = ?", tbl, rid, "noting a record brought");
}

/* The snapshot is complete: drops what it did not bring. */
static int resnap_end(push_ctx *x)
{
	fs_replica *r = x->r;
	sqlite3_stmt *st = NULL;
	char **left = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t hlc;
	int rc;

	/* (everything the last frame brought is written first: the log is
	** read, and the records' children) */
	if ((rc = deferred_write(x)) < 0 ||
	    (rc = fs_replica__exec(r, "DELETE FROM fs_resnap WHERE (tbl, rid) "
	        "IN (SELECT l.tbl, l.rid FROM fs_log l WHERE l.op = 'I' AND "
	        "l.seq > coalesce((SELECT v FROM fs_meta WHERE k = "
	        "'resnap_pushed'), 0) AND " FS_STORE_RELAYED ")",
	        "keeping what was created here since")) < 0)
		return rc;
	/* Read first ("table\tid"): dropping a record drops what hangs off
	** it, which may be listed too. */
	if (fs_replica__prepare(&st, r, "SELECT tbl || char(9) || rid FROM "
	                        "fs_resnap ORDER BY tbl, rid") < 0)
		return r->err.code;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char *k;
		if (n == cap) {
			char **m = realloc(left, (cap = cap ? cap * 2 : 16) *
			                   sizeof(*m));
			if (!m) {
				rc = SQLITE_NOMEM;
				break;
			}
			left = m;
		}
		if (!(k = strdup((const char *)sqlite3_column_text(st, 0)))) {
			rc = SQLITE_NOMEM;
			break;
		}
		left[n++] = k;
	}
	fs_replica__finish(r, st);
	if (rc == SQLITE_NOMEM)
		rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
	else if (rc != SQLITE_DONE)
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading fs_resnap");
	else
		rc = 0;
	/* Logged as head office's, at the clock's current reading: this
	** server only follows it. */
	x->dev = x->p->device;
	x->author = x->p->user;
	hlc = fs_store__max_hlc(r);
	if (x->max_hlc > hlc)
		hlc = x->max_hlc;
	for (i = 0; i < n && rc == 0; i++) {
		char *tab = strchr(left[i], '\t');
		const fs_table *t;

		*tab = '\0';
		if ((t = fs_schema__table(&r->schema, left[i])) != NULL)
			rc = evict_here(x, t, tab + 1, (int64_t)hlc);
	}
	for (i = 0; i < n; i++)
		free(left[i]);
	free(left);
	return rc < 0 ? rc : fs_replica__exec(r, "DROP TABLE fs_resnap; DELETE "
	                                      "FROM fs_meta WHERE k = "
	                                      "'resnap_pushed'", "ending a "
	                                      "snapshot");
}

/* Merges count entries from rd. */
static int merge_all(push_ctx *x, fs_rd *rd, uint64_t count)
{
	fs_replica *r = x->r;
	uint64_t i;
	int rc;

	for (i = 0; i < count; i++) {
		fs_entry en;
		if ((rc = fs_rd__entry(rd, &en, &r->err)) < 0)
			return rc;
		if (en.hlc > x->max_hlc)
			x->max_hlc = en.hlc;
		if (x->resnap && en.op == 'I' &&
		    (rc = resnap_brought(x, en.tbl, en.rid)) < 0)
			return rc;
		/* No savepoint per entry: an entry is refused before its first
		** write or at it (SQLite undoes a failed statement by itself); a
		** creation's clock, written first, merge_entry takes back, and a
		** creation the database refuses when its group insert runs,
		** creation_refused (its log position stays unused).  So a
		** refused entry leaves no trace; any other failure abandons the
		** whole batch. */
		if ((rc = merge_entry(x, i, &en)) < 0)
			return rc;
	}
	if ((rc = records_flush(x)) < 0 || (rc = corrections_write(x)) < 0)
		return rc;
	return fs_rd__end(rd, &r->err);
}

static void rollback(fs_replica *r)
{
	fs_err keep = r->err;
	fs_replica__exec(r, "ROLLBACK", "rolling back");
	r->err = keep;
}

int fs_store__push(fs_replica *r, const fs_peer *p, const char *batch_id,
                   fs_rd *rd, uint64_t count, fs_buf *ack)
{
	fs_buf corr = FS_BUF_INIT, rej = FS_BUF_INIT, ev = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	push_ctx x;
	int rc, oom;

	if ((rc = fs_replica__exec(r, "BEGIN IMMEDIATE", "starting a batch")) < 0)
		return rc;
	if ((rc = ctx_init(&x, r, p, &corr, &rej, &ev)) < 0)
		goto fail;
	if (fs_replica__prepare(&st, r,
	        "SELECT pushed_hlc FROM fs_device WHERE id = ?") < 0) {
		rc = r->err.code;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		x.pushed_hlc = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	st = NULL;
	if ((rc = merge_all(&x, rd, count)) < 0)
		goto fail;
	if (fs_replica__prepare(&st, r,
	        "INSERT OR IGNORE INTO fs_batch(device, batch_id, entries, "
	        "received_at) VALUES (?, ?, ?, ?)") < 0) {
		rc = r->err.code;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, batch_id ? batch_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)count);
	sqlite3_bind_text(st, 4, x.now, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a batch");
	fs_replica__finish(r, st);
	if (rc < 0)
		goto fail;
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_device SET pushed_hlc = max(pushed_hlc, ?) "
	        "WHERE id = ?") < 0) {
		rc = r->err.code;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, (int64_t)x.max_hlc);
	sqlite3_bind_text(st, 2, p->device, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording the device's high-water");
	fs_replica__finish(r, st);
	if (rc < 0)
		goto fail;
	/* The greatest clock seen, for WELCOME (clients observe it). */
	if ((rc = fs_replica__meta_hlc(r, (int64_t)x.max_hlc,
	                               "recording the clock")) < 0)
		goto fail;
	/* Acknowledge only what is durable: the ACK is built after COMMIT. */
	if ((rc = deferred_write(&x)) < 0 ||
	    (rc = fs_replica__exec(r, "COMMIT", "committing a batch")) < 0)
		goto fail;
	fs_buf_clear(ack);
	fs_wr__str(ack, batch_id);
	fs_wr__uv(ack, x.applied);
	fs_wr__uv(ack, x.conflicts);
	fs_wr__uv(ack, x.nrej);
	if (rej.len)
		fs_buf_put(ack, rej.ptr, rej.len);
	fs_wr__uv(ack, x.ncorr);
	if (corr.len)
		fs_buf_put(ack, corr.ptr, corr.len);
	if (ev.len)
		fs_buf_put(ack, ev.ptr, ev.len);
	oom = ack->failed || corr.failed || ev.failed || rej.failed;
	fs_buf_free(&corr);
	fs_buf_free(&ev);
	fs_buf_free(&rej);
	ctx_free(&x);
	if (oom)
		return fs_err__set(&r->err, FS_ERROR, "out of memory building an ack");
	return 0;
fail:
	rollback(r);
	fs_buf_free(&corr);
	fs_buf_free(&ev);
	fs_buf_free(&rej);
	ctx_free(&x);
	return rc;
}

/* ------------------------------------------------ a regional server's side */

void fs_store__upstream_peer(fs_peer *p, int schema)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->device, sizeof(p->device), "^");
	snprintf(p->user, sizeof(p->user), "head office");
	snprintf(p->role, sizeof(p->role), "admin");
	p->all = 1;
	p->schema = schema;
	p->upstream = 1;
}

static int upstream_save(fs_replica *r, const fs_upstream_pos *pos,
                         int64_t pushed)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, pos ?
	        "UPDATE fs_upstream SET cursor = ?1, bootstrapped = ?2, "
	        "snap_tbl = ?3, snap_rid = ?4, snap_seq = ?5 WHERE id = 1" :
	        "UPDATE fs_upstream SET pushed = max(pushed, ?6) WHERE id = 1") < 0)
		return r->err.code;
	if (pos) {
		sqlite3_bind_int64(st, 1, (int64_t)pos->cursor);
		sqlite3_bind_int(st, 2, pos->bootstrapped);
		if (pos->snap_tbl)
			sqlite3_bind_text(st, 3, pos->snap_tbl, -1, SQLITE_STATIC);
		if (pos->snap_rid)
			sqlite3_bind_text(st, 4, pos->snap_rid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)pos->snap_seq);
	} else {
		sqlite3_bind_int64(st, 6, pushed);
	}
	rc = fs_replica__step_done(r, st, "saving the upstream position");
	fs_replica__finish(r, st);
	return rc;
}

int fs_store__apply_upstream(fs_replica *r, const fs_peer *p, fs_rd *rd,
                             uint64_t count, const fs_upstream_pos *pos,
                             uint64_t *applied)
{
	fs_buf corr = FS_BUF_INIT, rej = FS_BUF_INIT, ev = FS_BUF_INIT;
	push_ctx x;
	int rc;

	*applied = 0;
	if ((rc = fs_replica__exec(r, "BEGIN IMMEDIATE", "applying head "
	                           "office's changes")) < 0)
		return rc;
	if ((rc = ctx_init(&x, r, p, &corr, &rej, &ev)) < 0)
		goto fail;
	/* A snapshot taken again: begun now, or under way (fs_resnap lasts
	** from its beginning to its end). */
	if (pos->resnap) {
		if ((rc = resnap_begin(r)) < 0)
			goto fail;
		x.resnap = 1;
	} else if ((rc = x.resnap = resnap_active(r)) < 0) {
		goto fail;
	}
	if ((rc = merge_all(&x, rd, count)) < 0 ||
	    (x.resnap && pos->bootstrapped && (rc = resnap_end(&x)) < 0) ||
	    (rc = deferred_write(&x)) < 0 ||
	    (rc = upstream_save(r, pos, 0)) < 0 ||
	    (rc = fs_replica__meta_hlc(r, (int64_t)x.max_hlc,
	                               "recording the clock")) < 0 ||
	    (rc = fs_replica__exec(r, "COMMIT", "committing head office's "
	                           "changes")) < 0)
		goto fail;
	*applied = x.applied;
	goto done;
fail:
	rollback(r);
done:
	fs_buf_free(&corr);
	fs_buf_free(&ev);
	fs_buf_free(&rej);
	ctx_free(&x);
	return rc;
}

/* A reader of the batch sent, by entry index. */
typedef struct sent_rd {
	const fs_buf *sent;
	fs_rd rd;
	uint64_t next;       /* index of the entry rd is at */
} sent_rd;

/* The entry at index idx (its strings point into the batch sent).  Head
** office lists refusals mostly in batch order (a creation refused when its
** group insert ran comes later), so this reads forward; a smaller index
** reads from the start again. */
static int sent_entry(fs_entry *en, sent_rd *s, uint64_t idx, fs_err *e)
{
	int rc;

	if (idx < s->next || !s->next) {
		fs_rd__init(&s->rd, s->sent);
		s->next = 0;
	}
	for (; s->next <= idx; s->next++)
		if ((rc = fs_rd__entry(&s->rd, en, e)) < 0)
			return rc;
	return 0;
}


int fs_store__relay_acked(fs_replica *r, const fs_peer *p, fs_rd *rd,
                          const fs_buf *sent, uint64_t nsent, int64_t last,
                          uint64_t *refused)
{
	fs_buf corr = FS_BUF_INIT, rej = FS_BUF_INIT, ev = FS_BUF_INIT;
	refusal *no = NULL;
	uint64_t nrej = 0, ncorr = 0, i;
	sent_rd srd = { sent, { 0 }, 0 };
	push_ctx x;
	int rc;

	*refused = 0;
	if ((rc = fs_replica__exec(r, "BEGIN IMMEDIATE", "recording head "
	                           "office's ACK")) < 0)
		return rc;
	if ((rc = ctx_init(&x, r, p, &corr, &rej, &ev)) < 0)
		goto fail;
	if ((rc = fs_rd__uv(rd, &nrej, &r->err)) < 0)
		goto fail;
	if (nrej > nsent) {
		rc = fs_err__set(&r->err, FS_ECORRUPT, "head office refused %llu "
		                 "of %llu changes", (unsigned long long)nrej,
		                 (unsigned long long)nsent);
		goto fail;
	}
	if (nrej && !(no = calloc((size_t)nrej, sizeof(*no)))) {
		rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto fail;
	}
	for (i = 0; i < nrej; i++) {
		const char *why;
		const fs_table *t;
		uint64_t idx;

		if ((rc = fs_rd__uv(rd, &idx, &r->err)) < 0 ||
		    (rc = fs_rd__str(rd, &why, &r->err)) < 0)
			goto fail;
		if (idx >= nsent) {
			rc = fs_err__set(&r->err, FS_ECORRUPT, "head office refused "
			                 "change %llu of %llu", (unsigned long long)idx,
			                 (unsigned long long)nsent);
			goto fail;
		}
		snprintf(no[i].reason, sizeof(no[i].reason), "refused upstream: %s",
		         why ? why : "");
		if ((rc = sent_entry(&no[i].en, &srd, idx, &r->err)) < 0)
			goto fail;
		t = fs_schema__table(&r->schema, no[i].en.tbl);
		if (t && (rc = fs_policy__record_dept(r, t, no[i].en.rid,
		                                      &no[i].dept, NULL)) < 0)
			goto fail;
	}
	/* Head office's values first (a refused creation goes, with what
	** hangs off it): for a refused version still current here, whatever
	** their clocks (refusal_of), else by version... */
	if ((rc = fs_rd__uv(rd, &ncorr, &r->err)) < 0)
		goto fail;
	x.no = no;
	x.nno = nrej;
	for (i = 0; i < ncorr; i++) {
		fs_entry en;

		if ((rc = fs_rd__entry(rd, &en, &r->err)) < 0)
			goto fail;
		if ((rc = merge_entry(&x, i, &en)) < 0)
			goto fail;
	}
	x.no = NULL;
	x.nno = 0;
	if ((rc = fs_rd__end(rd, &r->err)) < 0)
		goto fail;
	/* ...then each refused change, kept here as a conflict for review
	** (after the drop, which would take the conflict with it).  C and R
	** entries simply stay here, and only here. */
	for (i = 0; i < nrej; i++) {
		const fs_entry *en = &no[i].en;

		if (en->op == 'C' || en->op == 'R')
			continue;
		free(x.dept);
		x.dept = no[i].dept;
		no[i].dept = NULL;
		if ((rc = conflict_add(&x, en->tbl, en->rid,
		                       en->op == 'U' ? en->col : "", no[i].reason,
		                       NULL, 0, "", en->val, (int64_t)en->hlc,
		                       en->device ? en->device : "")) < 0)
			goto fail;
	}
	*refused = nrej;
	if ((rc = deferred_write(&x)) < 0 ||
	    (rc = upstream_save(r, NULL, last)) < 0 ||
	    (rc = fs_replica__exec(r, "COMMIT", "recording head office's "
	                           "ACK")) < 0)
		goto fail;
	goto done;
fail:
	rollback(r);
done:
	for (i = 0; no && i < nrej; i++)
		free(no[i].dept);
	free(no);
	fs_buf_free(&corr);
	fs_buf_free(&ev);
	fs_buf_free(&rej);
	ctx_free(&x);
	return rc;
}

int fs_store__relay_batch(fs_replica *r, int64_t after, uint64_t max,
                          fs_buf *entries, uint64_t *n, int64_t *last)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	*last = after;
	fs_buf_clear(entries);
	/* What this server's own devices wrote (not what came from head
	** office, via '^'), with the head-office position each was made on
	** top of; a resolution names its conflict by natural key. */
	if (fs_replica__prepare(&st, r,
	        "SELECT l.seq, l.op, l.tbl, l.rid, CASE l.op WHEN 'R' THEN "
	        "(SELECT " CONFLICT_KEY " FROM fs_conflict c WHERE c.id = l.rid) "
	        "ELSE l.col END, l.val, l.hlc, l.device, l.author, "
	        "coalesce(l.up, 0) FROM fs_log l WHERE l.seq > ?1 AND "
	        FS_STORE_RELAYED " ORDER BY l.seq LIMIT ?2") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_entry en;

		memset(&en, 0, sizeof(en));
		*last = sqlite3_column_int64(st, 0);
		en.op = ((const char *)sqlite3_column_text(st, 1))[0];
		en.tbl = (const char *)sqlite3_column_text(st, 2);
		en.rid = (const char *)sqlite3_column_text(st, 3);
		en.col = (const char *)sqlite3_column_text(st, 4);
		en.val = (const char *)sqlite3_column_text(st, 5);
		en.hlc = (uint64_t)sqlite3_column_int64(st, 6);
		en.device = (const char *)sqlite3_column_text(st, 7);
		en.author = (const char *)sqlite3_column_text(st, 8);
		en.seq = (uint64_t)sqlite3_column_int64(st, 9);
		if (en.op == 'R' && !en.col)
			continue;   /* its conflict is gone (moved away) */
		fs_wr__entry(entries, &en);
		(*n)++;
		if (entries->len > FS_FRAME_RAW_MAX / 4)
			break;
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading the change log");
	if (entries->failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	return 0;
}

/* 1 if the creation json gives table t's scope link col the value the
** record has now (an edit to the same value, or a move away and back). */
static int link_unchanged(fs_replica *r, const fs_table *t, const char *col,
                          const char *rid, const char *json, const char *path)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	int rc, same = 0;

	if (!t || !t->scope_col || strcmp(col, t->scope_col->name))
		return 0;
	snprintf(sql, sizeof(sql), "SELECT \"%s\" IS json_extract(?2, ?3) "
	         "FROM \"%s\" WHERE id = ?1", col, t->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		same = sqlite3_column_int(st, 0);
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "pulling");
	return same;
}

/* The creation's JSON without the fields updated after log position seq;
** *out NULL when nothing was updated since.  The scope link stays when it
** still has the creation's value: a regional server or a scoped replica
** places the record by it (an edit of it to the same value left it out,
** and the record landed in no department). */
static int strip_superseded(char **out, fs_replica *r, const char *tbl,
                            const char *rid, const char *json, int64_t seq)
{
	const fs_table *t = fs_schema__table(&r->schema, tbl);
	sqlite3_stmt *st = NULL, *rm = NULL;
	char *cur = NULL;
	int rc;

	*out = NULL;
	if (fs_replica__prepare(&st, r,
	        "SELECT col FROM fs_clock WHERE tbl = ? AND rid = ? AND "
	        "col NOT IN ('', '*') AND seq > ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char path[160];
		snprintf(path, sizeof(path), "$.\"%s\"",
		         (const char *)sqlite3_column_text(st, 0));
		if ((rc = link_unchanged(r, t, (const char *)sqlite3_column_text(
		                         st, 0), rid, json, path)) != 0) {
			if (rc < 0)
				break;
			rc = SQLITE_ROW;
			continue;
		}
		if (fs_replica__prepare(&rm, r, "SELECT json_remove(?, ?)") < 0) {
			rc = r->err.code;
			break;
		}
		sqlite3_bind_text(rm, 1, cur ? cur : json, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(rm, 2, path, -1, SQLITE_STATIC);
		if (sqlite3_step(rm) == SQLITE_ROW) {
			char *next = strdup((const char *)sqlite3_column_text(rm, 0));
			free(cur);
			cur = next;
		}
		fs_replica__finish(r, rm);
		rm = NULL;
		if (!cur) {
			rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
			break;
		}
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE) {
		free(cur);
		return rc < 0 ? rc : fs_err__sqlite(&r->err, r->db, rc, "pulling");
	}
	*out = cur;
	return 0;
}

/* Appends the rows of st (id, value[, hlc]) as op entries of table tbl,
** up to max entries in all; *more when there were more.  Returns the last
** sqlite3_step() code (SQLITE_ROW when it stopped full). */
static int snap_rows(fs_buf *entries, uint64_t *n, uint64_t max, int *more,
                     char last_tbl[64], char last_rid[64], sqlite3_stmt *st,
                     char op, const char *tbl)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_entry en;

		if (*n == max) {
			*more = 1;
			break;
		}
		memset(&en, 0, sizeof(en));
		en.op = op;
		en.tbl = tbl;
		en.rid = (const char *)sqlite3_column_text(st, 0);
		en.val = (const char *)sqlite3_column_text(st, 1);
		if (sqlite3_column_count(st) > 2)
			en.hlc = (uint64_t)sqlite3_column_int64(st, 2);
		if (sqlite3_column_count(st) > 4) {   /* record_sql(relay) */
			en.device = (const char *)sqlite3_column_text(st, 3);
			en.col = (const char *)sqlite3_column_text(st, 4);
		}
		fs_wr__entry(entries, &en);
		snprintf(last_tbl, 64, "%s", tbl);
		snprintf(last_rid, 64, "%s", en.rid);
		(*n)++;
	}
	return rc;
}

/* "SELECT id, json_object('f', "f", ...) FROM t": a record as an 'I'
** entry's value.  For a regional server (relay), also its creation
** version and its fields' versions ({field: [hlc, device]}), so that it
** merges later changes as head office does. */
static void record_sql(fs_buf *sql, const fs_table *t, int relay)
{
	size_t i;

	fs_buf_puts(sql, "SELECT id, json_object(");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(sql, "%s'%s', \"%s\"", i ? ", " : "",
		              t->cols[i].name, t->cols[i].name);
	fs_buf_puts(sql, ")");
	if (relay)
		fs_buf_printf(sql, ", (SELECT hlc FROM fs_clock k WHERE k.tbl = "
		              "'%s' AND k.rid = \"%s\".id AND k.col = ''), "
		              "(SELECT device FROM fs_clock k WHERE k.tbl = '%s' AND "
		              "k.rid = \"%s\".id AND k.col = ''), "
		              "(SELECT json_group_object(k.col, json_array(k.hlc, "
		              "k.device)) FROM fs_clock k WHERE k.tbl = '%s' AND "
		              "k.rid = \"%s\".id AND k.col NOT IN ('', '*'))",
		              t->name, t->name, t->name, t->name, t->name, t->name);
	fs_buf_printf(sql, " FROM \"%s\"", t->name);
}

/* A customer entered the puller's scope: the customer and everything
** hanging off it, as creations (a replica holding some of it already
** takes them field by field), and their conflicts. */
static int expand_move(fs_replica *r, fs_buf *entries, uint64_t *n,
                       const char *customer, int relay, int all)
{
	const fs_table *root = fs_schema__scope_root(&r->schema);
	fs_buf sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	char last_tbl[64], last_rid[64];
	size_t ti, k;
	int rc = SQLITE_DONE, more = 0;

	/* The move is old news if the customer has left the scope since (a
	** later move, read further on, says so): its records as they are now
	** belong to another department, and are not sent.  (A cursor is the
	** client's to choose: a pull from 0 replays every move.) */
	if (root && (rc = out_of_scope(r, all, root, customer, 1)) != 0)
		return rc < 0 ? rc : 0;
	rc = SQLITE_DONE;

	for (ti = 0; root && ti < r->schema.ntables; ti++) {
		const fs_table *t = &r->schema.tables[ti];

		for (k = 0; k < 2 && rc == SQLITE_DONE; k++) {
			fs_buf_clear(&sql);
			if (k == 0)
				record_sql(&sql, t, relay);
			else
				fs_buf_printf(&sql, "SELECT id, json_object("
				              CONFLICT_FIELDS_RESOLVED "), "
				              "max(winner_hlc, loser_hlc) FROM fs_conflict "
				              "WHERE tbl = '%s' AND rid IN (SELECT id FROM "
				              "\"%s\"", t->name, t->name);
			fs_buf_puts(&sql, " WHERE ");
			if (!fs_schema__hangs_sql(&sql, t, root, "id = ?1"))
				break;
			fs_buf_puts(&sql, k ? ") ORDER BY id" : " ORDER BY id");
			if (sql.failed) {
				fs_buf_free(&sql);
				return fs_err__set(&r->err, FS_ERROR, "out of memory");
			}
			if (fs_replica__prepare(&st, r, sql.ptr) < 0) {
				fs_buf_free(&sql);
				return r->err.code;
			}
			sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
			rc = snap_rows(entries, n, UINT64_MAX, &more, last_tbl, last_rid,
			               st, k ? 'C' : 'I', k ? "fs_conflict" : t->name);
			fs_replica__finish(r, st);
			st = NULL;
		}
		if (rc != SQLITE_DONE)
			break;
	}
	fs_buf_free(&sql);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading a moved customer");
	return 0;
}

int fs_store__pull(fs_replica *r, const fs_peer *p, uint64_t cursor,
                   uint64_t max, fs_buf *out)
{
	sqlite3_stmt *st = NULL;
	fs_buf entries = FS_BUF_INIT;
	uint64_t n = 0, last = cursor, rows = 0;
	int64_t below = 0;
	int rc, more = 0;

	if (max == 0 || max > 10000)
		max = 10000;
	if (fs_replica__prepare(&st, r,
	        "SELECT coalesce((SELECT v FROM fs_meta WHERE "
	        "k = 'compacted_below'), 0)") < 0)
		return r->err.code;
	if (sqlite3_step(st) == SQLITE_ROW)
		below = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	st = NULL;
	if ((int64_t)cursor + 1 < below && p->schema < 4)
		return fs_err__set(&r->err, FS_EVERSION, "the changes after %llu "
		                   "were compacted away: update the app, or "
		                   "initialise this replica again",
		                   (unsigned long long)cursor);
	if ((p->rescope || (int64_t)cursor + 1 < below) && p->schema >= 4) {
		/* The user's scope changed, or the log no longer holds what
		** follows the cursor (compacted): "drop what you hold and
		** bootstrap again" (snapshot flag 2, docs/protocol.md). */
		fs_buf_clear(out);
		fs_wr__uv(out, cursor);
		fs_wr__uv(out, 0);
		fs_wr__uv(out, 2);
		fs_wr__str(out, NULL);
		fs_wr__str(out, NULL);
		fs_wr__uv(out, 0);
		fs_wr__uv(out, 0);
		return out->failed ? fs_err__set(&r->err, FS_ERROR, "out of memory")
		                   : 0;
	}
	/* Only what is still current: an update superseded by a later one is
	** not sent (applying it would overwrite the newer value, and the
	** newer one may be the puller's own, which is not sent back).  The
	** log is scanned by seq; 'live' says whether a field update is still
	** its field's winner. */
	/* A scoped device reads its departments' entries (and reference
	** data's, scope '') through the index: the cost follows the scope's
	** changes, not the whole log's. */
	if (fs_replica__prepare(&st, r, p->all ?
	        "SELECT l.seq, l.tbl, l.rid, l.op, l.col, l.val, l.hlc, l.device, "
	        "l.author, (l.op <> 'U' OR l.seq = (SELECT c.seq FROM fs_clock c "
	        "WHERE c.tbl = l.tbl AND c.rid = l.rid AND c.col = l.col)), l.via "
	        "FROM fs_log l WHERE l.seq > ? ORDER BY l.seq LIMIT ?" :
	        "SELECT l.seq, l.tbl, l.rid, l.op, l.col, l.val, l.hlc, l.device, "
	        "l.author, (l.op <> 'U' OR l.seq = (SELECT c.seq FROM fs_clock c "
	        "WHERE c.tbl = l.tbl AND c.rid = l.rid AND c.col = l.col)), l.via "
	        "FROM fs_log l INDEXED BY fs_log_scope WHERE l.seq > ?1 AND "
	        "l.scope IN (SELECT code FROM temp.fs_scope) "
	        "ORDER BY l.seq LIMIT ?2") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, (int64_t)cursor);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_entry en;
		const char *dev = (const char *)sqlite3_column_text(st, 7), *via;
		char *val = NULL, *key = NULL;

		rows++;
		last = (uint64_t)sqlite3_column_int64(st, 0);
		memset(&en, 0, sizeof(en));
		en.op = ((const char *)sqlite3_column_text(st, 3))[0];
		/* A device does not need its own changes back (conflict and
		** resolution announcements it does), nor superseded updates. */
		via = (const char *)sqlite3_column_text(st, 10);
		/* ...unless it comes back from head office (a regional
		** server's): a customer that moved away and back, say. */
		if ((!strcmp(dev, p->device) && en.op != 'C' &&
		     !(via && !strcmp(via, "^"))) || !sqlite3_column_int(st, 9))
			continue;
		/* A regional server is not sent back what it relayed; a write
		** passed on to head office unmerged is for head office only. */
		if ((p->relay && via && !strcmp(via, p->device)) ||
		    (via && !strcmp(via, ">")))
			continue;
		if (en.op == 'X' || en.op == 'M') {
			/* A customer changed department: only replicas that saw one
			** side and not the other care (col: the other side). */
			const char *other = (const char *)sqlite3_column_text(st, 4);
			/* An 'X' without one: the record left this server's
			** holdings (a regional server's), for everyone. */
			rc = other || en.op == 'M'
			     ? fs_policy__in_scope(r, p->all, other) : 0;
			if (rc == 0 && en.op == 'X' && p->schema >= 4) {
				en.seq = last;
				en.tbl = (const char *)sqlite3_column_text(st, 1);
				en.rid = (const char *)sqlite3_column_text(st, 2);
				en.hlc = (uint64_t)sqlite3_column_int64(st, 6);
				en.device = "";
				fs_wr__entry(&entries, &en);
				n++;
			} else if (rc == 0 && en.op == 'M') {
				rc = expand_move(r, &entries, &n,
				                 (const char *)sqlite3_column_text(st, 2),
				                 p->relay, p->all);
			}
			if (rc < 0) {
				fs_replica__finish(r, st);
				fs_buf_free(&entries);
				return rc;
			}
			rc = SQLITE_ROW;
			continue;
		}
		en.seq = last;
		en.tbl = (const char *)sqlite3_column_text(st, 1);
		en.rid = (const char *)sqlite3_column_text(st, 2);
		en.col = (const char *)sqlite3_column_text(st, 4);
		en.val = (const char *)sqlite3_column_text(st, 5);
		en.hlc = (uint64_t)sqlite3_column_int64(st, 6);
		en.device = dev;
		en.author = (const char *)sqlite3_column_text(st, 8);
		if (en.op == 'R' && p->relay &&
		    (rc = text_row(&key, r, "SELECT " CONFLICT_KEY " FROM "
		                   "fs_conflict WHERE id = ?1", en.rid, NULL,
		                   "reading a conflict")) < 0) {
			fs_replica__finish(r, st);
			fs_buf_free(&entries);
			return rc;
		}
		if (en.op == 'R' && p->relay)
			en.col = key;   /* between servers: by natural key */
		if (en.op == 'I') {
			/* A creation carries every field; leave out those updated
			** since, which follow (or are the puller's own). */
			if ((rc = strip_superseded(&val, r, en.tbl, en.rid, en.val,
			                           (int64_t)last)) < 0) {
				fs_replica__finish(r, st);
				fs_buf_free(&entries);
				return rc;
			}
			if (val)
				en.val = val;
		}
		fs_wr__entry(&entries, &en);
		free(val);
		free(key);
		key = NULL;
		n++;
		if (entries.len > FS_FRAME_RAW_MAX / 4) {
			more = 1;
			break;
		}
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		fs_buf_free(&entries);
		return fs_err__sqlite(&r->err, r->db, rc, "reading the change log");
	}
	if (rows == max)
		more = 1;
	fs_buf_clear(out);
	fs_wr__uv(out, last);
	fs_wr__uv(out, (uint64_t)more);
	fs_wr__uv(out, 0);          /* not a snapshot */
	fs_wr__str(out, NULL);
	fs_wr__str(out, NULL);
	fs_wr__uv(out, 0);
	fs_wr__uv(out, n);
	if (entries.len)
		fs_buf_put(out, entries.ptr, entries.len);
	fs_buf_free(&entries);
	if (out->failed || entries.failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	return 0;
}

int fs_store__snapshot(fs_replica *r, fs_peer *p, const char *tbl,
                       const char *rid, uint64_t snap_seq, uint64_t max,
                       fs_buf *out)
{
	fs_buf entries = FS_BUF_INIT, sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	size_t ti;
	int rc, more = 0, started = 0;
	char last_tbl[64] = "", last_rid[64] = "";

	if (max == 0 || max > 20000)
		max = 20000;
	if (p->rescope && snap_seq == 0 && (!tbl || !*tbl)) {
		/* The new snapshot the scope change asked for has started. */
		if (fs_replica__prepare(&st, r,
		        "UPDATE fs_device SET rescope = 0 WHERE id = ?") < 0)
			return r->err.code;
		sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(r, st, "clearing a scope change");
		fs_replica__finish(r, st);
		st = NULL;
		if (rc < 0)
			return rc;
		p->rescope = 0;
	}
	if ((rc = fs_replica__exec(r, "BEGIN", "starting a snapshot")) < 0)
		return rc;
	if (snap_seq == 0) {
		if (fs_replica__prepare(&st, r,
		        "SELECT coalesce(max(seq), 0) FROM fs_log") < 0)
			goto fail;
		if (sqlite3_step(st) == SQLITE_ROW)
			snap_seq = (uint64_t)sqlite3_column_int64(st, 0);
		fs_replica__finish(r, st);
		st = NULL;
	}
	/* Tables in fs_entity order (parents first), records in id order. */
	for (ti = 0; ti < r->schema.ntables && !more; ti++) {
		const fs_table *t = &r->schema.tables[ti];

		if (!started) {
			if (tbl && *tbl && strcmp(tbl, t->name))
				continue;
			started = 1;
		} else {
			rid = NULL;
		}
		fs_buf_clear(&sql);
		record_sql(&sql, t, p->relay);
		fs_buf_puts(&sql, " WHERE ");
		if (!p->all && fs_schema__in_scope_sql(&sql, &r->schema, t))
			fs_buf_puts(&sql, " AND ");
		fs_buf_puts(&sql, "id > ?1 ORDER BY id LIMIT ?2");
		if (sql.failed) {
			fs_err__set(&r->err, FS_ERROR, "out of memory");
			goto fail;
		}
		if (fs_replica__prepare(&st, r, sql.ptr) < 0)
			goto fail;
		sqlite3_bind_text(st, 1, rid ? rid : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)(max - n + 1));
		rc = snap_rows(&entries, &n, max, &more, last_tbl, last_rid, st,
		               'I', t->name);
		fs_replica__finish(r, st);
		st = NULL;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			fs_err__sqlite(&r->err, r->db, rc, "reading a snapshot");
			goto fail;
		}
	}
	/* Then the conflicts, which live in the log only as C entries: a
	** replica bootstrapping after they were recorded lists them too
	** (resolved ones with their resolution).  Position: table
	** "fs_conflict", record = the last conflict id sent. */
	if (!more) {
		int64_t after = 0;
		if (tbl && !strcmp(tbl, "fs_conflict") && rid)
			after = strtoll(rid, NULL, 10);
		if (fs_replica__prepare(&st, r,
		        "SELECT id, json_object(" CONFLICT_FIELDS_RESOLVED "), "
		        "max(winner_hlc, loser_hlc) "
		        "FROM fs_conflict WHERE id > ?1 AND (?3 OR scope IN "
		        "(SELECT code FROM temp.fs_scope)) ORDER BY id LIMIT ?2") < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, after);
		sqlite3_bind_int64(st, 2, (int64_t)(max - n + 1));
		sqlite3_bind_int(st, 3, p->all);
		rc = snap_rows(&entries, &n, max, &more, last_tbl, last_rid, st,
		               'C', "fs_conflict");
		fs_replica__finish(r, st);
		st = NULL;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			fs_err__sqlite(&r->err, r->db, rc, "reading conflicts");
			goto fail;
		}
	}
	fs_replica__exec(r, "COMMIT", "ending a snapshot");
	fs_buf_clear(out);
	fs_wr__uv(out, snap_seq);
	fs_wr__uv(out, (uint64_t)more);
	fs_wr__uv(out, 1);
	fs_wr__str(out, more ? last_tbl : NULL);
	fs_wr__str(out, more ? last_rid : NULL);
	fs_wr__uv(out, snap_seq);
	fs_wr__uv(out, n);
	if (entries.len)
		fs_buf_put(out, entries.ptr, entries.len);
	fs_buf_free(&entries);
	fs_buf_free(&sql);
	if (out->failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	return 0;
fail:
	fs_replica__finish(r, st);
	{
		fs_err keep = r->err;
		fs_replica__exec(r, "ROLLBACK", "ending a snapshot");
		r->err = keep;
	}
	fs_buf_free(&entries);
	fs_buf_free(&sql);
	return r->err.code ? r->err.code : FS_ERROR;
}

int fs_store__seen(fs_replica *r, const fs_peer *p, uint64_t cursor)
{
	sqlite3_stmt *st = NULL;
	char now[24];
	int rc;

	fs_replica__now(now);
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_device SET last_seen = ?, cursor = max(cursor, ?) "
	        "WHERE id = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)cursor);
	sqlite3_bind_text(st, 3, p->device, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording a device's visit");
	fs_replica__finish(r, st);
	return rc;
}

uint64_t fs_store__max_hlc(fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	uint64_t v = 0;

	if (fs_replica__prepare(&st, r,
	        "SELECT coalesce((SELECT v FROM fs_meta WHERE k = 'hlc'), 0)") == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	return v;
}
