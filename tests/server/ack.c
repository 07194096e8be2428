/*
** ack.c -- the corrections of a push's ACK (server/store.c, correct()):
** an entry that loses is answered with the field's winner as the whole
** batch leaves it.  A later entry of the same batch that wins the field
** again must not be undone on the replica by the correction of an
** earlier one (the replica is never sent its own changes back, so it
** would keep the stale value: found by test_converge, seeds 11,29,9701).
*/
#include "../sync/check.h"
#include "srv.h"

#define R "01900000-0000-7000-8000-0000000000aa"

/* One entry of the batch being built (of record rid, R by default). */
static const char *rid = R;

static void entry(fs_buf *b, char op, const char *col, const char *val,
                  uint64_t hlc, uint64_t base)
{
	srv_entry(b, rid, op, col, val, hlc, base, NULL);
}

/* Pushes count entries of body for peer p: *ncorr, and the value the
** last correction of col gives ("" if none). */
static int push(fs_replica *r, const fs_peer *p, const char *id,
                uint64_t count, const fs_buf *body, const char *col,
                char *corr_val, size_t size, uint64_t *ncorr)
{
	srv_ack a;
	uint64_t i;
	int rc = srv_push(r, p, id, count, body, &a);

	corr_val[0] = '\0';
	*ncorr = a.ncorr;
	for (i = 0; i < a.ncorr && i < 16; i++)
		if (a.corr[i].op == 'U' && a.corr[i].col &&
		    !strcmp(a.corr[i].col, col))
			snprintf(corr_val, size, "%s",
			         a.corr[i].val ? a.corr[i].val : "null");
	srv_ack_free(&a);
	return rc;
}

static int field_is(fs_replica *r, const char *col, const char *want)
{
	char sql[200];
	sqlite3_stmt *st = NULL;
	int ok = 0;

	snprintf(sql, sizeof(sql), "SELECT %s FROM customer WHERE id = '" R "'",
	         col);
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		ok = !strcmp((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
	return ok;
}

int main(void)
{
	char path[300], got[200];
	fs_buf body = FS_BUF_INIT;
	fs_replica *r = srv_open(path, sizeof(path), "ack");
	fs_peer a, b;
	uint64_t ncorr;

	srv_peer(r, &a, "dev-a");
	srv_peer(r, &b, "dev-b");

	/* A creates the record (log position 1); both have seen it. */
	entry(&body, 'I', NULL, "{\"name\":\"Rho\",\"region\":\"east\","
	      "\"created_at\":\"2026-11-27T10:00:00Z\"}", 1, 0);
	CHECK(push(r, &a, "a1", 1, &body, "phone", got, sizeof(got),
	           &ncorr) == 0);
	/* B sets the phone at clock 3. */
	fs_buf_clear(&body);
	entry(&body, 'U', "phone", "\"B3\"", 3, 1);
	CHECK(push(r, &b, "b1", 1, &body, "phone", got, sizeof(got),
	           &ncorr) == 0);
	/* A, offline since the creation, set it at clock 2 and again at 4:
	** the first loses to B's, the second wins.  The replica keeps A4. */
	fs_buf_clear(&body);
	entry(&body, 'U', "phone", "\"A2\"", 2, 1);
	entry(&body, 'U', "phone", "\"A4\"", 4, 1);
	CHECK(push(r, &a, "a2", 2, &body, "phone", got, sizeof(got),
	           &ncorr) == 0);
	CHECK(field_is(r, "phone", "A4"));
	CHECK(strcmp(got, "\"B3\"") != 0);
	if (got[0])
		CHECK_STR(got, "\"A4\"");

	/* An entry that loses for good is still corrected: B's email at 10,
	** then A's at 9, made without seeing it. */
	fs_buf_clear(&body);
	entry(&body, 'U', "email", "\"b@example.cn\"", 10, 1);
	CHECK(push(r, &b, "b2", 1, &body, "email", got, sizeof(got),
	           &ncorr) == 0);
	fs_buf_clear(&body);
	entry(&body, 'U', "email", "\"a@example.cn\"", 9, 1);
	entry(&body, 'U', "notes", "\"seen\"", 11, 1);
	CHECK(push(r, &a, "a3", 2, &body, "email", got, sizeof(got),
	           &ncorr) == 0);
	CHECK_STR(got, "\"b@example.cn\"");
	CHECK(ncorr == 1);
	CHECK(field_is(r, "email", "b@example.cn"));

	/* The same field lost twice in a batch: corrected once. */
	fs_buf_clear(&body);
	entry(&body, 'U', "website", "\"b.example.cn\"", 30, 1);
	CHECK(push(r, &b, "b3", 1, &body, "website", got, sizeof(got),
	           &ncorr) == 0);
	fs_buf_clear(&body);
	entry(&body, 'U', "website", "\"a1.example.cn\"", 28, 1);
	entry(&body, 'U', "website", "\"a2.example.cn\"", 29, 1);
	CHECK(push(r, &a, "a4", 2, &body, "website", got, sizeof(got),
	           &ncorr) == 0);
	CHECK(ncorr == 1);
	CHECK_STR(got, "\"b.example.cn\"");

	/* Edits of a record deleted meanwhile: one tombstone answers all. */
	{
		srv_ack k;
		fs_buf_clear(&body);
		entry(&body, 'D', NULL, NULL, 40, 1);
		CHECK(push(r, &b, "b4", 1, &body, "phone", got, sizeof(got),
		           &ncorr) == 0);
		fs_buf_clear(&body);
		entry(&body, 'U', "phone", "\"A38\"", 38, 1);
		entry(&body, 'U', "email", "\"a38@example.cn\"", 39, 1);
		CHECK(srv_push(r, &a, "a5", 2, &body, &k) == 0);
		CHECK(k.ncorr == 1);
		CHECK(k.corr[0].op == 'D');
		srv_ack_free(&k);
	}

	fs_buf_free(&body);
	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
