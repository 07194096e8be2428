/*
** logq.c -- the server's queued change log rows (server/logq.h): rows
** queued in a transaction reach fs_log in order, at the positions they
** were given, with their NULLs, copied when queued; the queue writes
** itself when full (64 rows) and what is left at fs_logq__flush(); a
** failed write is reported and leaves the queue empty.
*/
#include "../sync/check.h"
#include "logq.h"
#include "srv.h"

#define NROWS 150   /* two full groups, then 22 rows: 8 + 8 + 6 x 1 */

/* Row k as queued: every optional field NULL in some rows. */
static void row_of(fs_logq_row *row, int k, char *rid, char *val, char *col)
{
	snprintf(rid, 64, "01900000-0000-7000-8000-%012d", k);
	snprintf(val, 64, "{\"n\":%d}", k);
	snprintf(col, 64, "field%d", k);
	memset(row, 0, sizeof(*row));
	row->seq = 1000 + k;
	row->tbl = k % 2 ? "customer" : "contact";
	row->rid = rid;
	row->op = "IUD"[k % 3];
	row->col = k % 2 ? col : NULL;
	row->val = k % 3 ? val : NULL;
	row->hlc = (int64_t)k << 16;
	row->device = "dev-a";
	row->author = "alice";
	row->scope = k % 5 ? "east" : NULL;
	row->via = k % 7 ? NULL : "^";
	row->up = k % 4 ? -1 : k;
}

/* Row k as fs_log holds it equals row_of(k). */
static int row_matches(fs_replica *r, int k)
{
	char rid[64], val[64], col[64], sql[512], want[512];
	const unsigned char *got;
	sqlite3_stmt *st = NULL;
	fs_logq_row row;
	int ok = 0;

	row_of(&row, k, rid, val, col);
	snprintf(want, sizeof(want), "%s|%s|%c|%s|%s|%lld|%s|%s|%s|%s|%s",
	         row.tbl, row.rid, row.op, row.col ? row.col : "-",
	         row.val ? row.val : "-", (long long)row.hlc, row.device,
	         row.author, row.scope ? row.scope : "-", row.via ? row.via : "-",
	         row.up < 0 ? "-" : "up");
	snprintf(sql, sizeof(sql),
	         "SELECT tbl || '|' || rid || '|' || op || '|' || "
	         "coalesce(col, '-') || '|' || coalesce(val, '-') || '|' || hlc "
	         "|| '|' || device || '|' || author || '|' || "
	         "coalesce(scope, '-') || '|' || coalesce(via, '-') || '|' || "
	         "CASE WHEN up IS NULL THEN '-' WHEN up = %d THEN 'up' ELSE "
	         "'wrong' END FROM fs_log WHERE seq = %d", k, 1000 + k);
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    (got = sqlite3_column_text(st, 0)) != NULL) {
		ok = !strcmp((const char *)got, want);
		if (!ok)
			fprintf(stderr, "row %d:\n  got:  %s\n  want: %s\n", k,
			        (const char *)got, want);
	}
	sqlite3_finalize(st);
	return ok;
}

int main(void)
{
	char path[300], rid[64], val[64], col[64];
	fs_logq q = FS_LOGQ_INIT;
	fs_logq_row row;
	fs_replica *r = srv_open(path, sizeof(path), "logq");
	int k, bad = 0;

	CHECK(fs_replica__exec(r, "BEGIN IMMEDIATE", "begin") == 0);
	for (k = 0; k < NROWS; k++) {
		row_of(&row, k, rid, val, col);
		CHECK(fs_logq__add(&q, r, &row) == 0);
		/* The caller's strings may change at once: the queue copied. */
		memset(rid, 'x', 10);
		memset(val, 'x', 5);
		/* Full groups are written as the queue fills, no sooner. */
		if (k == 63)
			CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == 0);
		if (k == 64)
			CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == 64);
	}
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == 128);
	CHECK(fs_logq__flush(&q, r) == 0);
	CHECK(q.n == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == NROWS);
	CHECK(srv_int(r, "SELECT min(seq) FROM fs_log") == 1000);
	CHECK(srv_int(r, "SELECT max(seq) FROM fs_log") == 1000 + NROWS - 1);
	for (k = 0; k < NROWS; k++)
		bad += !row_matches(r, k);
	CHECK(bad == 0);
	CHECK(fs_logq__flush(&q, r) == 0);   /* nothing queued: nothing done */
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == NROWS);

	/* A row that cannot be written (its position is taken) fails the
	** flush with a message, and the queue is left empty. */
	row_of(&row, 3, rid, val, col);
	CHECK(fs_logq__add(&q, r, &row) == 0);
	CHECK(fs_logq__flush(&q, r) < 0);
	CHECK(strstr(fs_replica_errmsg(r), "writing the change log") != NULL);
	CHECK(q.n == 0);
	CHECK(fs_replica__exec(r, "COMMIT", "commit") == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == NROWS);

	/* Rows dropped with the transaction are gone for good. */
	CHECK(fs_replica__exec(r, "BEGIN IMMEDIATE", "begin") == 0);
	row_of(&row, NROWS, rid, val, col);
	CHECK(fs_logq__add(&q, r, &row) == 0);
	fs_logq__free(&q);
	CHECK(fs_replica__exec(r, "ROLLBACK", "rollback") == 0);
	CHECK(fs_logq__flush(&q, r) == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log") == NROWS);

	fs_logq__free(&q);
	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
