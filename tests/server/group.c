/*
** group.c -- new records' INSERTs wait in group inserts during a push
** (client/apply.c, server/store.c): whatever reads a record afterwards in
** the same batch -- a link to it, an edit of it, the same creation again
** -- sees it; a record the database refuses in a group is refused alone,
** with its log entry and creation clock taken back, and the others go
** in; a batch that fails leaves nothing waiting for the next one.
*/
#include "../sync/check.h"
#include "srv.h"

#define ID(n) "01900000-0000-7000-8000-0000000000" n
#define A ID("0a")
#define B ID("0b")
#define C ID("0c")
#define C2 ID("c2")
#define D ID("0d")
#define E ID("0e")
#define F ID("0f")
#define G ID("01")

static uint64_t clock_now = 1;

/* A customer's creation, at the next clock or at hlc. */
static void customer_at(fs_buf *b, const char *id, const char *name,
                        const char *level, uint64_t hlc)
{
	char json[300];
	fs_entry en;

	snprintf(json, sizeof(json), "{\"name\":\"%s\",\"level\":\"%s\","
	         "\"region\":\"east\",\"created_at\":\"2026-11-27T10:00:00Z\"}",
	         name, level);
	memset(&en, 0, sizeof(en));
	en.op = 'I';
	en.tbl = "customer";
	en.rid = id;
	en.val = json;
	en.hlc = hlc ? hlc : clock_now++ << 16;
	fs_wr__entry(b, &en);
}

static void customer(fs_buf *b, const char *id, const char *name,
                     const char *level)
{
	customer_at(b, id, name, level, 0);
}

static void contact(fs_buf *b, const char *id, const char *of)
{
	char json[300];
	fs_entry en;

	snprintf(json, sizeof(json), "{\"customer\":\"%s\",\"name\":\"Li Wei\","
	         "\"created_at\":\"2026-11-27T10:00:00Z\"}", of);
	memset(&en, 0, sizeof(en));
	en.op = 'I';
	en.tbl = "contact";
	en.rid = id;
	en.val = json;
	en.hlc = clock_now++ << 16;
	fs_wr__entry(b, &en);
}

/* Pushes count entries of body: fs_store__push()'s result, the ACK's
** applied count and its rejected indexes. */
static int push(fs_replica *r, const fs_peer *p, const char *id,
                uint64_t count, const fs_buf *body, uint64_t *applied,
                int64_t *rejected)
{
	srv_ack a;
	int rc = srv_push(r, p, id, count, body, &a);

	*applied = a.applied;
	memcpy(rejected, a.rej, sizeof(a.rej));
	srv_ack_free(&a);
	return rc;
}

static int has(fs_replica *r, const char *tbl, const char *id)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE id = '%s'",
	         tbl, id);
	return srv_int(r, sql) == 1;
}

/* Log entries and creation clocks of record id. */
static long long traces(fs_replica *r, const char *id)
{
	char sql[300];

	snprintf(sql, sizeof(sql), "SELECT (SELECT count(*) FROM fs_log WHERE "
	         "rid = '%s') + (SELECT count(*) FROM fs_clock WHERE rid = '%s')",
	         id, id);
	return srv_int(r, sql);
}

int main(void)
{
	char path[300];
	fs_buf body = FS_BUF_INIT;
	fs_replica *r = srv_open(path, sizeof(path), "group");
	uint64_t applied = 0;
	int64_t rej[8];
	fs_peer peer;
	fs_entry en;

	srv_peer(r, &peer, "dev-1");

	/* 0 A; 1 B, refused by its level's CHECK (in a group); 2 a contact
	** of B, which reads B first; 3 a contact of A; 4 an edit of A; 5 D;
	** 6 an edit of D, still waiting; 7 A again; 8 E, refused by its
	** name's CHECK (the last group). */
	customer(&body, A, "Alpha", "A");
	customer(&body, B, "Beta", "Z");
	contact(&body, C2, B);
	contact(&body, C, A);
	memset(&en, 0, sizeof(en));
	en.op = 'U';
	en.tbl = "customer";
	en.rid = A;
	en.col = "phone";
	en.val = "\"+86 21 5555 0101\"";
	en.hlc = clock_now++ << 16;
	en.seq = 0;
	fs_wr__entry(&body, &en);
	customer(&body, D, "Delta", "B");
	en.rid = D;
	en.hlc = clock_now++ << 16;
	fs_wr__entry(&body, &en);
	customer_at(&body, A, "Alpha", "A", 1 << 16);   /* as it was */
	customer(&body, E, " ", "C");
	CHECK(!body.failed);
	CHECK(push(r, &peer, "b1", 9, &body, &applied, rej) == 0);
	CHECK(applied == 5);
	CHECK(rej[0] == 1);
	CHECK(rej[1] == 2);
	CHECK(rej[2] == 8);
	CHECK(rej[3] == -1);
	CHECK(has(r, "customer", A));
	CHECK(has(r, "customer", D));
	CHECK(has(r, "contact", C));
	CHECK(!has(r, "customer", B));
	CHECK(!has(r, "contact", C2));
	CHECK(!has(r, "customer", E));
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE phone = "
	              "'+86 21 5555 0101' AND id = '" A "'") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE phone = "
	              "'+86 21 5555 0101' AND id = '" D "'") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_log WHERE op IN ('I', 'U')")
	      == 5);
	CHECK(traces(r, B) == 0);
	CHECK(traces(r, C2) == 0);
	CHECK(traces(r, E) == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_clock WHERE rid = '" A "'")
	      == 2);

	/* B, fixed, is new again; created again, later, with another name
	** (two devices made the same id?), it is merged field by field into
	** the record still waiting in its group. */
	fs_buf_clear(&body);
	customer_at(&body, B, "Beta", "B", 100 << 16);
	customer_at(&body, B, "Beta Two", "B", 101 << 16);
	CHECK(push(r, &peer, "b2", 2, &body, &applied, rej) == 0);
	CHECK(rej[0] == -1);
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE id = '" B "' "
	              "AND name = 'Beta Two'") == 1);

	/* A batch cut short (two entries announced, one sent) fails whole:
	** F, waiting in a group, must not reach the next batch. */
	fs_buf_clear(&body);
	customer(&body, F, "Foxtrot", "A");
	CHECK(push(r, &peer, "b3", 2, &body, &applied, rej) < 0);
	fs_err__clear(&r->err);
	fs_buf_clear(&body);
	customer(&body, G, "Golf", "A");
	CHECK(push(r, &peer, "b4", 1, &body, &applied, rej) == 0);
	CHECK(applied == 1);
	CHECK(has(r, "customer", G));
	CHECK(!has(r, "customer", F));
	CHECK(traces(r, F) == 0);

	/* More creations than a group holds, one refused in the middle. */
	{
		int k, bad = 0;
		fs_buf_clear(&body);
		for (k = 0; k < 150; k++) {
			char id[40];
			snprintf(id, sizeof(id), "01900000-0000-7000-8000-1%011d", k);
			customer(&body, id, k == 100 ? "" : "Bulk", "C");
		}
		CHECK(push(r, &peer, "b5", 150, &body, &applied, rej) == 0);
		CHECK(applied == 149);
		CHECK(rej[0] == 100 && rej[1] == -1);
		CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE name = "
		              "'Bulk'") == 149);
		CHECK(srv_int(r, "SELECT count(*) FROM fs_log l JOIN customer c "
		              "ON c.id = l.rid WHERE c.name = 'Bulk' AND "
		              "l.op = 'I'") == 149);
		bad = (int)srv_int(r, "SELECT count(*) FROM fs_log WHERE rid = "
		                   "'01900000-0000-7000-8000-100000000100'");
		CHECK(bad == 0);
	}

	/* A slot used again takes nothing of its last record: H1 has a
	** phone, I1 (next batch, the same slot, the second) has none. */
	fs_buf_clear(&body);
	customer(&body, ID("a0"), "Hotel Zero", "A");
	memset(&en, 0, sizeof(en));
	en.op = 'I';
	en.tbl = "customer";
	en.rid = ID("a1");
	en.val = "{\"name\":\"Hotel\",\"phone\":\"+86 21 1\",\"created_at\":"
	         "\"2026-11-27T10:00:00Z\"}";
	en.hlc = clock_now++ << 16;
	fs_wr__entry(&body, &en);
	CHECK(push(r, &peer, "b6", 2, &body, &applied, rej) == 0);
	fs_buf_clear(&body);
	customer(&body, ID("b0"), "India Zero", "A");
	customer(&body, ID("b1"), "India", "A");
	CHECK(push(r, &peer, "b7", 2, &body, &applied, rej) == 0);
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE id = '" ID("b1")
	              "' AND phone IS NULL") == 1);
	CHECK(srv_int(r, "SELECT count(*) FROM customer WHERE id = '" ID("a1")
	              "' AND phone = '+86 21 1'") == 1);

	fs_buf_free(&body);
	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
