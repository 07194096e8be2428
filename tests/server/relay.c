/*
** relay.c -- head office's ACK of a regional server's relayed batch
** (server/store.c, fs_store__relay_acked).  Head office's value of a field
** it refused replaces the value the regional server sent, whatever its
** version; but not a newer value a device wrote at the regional server
** while the batch was on its way (the wait is outside the write lock):
** that write goes up next and wins at head office, which never sends a
** relay its own changes back, so the regional server would keep head
** office's older value for good.
*/
#include "../sync/check.h"
#include "srv.h"

#define Y "01900000-0000-7000-8000-0000000000b2"
#define Z "01900000-0000-7000-8000-0000000000b3"
#define W "01900000-0000-7000-8000-0000000000b4"
#define V "01900000-0000-7000-8000-0000000000b5"

/* A device of the regional server, having seen all of its log, pushes
** one entry. */
static void push1(fs_replica *r, const fs_peer *p, const char *id,
                  const char *rid, char op, const char *col, const char *val,
                  uint64_t hlc)
{
	fs_buf body = FS_BUF_INIT;
	srv_ack a;

	srv_entry(&body, rid, op, col, val, hlc,
	          (uint64_t)srv_int(r, "SELECT coalesce(max(seq), 0) FROM fs_log"),
	          NULL);
	CHECK(srv_push(r, p, id, 1, &body, &a) == 0);
	CHECK(a.nrej == 0);
	srv_ack_free(&a);
	fs_buf_free(&body);
}

static void city_is(fs_replica *r, const char *rid, const char *want)
{
	char sql[200];
	sqlite3_stmt *st = NULL;
	const char *got = NULL;

	snprintf(sql, sizeof(sql), "SELECT city FROM customer WHERE id = '%s'",
	         rid);
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		got = (const char *)sqlite3_column_text(st, 0);
	CHECK_STR(got ? got : "(none)", want);
	sqlite3_finalize(st);
}

/* Relays A's delete of record rid, which head office refuses, correcting
** it with the record as it holds it (creation JSON json, clock 20). */
static void relay_refused_delete(fs_replica *r, int64_t *pushed,
                                 const char *rid, const char *json)
{
	fs_buf sent = FS_BUF_INIT, ack = FS_BUF_INIT;
	uint64_t n = 0, refused = 0;
	int64_t last = 0;
	fs_peer up;
	fs_rd rd;

	CHECK(fs_store__relay_batch(r, *pushed, 100, &sent, &n, &last) == 0);
	CHECK(n == 1);
	fs_wr__uv(&ack, 1);
	fs_wr__uv(&ack, 0);
	fs_wr__str(&ack, "customer: not yours to delete");
	fs_wr__uv(&ack, 1);
	srv_entry(&ack, rid, 'I', NULL, json, 20, 0, "dev-a");
	fs_rd__init(&rd, &ack);
	fs_store__upstream_peer(&up, fs_replica_schema_version(r));
	CHECK(fs_store__relay_acked(r, &up, &rd, &sent, n, last, &refused) == 0);
	CHECK(refused == 1);
	*pushed = last;
	fs_buf_free(&sent);
	fs_buf_free(&ack);
}

/* Relays everything not yet relayed, and answers it as head office
** would: the edit of record rid (if any) is refused, and corrected with
** city ho_city at clock ho_hlc. */
static void relay(fs_replica *r, int64_t *pushed, const char *rid,
                  const char *ho_city, uint64_t ho_hlc)
{
	fs_buf sent = FS_BUF_INIT, ack = FS_BUF_INIT;
	uint64_t n = 0, refused = 0, i, idx = UINT64_MAX;
	int64_t last = 0;
	fs_peer up;
	fs_entry en;
	fs_rd rd;

	CHECK(fs_store__relay_batch(r, *pushed, 100, &sent, &n, &last) == 0);
	fs_rd__init(&rd, &sent);
	for (i = 0; i < n; i++) {
		CHECK(fs_rd__entry(&rd, &en, &r->err) == 0);
		if (rid && en.op == 'U' && !strcmp(en.rid, rid))
			idx = i;
	}
	if (!rid) {
		fs_wr__uv(&ack, 0);
		fs_wr__uv(&ack, 0);
	} else {
		CHECK(idx != UINT64_MAX);
		fs_wr__uv(&ack, 1);
		fs_wr__uv(&ack, idx);
		fs_wr__str(&ack, "city: not yours to change");
		fs_wr__uv(&ack, 1);
		srv_entry(&ack, rid, 'U', "city", ho_city, ho_hlc, 0, "ho-device");
	}
	fs_rd__init(&rd, &ack);
	fs_store__upstream_peer(&up, fs_replica_schema_version(r));
	CHECK(fs_store__relay_acked(r, &up, &rd, &sent, n, last,
	                            &refused) == 0);
	CHECK(refused == (rid ? 1 : 0));
	*pushed = last;
	fs_buf_free(&sent);
	fs_buf_free(&ack);
}

int main(void)
{
	char path[300];
	fs_replica *r = srv_open(path, sizeof(path), "relay");
	fs_peer a, b;
	int64_t pushed = 0;

	/* A regional server: it has head office upstream. */
	CHECK(fs_replica__exec(r, "INSERT INTO fs_upstream(id, server, device, "
	                       "mode, bootstrapped) VALUES (1, '127.0.0.1:1', "
	                       "'rn-device', 'continuous', 1)", "upstream") == 0);
	srv_peer(r, &a, "dev-a");
	srv_peer(r, &b, "dev-b");
	push1(r, &a, "a2", Y, 'I', NULL, "{\"name\":\"Ypsilon\",\"region\":"
	      "\"east\",\"city\":\"c0\",\"created_at\":\"2026-11-27T10:00:00Z\"}",
	      1);
	push1(r, &a, "a2z", Z, 'I', NULL, "{\"name\":\"Zeta\",\"region\":"
	      "\"east\",\"city\":\"c0\",\"created_at\":\"2026-11-27T10:00:00Z\"}",
	      1);
	relay(r, &pushed, NULL, NULL, 0);   /* the creations went up */

	/* A's edit of Y goes up and is refused: head office's value (older)
	** replaces it. */
	push1(r, &a, "a3", Y, 'U', "city", "\"A-city\"", 5);
	relay(r, &pushed, Y, "\"HO-city\"", 3);
	city_is(r, Y, "HO-city");

	/* A's edits of Y and Z go up; while they are on their way, B sets
	** both cities again at the regional server (clocks 9 and 13).  Head
	** office refuses A's edit of Y and corrects it with its value (clock
	** 3): B's newer value stays, and goes up next.  It takes A's edit of
	** Z, which loses there to its own (clock 12): that correction is not
	** of a refused change, and merges by version as without the refusal
	** (B's value stays, head office's is kept as the loser of a
	** conflict). */
	push1(r, &a, "a4", Y, 'U', "city", "\"A-again\"", 7);
	push1(r, &a, "a4z", Z, 'U', "city", "\"A-z\"", 8);
	{
		fs_buf sent = FS_BUF_INIT, ack = FS_BUF_INIT;
		uint64_t n = 0, refused = 0;
		int64_t last = 0;
		fs_peer up;
		fs_rd rd;

		CHECK(fs_store__relay_batch(r, pushed, 100, &sent, &n, &last) == 0);
		CHECK(n == 2);
		push1(r, &b, "b1", Y, 'U', "city", "\"B-city\"", 9);
		push1(r, &b, "b1z", Z, 'U', "city", "\"B-z\"", 13);
		fs_wr__uv(&ack, 1);
		fs_wr__uv(&ack, 0);
		fs_wr__str(&ack, "city: not yours to change");
		fs_wr__uv(&ack, 2);
		srv_entry(&ack, Y, 'U', "city", "\"HO-city\"", 3, 0, "ho-device");
		srv_entry(&ack, Z, 'U', "city", "\"HO-z\"", 12, 0, "ho-device");
		fs_rd__init(&rd, &ack);
		fs_store__upstream_peer(&up, fs_replica_schema_version(r));
		CHECK(fs_store__relay_acked(r, &up, &rd, &sent, n, last,
		                            &refused) == 0);
		CHECK(refused == 1);
		pushed = last;
		fs_buf_free(&sent);
		fs_buf_free(&ack);
	}
	city_is(r, Y, "B-city");
	city_is(r, Z, "B-z");
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" Z
	              "' AND reason = 'concurrent edit' AND loser_value = "
	              "'\"HO-z\"'") == 1);
	/* B's edits are still to go up. */
	{
		fs_buf sent = FS_BUF_INIT;
		uint64_t n = 0;
		int64_t last = 0;
		fs_entry en;
		fs_rd rd;

		CHECK(fs_store__relay_batch(r, pushed, 100, &sent, &n, &last) == 0);
		CHECK(n == 2);
		fs_rd__init(&rd, &sent);
		CHECK(fs_rd__entry(&rd, &en, &r->err) == 0);
		CHECK_STR(en.val, "\"B-city\"");
		CHECK(fs_rd__entry(&rd, &en, &r->err) == 0);
		CHECK_STR(en.val, "\"B-z\"");
		fs_buf_free(&sent);
	}
	/* Both refusals are kept for review. */
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" Y
	              "' AND reason LIKE 'refused upstream:%'") == 2);

	/* A deletes W here; head office refuses the delete (say, the office
	** confirmed it there meanwhile) and corrects it with the record as it
	** holds it: W comes back here, with head office's values, logged as a
	** creation for this server's replicas; A's delete is kept for
	** review. */
	push1(r, &a, "a5", W, 'I', NULL, "{\"name\":\"Omega\",\"region\":"
	      "\"east\",\"city\":\"c0\",\"created_at\":\"2026-11-27T10:00:00Z\"}",
	      20);
	relay(r, &pushed, NULL, NULL, 0);
	push1(r, &a, "a6", W, 'D', NULL, NULL, 22);
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE id = '" W "'") == 0);
	relay_refused_delete(r, &pushed, W, "{\"name\":\"Omega\",\"region\":"
	                     "\"east\",\"city\":\"HO-w\",\"created_at\":"
	                     "\"2026-11-27T10:00:00Z\"}");
	city_is(r, W, "HO-w");
	CHECK(srv_int(r, "SELECT count(*) FROM fs_clock WHERE rid = '" W
	              "' AND col = '*'") == 0);
	CHECK(srv_int(r, "SELECT op = 'I' FROM fs_log WHERE rid = '" W
	              "' AND op IN ('I', 'D') ORDER BY seq DESC LIMIT 1") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" W
	              "'") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" W
	              "' AND reason LIKE 'refused upstream:%'") == 1);
	/* Nothing goes up again: the creation came from head office. */
	{
		fs_buf sent = FS_BUF_INIT;
		uint64_t n = 0;
		int64_t last = 0;

		CHECK(fs_store__relay_batch(r, pushed, 100, &sent, &n, &last) == 0);
		CHECK(n == 0);
		fs_buf_free(&sent);
	}

	/* The same, but this server's database refuses the record head
	** office sends (a blank name): it stays deleted, tombstone and all,
	** and head office's record is kept as the loser of a conflict. */
	push1(r, &a, "a7", V, 'I', NULL, "{\"name\":\"Nu\",\"region\":"
	      "\"east\",\"created_at\":\"2026-11-27T10:00:00Z\"}", 20);
	relay(r, &pushed, NULL, NULL, 0);
	push1(r, &a, "a8", V, 'D', NULL, NULL, 24);
	relay_refused_delete(r, &pushed, V, "{\"name\":\" \",\"region\":"
	                     "\"east\",\"created_at\":\"2026-11-27T10:00:00Z\"}");
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE id = '" V "'") == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_clock WHERE rid = '" V
	              "' AND col = '*'") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" V
	              "' AND reason = 'record deleted'") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" V
	              "' AND reason LIKE 'refused upstream:%'") == 1);

	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
