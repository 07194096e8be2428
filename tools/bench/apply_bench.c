/*
** apply_bench.c -- server apply throughput versus raw SQLite.
**
** Builds N customer creations as the PUSH payloads a client sends
** (batches of 2000), applies them through the server's merge
** (fs_store__push: clocks, log, batch bookkeeping, one transaction per
** batch, synchronous=FULL), and compares with raw SQLite inserting the
** same rows in the same batches with a prepared statement on the same
** schema.  Then N single-field updates the same two ways.  7 rounds,
** each running both ways back to back (in alternating order); the
** result is the median of the rounds' ratios, with their range (this
** machine's I/O timing varies from round to round by tens of percent).
**
** usage: apply_bench [N] [DIR]      (default 20000, /tmp)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../client/replica_int.h"
#include "policy.h"
#include "schema.h"
#include "store.h"
#include "wire.h"

#define BATCH 2000
#define ROUNDS 7

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "apply_bench: %s: %s\n", what, msg);
	exit(1);
}

static void id_of(char *out, long i)
{
	snprintf(out, 40, "01900000-0000-7000-8000-%012ld", i % 1000000000000L);
}

static void json_of(char *out, size_t size, long i)
{
	snprintf(out, size,
	         "{\"code\":\"C%06ld\",\"name\":\"Customer %ld Trading Co.\","
	         "\"phone\":\"+86 21 %08ld\",\"email\":\"buyer%ld@example.cn\","
	         "\"credit_limit\":%ld,\"address\":\"%ld Nanjing Road\","
	         "\"city\":\"Shanghai\",\"level\":\"B\",\"status\":\"active\","
	         "\"region\":\"east\",\"created_at\":\"2026-11-22T09:00:00Z\"}",
	         i, i, i, i, (10000 + (i % 50) * 1000) * 100L, i % 900 + 1);
}

static void remove_db(const char *p)
{
	char w[600];

	unlink(p);
	snprintf(w, sizeof(w), "%s-wal", p);
	unlink(w);
	snprintf(w, sizeof(w), "%s-shm", p);
	unlink(w);
}

static void run_store(const char *path, long n, double *ins, double *upd)
{
	fs_replica *r = NULL;
	fs_peer peer;
	fs_buf payload = FS_BUF_INIT, ack = FS_BUF_INIT;
	double t0;
	long i, j;
	int phase;

	remove_db(path);
	if (fs_replica__open_server(&r, path, 1) < 0)
		die(path, fs_replica_errmsg(r));
	memset(&peer, 0, sizeof(peer));
	snprintf(peer.device, sizeof(peer.device), "bench-device");
	snprintf(peer.user, sizeof(peer.user), "bench");
	snprintf(peer.role, sizeof(peer.role), "office");
	peer.schema = 4;
	/* A whole-company office user, as fs_store__auth would load it: the
	** push checks every entry against the writer's scope (temp.fs_scope). */
	if (fs_replica__exec(r,
	        "INSERT INTO fs_user(name, role, region, created_at) VALUES "
	        "('bench', 'office', '*', '2026-01-01T00:00:00Z'); "
	        "INSERT INTO fs_user_scope(user, dept) VALUES ('bench', '*')",
	        "adding the bench user") < 0 ||
	    fs_policy__load_scope(r, peer.user, &peer.all) < 0)
		die(path, fs_replica_errmsg(r));
	for (phase = 0; phase < 2; phase++) {
		t0 = now_s();
		for (i = 0; i < n; i += BATCH) {
			long m = i + BATCH > n ? n - i : BATCH;
			const char *batch;
			uint64_t count;
			char bid[64];
			fs_rd rd;

			fs_buf_clear(&payload);
			snprintf(bid, sizeof(bid), "b%d-%ld", phase, i);
			fs_wr__str(&payload, bid);
			fs_wr__uv(&payload, (uint64_t)m);
			for (j = i; j < i + m; j++) {
				char id[40], json[600], ph[40];
				fs_entry en;
				memset(&en, 0, sizeof(en));
				id_of(id, j);
				en.tbl = "customer";
				en.rid = id;
				en.hlc = (uint64_t)(phase * n + j + 1) << 16;
				en.device = "ignored";
				if (phase == 0) {
					json_of(json, sizeof(json), j);
					en.op = 'I';
					en.val = json;
				} else {
					snprintf(ph, sizeof(ph), "\"+86 10 %08ld\"", j);
					en.op = 'U';
					en.col = "phone";
					en.val = ph;
					en.seq = (uint64_t)n + 1;   /* saw everything */
				}
				fs_wr__entry(&payload, &en);
			}
			/* Decode exactly as the server does. */
			fs_rd__init(&rd, &payload);
			fs_rd__str(&rd, &batch, &r->err);
			fs_rd__uv(&rd, &count, &r->err);
			if (fs_store__push(r, &peer, batch, &rd, count, &ack) < 0)
				die("push", fs_replica_errmsg(r));
		}
		*(phase ? upd : ins) = now_s() - t0;
	}
	fs_buf_free(&payload);
	fs_buf_free(&ack);
	fs_replica_close(r);
	remove_db(path);
}

static void run_raw(const char *path, long n, double *ins, double *upd)
{
	sqlite3 *db;
	sqlite3_stmt *st, *up;
	char *msg = NULL;
	double t0;
	long i;

	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	                 "PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
	                 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, fs_schema__sql(1), NULL, NULL, &msg) != SQLITE_OK)
		die("schema", msg);
	sqlite3_prepare_v2(db,
	        "INSERT INTO customer(id, code, name, phone, email, credit_limit, "
	        "address, city, level, status, region, created_at) "
	        "VALUES (?,?,?,?,?,?,?,'Shanghai','B','active','east',"
	        "'2026-11-22T09:00:00Z')", -1, &st, NULL);
	sqlite3_prepare_v2(db, "UPDATE customer SET phone = ? WHERE id = ?", -1,
	                   &up, NULL);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		char id[40], b[5][64];
		if (i % BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		id_of(id, i);
		snprintf(b[0], 64, "C%06ld", i);
		snprintf(b[1], 64, "Customer %ld Trading Co.", i);
		snprintf(b[2], 64, "+86 21 %08ld", i);
		snprintf(b[3], 64, "buyer%ld@example.cn", i);
		snprintf(b[4], 64, "%ld Nanjing Road", i % 900 + 1);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, b[0], -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, b[1], -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, b[2], -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, b[3], -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 6, (10000 + (i % 50) * 1000) * 100L);
		sqlite3_bind_text(st, 7, b[4], -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % BATCH == BATCH - 1 || i == n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	*ins = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		char id[40], ph[40];
		if (i % BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		id_of(id, i);
		snprintf(ph, sizeof(ph), "+86 10 %08ld", i);
		sqlite3_bind_text(up, 1, ph, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(up, 2, id, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(up) != SQLITE_DONE)
			die("raw update", sqlite3_errmsg(db));
		sqlite3_reset(up);
		if (i % BATCH == BATCH - 1 || i == n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	*upd = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_close(db);
	remove_db(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, ROUNDS, sizeof(*v), cmp_double);
	return v[ROUNDS / 2];
}

static void print_row(const char *phase, double *raw, double *merge,
                      double *ratio, long n)
{
	double lo = ratio[0], hi = ratio[0];
	int k;

	for (k = 1; k < ROUNDS; k++) {
		lo = ratio[k] < lo ? ratio[k] : lo;
		hi = ratio[k] > hi ? ratio[k] : hi;
	}
	printf("%-8s %11.3fs %13.3fs %14.0f %13.2fx %7.2f-%.2fx\n", phase,
	       median(raw), median(merge), n / median(merge), median(ratio), lo,
	       hi);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	double si[ROUNDS], su[ROUNDS], ri[ROUNDS], ru[ROUNDS], qi[ROUNDS],
	       qu[ROUNDS];
	char p1[512], p2[512];
	int k;

	if (n <= 0)
		die("usage", "apply_bench [N] [DIR]");
	snprintf(p1, sizeof(p1), "%s/apply_store_%d.db", dir, (int)getpid());
	snprintf(p2, sizeof(p2), "%s/apply_raw_%d.db", dir, (int)getpid());
	for (k = 0; k < ROUNDS; k++) {
		if (k % 2) {
			run_store(p1, n, &si[k], &su[k]);
			run_raw(p2, n, &ri[k], &ru[k]);
		} else {
			run_raw(p2, n, &ri[k], &ru[k]);
			run_store(p1, n, &si[k], &su[k]);
		}
		qi[k] = ri[k] / si[k];
		qu[k] = ru[k] / su[k];
	}
	printf("server apply, %ld customers in batches of %d, %d rounds "
	       "(medians; ratio range over the rounds)\n", n, BATCH, ROUNDS);
	printf("%-8s %12s %14s %14s %14s %14s\n", "phase", "raw SQLite",
	       "server merge", "rows/s (merge)", "merge vs raw", "range");
	print_row("create", ri, si, qi, n);
	print_row("update", ru, su, qu, n);
	printf("(merge vs raw = throughput ratio; goal >= 0.5)\n");
	return 0;
}
