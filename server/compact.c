/*
** compact.c -- purging history the ledger holds (compact.h).
**
** The horizon H is the first log position kept.  Everything below it was
** logged at least older_than ago (H is the first entry whose clock is
** recent: log order is not clock order, so only a prefix of the log that
** is old throughout qualifies), has been pulled by every active device,
** and is in the ledger; the last entry always stays, so log positions are
** never reused.  Below H go: log entries (superseded field versions and
** the winners alike: fs_clock keeps every winner's version), the clocks of
** records deleted below H (their tombstones), recorded moves and old batch
** records.  fs_meta 'compacted_below' tells the pull which cursors can no
** longer be served from the log.
*/
#include "compact.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../client/replica_int.h"
#include "store.h"
#include "value.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One integer from sql with up to two integer parameters. */
static int query_int(int64_t *out, fs_replica *r, const char *sql,
                     int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "compacting");
	return 0;
}

static int exec_int(int64_t *changed, fs_replica *r, const char *sql,
                    int64_t a)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, a);
	rc = fs_replica__step_done(r, st, "compacting");
	fs_replica__finish(r, st);
	if (rc == 0 && changed)
		*changed = sqlite3_changes(r->db);
	return rc;
}

/* The horizon set by active devices: the lowest cursor + 1. */
static int device_limit(int64_t *h, char *why, size_t size, fs_replica *r,
                        int64_t active_since_ms)
{
	sqlite3_stmt *st = NULL;
	char since[24];
	int rc;

	fs_value__format_time(since, (uint64_t)active_since_ms);
	if (fs_replica__prepare(&st, r,
	        "SELECT id, user, cursor FROM fs_device WHERE revoked_at IS NULL "
	        "AND last_seen >= ? ORDER BY cursor LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*h = sqlite3_column_int64(st, 2) + 1;
		snprintf(why, size, "device %s (%s) has pulled up to %lld",
		         (const char *)sqlite3_column_text(st, 0),
		         (const char *)sqlite3_column_text(st, 1),
		         (long long)(*h - 1));
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading devices");
	return 0;
}

int fs_compact(fs_replica *r, const fs_compact_options *o,
               fs_compact_result *out)
{
	int64_t now = now_ms(), h, t, d = INT64_MAX;
	char dwhy[200] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = fs_replica__exec(r, "BEGIN IMMEDIATE", "compacting")) < 0)
		return rc;
	if ((rc = query_int(&out->log_end, r,
	        "SELECT coalesce(max(seq), 0) FROM fs_log", 0, 0)) < 0)
		goto fail;
	/* The last entry stays: committed positions are never reused. */
	h = out->log_end;
	snprintf(out->limit, sizeof(out->limit), "the last log entry is kept");
	/* Old throughout: below the first entry whose clock is recent. */
	if ((rc = query_int(&t, r,
	        "SELECT coalesce(min(seq), ?2) FROM fs_log WHERE hlc >= ?1",
	        (now - o->older_than_ms) * 65536, out->log_end + 1)) < 0)
		goto fail;
	if (t < h) {
		h = t;
		snprintf(out->limit, sizeof(out->limit), "entries from seq %lld on "
		         "are younger than the horizon", (long long)t);
	}
	if (!o->force) {
		if ((rc = device_limit(&d, dwhy, sizeof(dwhy), r,
		                       now - o->active_ms)) < 0)
			goto fail;
		if (d < h) {
			h = d;
			snprintf(out->limit, sizeof(out->limit), "%s", dwhy);
		}
	}
	/* A regional server keeps what head office does not have yet, even
	** with --force: it is nowhere else (docs/tiers.md). */
	if ((rc = query_int(&t, r, "SELECT coalesce(min(l.seq), ?1) FROM "
	                    "fs_upstream u JOIN fs_log l ON l.seq > u.pushed "
	                    "WHERE " FS_STORE_RELAYED, INT64_MAX,
	                    0)) < 0)
		goto fail;
	if (t < h) {
		h = t;
		snprintf(out->limit, sizeof(out->limit), "head office does not "
		         "have this server's changes from %lld on yet",
		         (long long)t);
	}
	if (o->ledger_mark >= 0 && o->ledger_mark + 1 < h) {
		h = o->ledger_mark + 1;
		snprintf(out->limit, sizeof(out->limit), "the ledger holds the log "
		         "up to %lld", (long long)o->ledger_mark);
	}
	out->horizon = h;
	if ((rc = query_int(&out->log_rows, r,
	        "SELECT count(*) FROM fs_log WHERE seq < ?1", h, 0)) < 0 ||
	    (rc = query_int(&out->tombstones, r,
	        "SELECT count(*) FROM fs_clock WHERE col = '*' AND seq < ?1",
	        h, 0)) < 0 ||
	    (rc = query_int(&out->clock_rows, r,
	        "SELECT count(*) FROM fs_clock WHERE (tbl, rid) IN (SELECT tbl, "
	        "rid FROM fs_clock WHERE col = '*' AND seq < ?1)", h, 0)) < 0 ||
	    (rc = query_int(&out->moves, r,
	        "SELECT count(*) FROM fs_move WHERE seq < ?1", h, 0)) < 0)
		goto fail;
	if (o->dry_run) {
		fs_replica__exec(r, "ROLLBACK", "compacting");
		return 0;
	}
	/* The latest tombstone purged: a record created after it cannot have
	** been (head office refuses a link to an id it never held, but takes
	** one to a record it may have purged: store.c, apply.c held()). */
	if ((rc = exec_int(NULL, r,
	        "INSERT INTO fs_meta(k, v) VALUES ('purged_hlc', coalesce((SELECT "
	        "max(hlc) FROM fs_clock WHERE col = '*' AND seq < ?1), 0)) "
	        "ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)", h)) < 0 ||
	    (rc = exec_int(NULL, r,
	        "DELETE FROM fs_clock WHERE (tbl, rid) IN (SELECT tbl, rid FROM "
	        "fs_clock WHERE col = '*' AND seq < ?1)", h)) < 0 ||
	    (rc = exec_int(NULL, r, "DELETE FROM fs_log WHERE seq < ?1", h)) < 0 ||
	    (rc = exec_int(NULL, r, "DELETE FROM fs_move WHERE seq < ?1", h)) < 0)
		goto fail;
	{
		char before[24];
		sqlite3_stmt *st = NULL;
		fs_value__format_time(before, (uint64_t)(now - o->older_than_ms));
		if (fs_replica__prepare(&st, r,
		        "DELETE FROM fs_batch WHERE received_at < ?") < 0) {
			rc = r->err.code;
			goto fail;
		}
		sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(r, st, "compacting");
		fs_replica__finish(r, st);
		if (rc < 0)
			goto fail;
		out->batches = sqlite3_changes(r->db);
	}
	if ((rc = exec_int(NULL, r,
	        "INSERT INTO fs_meta(k, v) VALUES ('compacted_below', ?1) "
	        "ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)", h)) < 0)
		goto fail;
	return fs_replica__exec(r, "COMMIT", "compacting");
fail:
	{
		fs_err keep = r->err;
		fs_replica__exec(r, "ROLLBACK", "compacting");
		r->err = keep;
	}
	return rc;
}
