/*
** ack.c -- the corrections of a push's ACK (server/store.c, correct()):
** an entry that loses is answered with the field's winner as the whole
** batch leaves it.  A later entry of the same batch that wins the field
** again must not be undone on the replica by the correction of an
** earlier one (the replica is never sent its own changes back, so it
** would keep the stale value: found by test_converge, seeds 11,29,9701).
*/
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../sync/check.h"
#include "fieldsync.h"
#include "policy.h"
#include "replica_int.h"
#include "store.h"
#include "wire.h"

#define R "01900000-0000-7000-8000-0000000000aa"

/* One entry of the batch being built. */
static void entry(fs_buf *b, char op, const char *col, const char *val,
                  uint64_t hlc, uint64_t base)
{
	fs_entry en;

	memset(&en, 0, sizeof(en));
	en.op = op;
	en.tbl = "customer";
	en.rid = R;
	en.col = col;
	en.val = val;
	en.hlc = hlc << 16;
	en.seq = base;
	fs_wr__entry(b, &en);
}

/* Pushes count entries of body for peer p; *ncorr and the value each
** correction gives col (the last one; "" if none). */
static int push(fs_replica *r, const fs_peer *p, const char *id,
                uint64_t count, const fs_buf *body, const char *col,
                char *corr_val, size_t size, uint64_t *ncorr)
{
	fs_buf b = FS_BUF_INIT, ack = FS_BUF_INIT;
	uint64_t applied, conflicts, nrej, i, n;
	const char *batch, *why;
	fs_rd rd;
	int rc;

	corr_val[0] = '\0';
	*ncorr = 0;
	fs_wr__str(&b, id);
	fs_wr__uv(&b, count);
	fs_buf_put(&b, body->ptr, body->len);
	fs_rd__init(&rd, &b);
	fs_rd__str(&rd, &batch, &r->err);
	fs_rd__uv(&rd, &n, &r->err);
	rc = fs_store__push(r, p, batch, &rd, n, &ack);
	if (rc == 0) {
		fs_rd__init(&rd, &ack);
		fs_rd__str(&rd, &batch, &r->err);
		fs_rd__uv(&rd, &applied, &r->err);
		fs_rd__uv(&rd, &conflicts, &r->err);
		fs_rd__uv(&rd, &nrej, &r->err);
		for (i = 0; i < nrej; i++) {
			uint64_t idx;
			fs_rd__uv(&rd, &idx, &r->err);
			fs_rd__str(&rd, &why, &r->err);
		}
		fs_rd__uv(&rd, ncorr, &r->err);
		for (i = 0; i < *ncorr; i++) {
			fs_entry en;
			if (fs_rd__entry(&rd, &en, &r->err) < 0) {
				rc = -1;
				break;
			}
			if (en.op == 'U' && en.col && !strcmp(en.col, col))
				snprintf(corr_val, size, "%s", en.val ? en.val : "null");
		}
	}
	fs_buf_free(&b);
	fs_buf_free(&ack);
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

static void peer_init(fs_peer *p, const char *device)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->device, sizeof(p->device), "%s", device);
	snprintf(p->user, sizeof(p->user), "olga");
	snprintf(p->role, sizeof(p->role), "office");
	p->schema = fs_schema__latest();
}

int main(void)
{
	char path[300], got[200];
	const char *tmp = getenv("TMPDIR");
	fs_buf body = FS_BUF_INIT;
	fs_replica *r = NULL;
	fs_peer a, b;
	uint64_t ncorr;

	snprintf(path, sizeof(path), "%s/fs_ack_%d.db", tmp ? tmp : "/tmp",
	         (int)getpid());
	unlink(path);
	if (fs_replica__open_server(&r, path, 1) < 0) {
		fprintf(stderr, "open %s: %s\n", path, fs_replica_errmsg(r));
		return 1;
	}
	peer_init(&a, "dev-a");
	peer_init(&b, "dev-b");
	CHECK(fs_replica__exec(r,
	        "INSERT INTO fs_user(name, role, region, created_at) VALUES "
	        "('olga', 'office', '*', '2026-01-01T00:00:00Z'); "
	        "INSERT INTO fs_user_scope(user, dept) VALUES ('olga', '*')",
	        "adding a user") == 0);
	CHECK(fs_policy__load_scope(r, a.user, &a.all) == 0);
	b.all = a.all;

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

	fs_buf_free(&body);
	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
