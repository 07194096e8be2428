/*
** apply_bench.c -- server apply throughput versus raw SQLite.
**
** Builds N customer creations as the PUSH payloads a client sends
** (batches of 2000), applies them through the server's merge
** (fs_store__push: clocks, log, batch bookkeeping, one transaction per
** batch, synchronous=FULL), and compares with raw SQLite inserting the
** same rows in the same batches with a prepared statement on the same
** schema.  Neither clock counts making the data (the payloads, the
** rows' strings).  Then N single-field updates the same two ways.  7 rounds,
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

/* The pushed batches of one phase, encoded as a client sends them (built
** before the clock starts: generating test data is not the server's
** work). */
static fs_buf *build_batches(long n, int phase)
{
	long nb = (n + BATCH - 1) / BATCH, b, j;
	fs_buf *out = calloc((size_t)nb, sizeof(*out));

	if (!out)
		die("bench", "out of memory");
	for (b = 0; b < nb; b++) {
		long i = b * BATCH, m = i + BATCH > n ? n - i : BATCH;
		char bid[64];

		snprintf(bid, sizeof(bid), "b%d-%ld", phase, i);
		fs_wr__str(&out[b], bid);
		fs_wr__uv(&out[b], (uint64_t)m);
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
			fs_wr__entry(&out[b], &en);
		}
		if (out[b].failed)
			die("bench", "out of memory");
	}
	return out;
}

static void run_store(const char *path, long n, double *ins, double *upd)
{
	fs_replica *r = NULL;
	fs_peer peer;
	fs_buf ack = FS_BUF_INIT;
	long nb = (n + BATCH - 1) / BATCH, b;
	double t0;
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
		fs_buf *batches = build_batches(n, phase);

		t0 = now_s();
		for (b = 0; b < nb; b++) {
			const char *batch;
			uint64_t count;
			fs_rd rd;

			/* Decoded exactly as the server does. */
			fs_rd__init(&rd, &batches[b]);
			fs_rd__str(&rd, &batch, &r->err);
			fs_rd__uv(&rd, &count, &r->err);
			if (fs_store__push(r, &peer, batch, &rd, count, &ack) < 0)
				die("push", fs_replica_errmsg(r));
		}
		*(phase ? upd : ins) = now_s() - t0;
		for (b = 0; b < nb; b++)
			fs_buf_free(&batches[b]);
		free(batches);
	}
	fs_buf_free(&ack);
	fs_replica_close(r);
	remove_db(path);
}

static void floor_rows(sqlite3 *db, sqlite3_stmt *lg, sqlite3_stmt *ck,
                       const char *id, const char *op, const char *col,
                       const char *val, long hlc)
{
	sqlite3_bind_text(lg, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(lg, 2, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(lg, 3, col, -1, SQLITE_STATIC);
	sqlite3_bind_text(lg, 4, val, -1, SQLITE_STATIC);
	sqlite3_bind_int64(lg, 5, hlc);
	if (sqlite3_step(lg) != SQLITE_DONE)
		die("floor log", sqlite3_errmsg(db));
	sqlite3_reset(lg);
	sqlite3_bind_text(ck, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(ck, 2, col ? col : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ck, 3, hlc);
	if (sqlite3_step(ck) != SQLITE_DONE)
		die("floor clock", sqlite3_errmsg(db));
	sqlite3_reset(ck);
}

/* The same rows' values for raw SQLite, also made before the clock. */
typedef struct raw_row {
	char id[40], b[5][64], ph[40], json[600], jph[40];
} raw_row;

/* Raw SQLite; with floor, also the two rows any per-change log with
** per-record versions writes (a log row, a clock row: bare prepared
** INSERTs on the server's schema, no merge logic): the floor of such a
** design, to tell what the merge's logic costs from what its bookkeeping
** does. */
static void run_raw(const char *path, long n, int floor, double *ins,
                    double *upd)
{
	sqlite3 *db;
	sqlite3_stmt *st, *up, *lg = NULL, *ck = NULL;
	char *msg = NULL;
	int v;
	raw_row *rows = calloc((size_t)n, sizeof(*rows));
	double t0;
	long i;

	if (!rows)
		die("bench", "out of memory");
	for (i = 0; i < n; i++) {
		id_of(rows[i].id, i);
		snprintf(rows[i].b[0], 64, "C%06ld", i);
		snprintf(rows[i].b[1], 64, "Customer %ld Trading Co.", i);
		snprintf(rows[i].b[2], 64, "+86 21 %08ld", i);
		snprintf(rows[i].b[3], 64, "buyer%ld@example.cn", i);
		snprintf(rows[i].b[4], 64, "%ld Nanjing Road", i % 900 + 1);
		snprintf(rows[i].ph, sizeof(rows[i].ph), "+86 10 %08ld", i);
		json_of(rows[i].json, sizeof(rows[i].json), i);
		snprintf(rows[i].jph, sizeof(rows[i].jph), "\"+86 10 %08ld\"", i);
	}
	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	                 "PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
	                 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, fs_schema__sql(1), NULL, NULL, &msg) != SQLITE_OK)
		die("schema", msg);
	for (v = 2; floor && v <= fs_schema__latest(); v++)
		if (sqlite3_exec(db, fs_schema__sql(v), NULL, NULL, &msg) != SQLITE_OK)
			die("schema", msg);
	if (floor &&
	    (sqlite3_prepare_v2(db, "INSERT INTO fs_log(tbl, rid, op, col, val, "
	         "hlc, device, author, scope) VALUES ('customer', ?1, ?2, ?3, ?4, "
	         "?5, '01900000-0000-7000-8000-0000000000ff', 'bench', 'east')",
	         -1, &lg, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO fs_clock(tbl, rid, "
	         "col, hlc, device, seq) VALUES ('customer', ?1, ?2, ?3, "
	         "'01900000-0000-7000-8000-0000000000ff', last_insert_rowid())",
	         -1, &ck, NULL) != SQLITE_OK))
		die("floor", sqlite3_errmsg(db));
	sqlite3_prepare_v2(db,
	        "INSERT INTO customer(id, code, name, phone, email, credit_limit, "
	        "address, city, level, status, region, created_at) "
	        "VALUES (?,?,?,?,?,?,?,'Shanghai','B','active','east',"
	        "'2026-11-22T09:00:00Z')", -1, &st, NULL);
	sqlite3_prepare_v2(db, "UPDATE customer SET phone = ? WHERE id = ?", -1,
	                   &up, NULL);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		raw_row *w = &rows[i];
		if (i % BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, w->b[0], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, w->b[1], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, w->b[2], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, w->b[3], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (10000 + (i % 50) * 1000) * 100L);
		sqlite3_bind_text(st, 7, w->b[4], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (floor)
			floor_rows(db, lg, ck, w->id, "I", NULL, w->json,
			           (i + 1) << 16);
		if (i % BATCH == BATCH - 1 || i == n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	*ins = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if (i % BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_text(up, 1, rows[i].ph, -1, SQLITE_STATIC);
		sqlite3_bind_text(up, 2, rows[i].id, -1, SQLITE_STATIC);
		if (sqlite3_step(up) != SQLITE_DONE)
			die("raw update", sqlite3_errmsg(db));
		sqlite3_reset(up);
		if (floor)
			floor_rows(db, lg, ck, rows[i].id, "U", "phone", rows[i].jph,
			           (n + i + 1) << 16);
		if (i % BATCH == BATCH - 1 || i == n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	*upd = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_finalize(lg);
	sqlite3_finalize(ck);
	sqlite3_close(db);
	remove_db(path);
	free(rows);
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
	double si[ROUNDS], su[ROUNDS], ri[ROUNDS], ru[ROUNDS], fi[ROUNDS],
	       fu[ROUNDS], qi[ROUNDS], qu[ROUNDS], gi[ROUNDS], gu[ROUNDS];
	char p1[512], p2[512];
	int k;

	if (n <= 0)
		die("usage", "apply_bench [N] [DIR]");
	fs_store__process_init();   /* as fieldsyncd: raw SQLite gets it too */
	snprintf(p1, sizeof(p1), "%s/apply_store_%d.db", dir, (int)getpid());
	snprintf(p2, sizeof(p2), "%s/apply_raw_%d.db", dir, (int)getpid());
	for (k = 0; k < ROUNDS; k++) {
		if (k % 2) {
			run_store(p1, n, &si[k], &su[k]);
			run_raw(p2, n, 1, &fi[k], &fu[k]);
			run_raw(p2, n, 0, &ri[k], &ru[k]);
		} else {
			run_raw(p2, n, 0, &ri[k], &ru[k]);
			run_raw(p2, n, 1, &fi[k], &fu[k]);
			run_store(p1, n, &si[k], &su[k]);
		}
		qi[k] = ri[k] / si[k];
		qu[k] = ru[k] / su[k];
		gi[k] = ri[k] / fi[k];
		gu[k] = ru[k] / fu[k];
	}
	printf("server apply, %ld customers in batches of %d, %d rounds "
	       "(medians; ratio range over the rounds)\n", n, BATCH, ROUNDS);
	printf("%-8s %12s %14s %14s %14s %14s\n", "phase", "raw SQLite",
	       "server merge", "rows/s (merge)", "merge vs raw", "range");
	print_row("create", ri, si, qi, n);
	print_row("update", ru, su, qu, n);
	printf("floor: raw SQLite plus a bare log row and clock row per change\n");
	print_row("create", ri, fi, gi, n);
	print_row("update", ru, fu, gu, n);
	printf("(x vs raw = throughput ratio; goal for the merge >= 0.5)\n");
	return 0;
}
