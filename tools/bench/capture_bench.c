/*
** capture_bench.c -- what change capture costs on local writes.
**
** Inserts N customers, then updates one field of each, four ways in one
** run on the same machine and the same schema (migration 1):
**   raw      plain SQLite, prepared statements, no capture, the same
**            pragmas as the library (WAL, FULL, 32 MB cache, memory temp)
**   raw+log  the same, plus one prepared INSERT into the change-log table
**            per change: the floor of a log written row by row
**   nocap    the Fieldsync library with capture switched off
**   fs       the Fieldsync library as shipped (capture on)
** Each way runs in one transaction per phase, WAL, synchronous=FULL, on a
** fresh file.  Prints times and the ratios fs/raw and fs/nocap.  Absolute
** times are noise on shared machines; the ratios are the result.
**
** usage: capture_bench [N] [DIR]     (default 100000, /tmp)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fieldsync.h"
#include "replica_int.h"
#include "schema.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "capture_bench: %s: %s\n", what, msg);
	exit(1);
}

static const char *cities[] = { "Shanghai", "Hangzhou", "Suzhou", "Ningbo",
                                "Wuxi", "Nanjing", "Hefei", "Wenzhou" };

/* The i-th customer's fields in text form (what a user or an importer
** gives the library). */
static void fields_for(fs_field *f, char bufs[][64], long i)
{
	snprintf(bufs[0], 64, "Customer %ld Trading Co.", i);
	snprintf(bufs[1], 64, "C%06ld", i);
	snprintf(bufs[2], 64, "+86 21 %08ld", i);
	snprintf(bufs[3], 64, "buyer%ld@example.cn", i);
	snprintf(bufs[4], 64, "%ld.00", 10000 + (i % 50) * 1000);
	snprintf(bufs[5], 64, "%ld Nanjing Road", i % 900 + 1);
	f[0] = (fs_field){ "name", bufs[0] };
	f[1] = (fs_field){ "code", bufs[1] };
	f[2] = (fs_field){ "phone", bufs[2] };
	f[3] = (fs_field){ "email", bufs[3] };
	f[4] = (fs_field){ "credit_limit", bufs[4] };
	f[5] = (fs_field){ "address", bufs[5] };
	f[6] = (fs_field){ "city", cities[i % 8] };
	f[7] = (fs_field){ "level", i % 3 == 0 ? "A" : i % 3 == 1 ? "B" : "C" };
	f[8] = (fs_field){ "status", "active" };
	f[9] = (fs_field){ "region", i % 2 ? "east" : "north" };
}

static void run_raw(const char *path, long n, int withlog, double *ins,
                    double *upd)
{
	sqlite3 *db;
	sqlite3_stmt *st, *lg = NULL;
	char *msg = NULL;
	double t0;
	long i;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	                 "PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
	                 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, fs_schema__sql(1), NULL, NULL, &msg) != SQLITE_OK)
		die("raw schema", msg);
	/* The floor of any per-change log: one more prepared INSERT per
	** change, no trigger, no JSON. */
	if (withlog)
		sqlite3_prepare_v2(db,
		        "INSERT INTO fs_change(tbl, rid, op, col, val, hlc, device) "
		        "VALUES ('customer', ?, ?, ?, ?, ?, "
		        "'01900000-0000-7000-8000-000000000000')", -1, &lg, NULL);
	sqlite3_prepare_v2(db,
	        "INSERT INTO customer(id, name, code, phone, email, credit_limit, "
	        "address, city, level, status, region, created_at) "
	        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	t0 = now_s();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < n; i++) {
		fs_field f[10];
		char b[6][64], id[64];
		int k;

		fields_for(f, b, i);
		snprintf(id, sizeof(id), "01900000-0000-7000-8000-%012ld", i);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		for (k = 0; k < 10; k++) {
			if (k == 4)
				sqlite3_bind_int64(st, k + 2,
				                   (10000 + (i % 50) * 1000) * 100LL);
			else
				sqlite3_bind_text(st, k + 2, f[k].value, -1,
				                  SQLITE_TRANSIENT);
		}
		sqlite3_bind_text(st, 12, "2026-11-22T09:00:00Z", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (lg) {
			sqlite3_bind_text(lg, 1, id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(lg, 2, "I", -1, SQLITE_STATIC);
			sqlite3_bind_null(lg, 3);
			sqlite3_bind_null(lg, 4);
			sqlite3_bind_int64(lg, 5, i);
			if (sqlite3_step(lg) != SQLITE_DONE)
				die("raw log", sqlite3_errmsg(db));
			sqlite3_reset(lg);
		}
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	*ins = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "UPDATE customer SET phone = ? WHERE id = ?", -1,
	                   &st, NULL);
	t0 = now_s();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < n; i++) {
		char id[64], ph[32];
		snprintf(id, sizeof(id), "01900000-0000-7000-8000-%012ld", i);
		snprintf(ph, sizeof(ph), "+86 10 %08ld", i);
		sqlite3_bind_text(st, 1, ph, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw update", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (lg) {
			sqlite3_bind_text(lg, 1, id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(lg, 2, "U", -1, SQLITE_STATIC);
			sqlite3_bind_text(lg, 3, "phone", -1, SQLITE_STATIC);
			sqlite3_bind_text(lg, 4, ph, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(lg, 5, n + i);
			if (sqlite3_step(lg) != SQLITE_DONE)
				die("raw log", sqlite3_errmsg(db));
			sqlite3_reset(lg);
		}
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	*upd = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_finalize(lg);
	sqlite3_close(db);
}

static void run_fs(const char *path, long n, int capture, double *ins,
                   double *upd, long long *changes)
{
	fs_replica *r = NULL;
	char (*ids)[FS_ID_SIZE] = malloc((size_t)n * FS_ID_SIZE);
	double t0;
	long i;
	int64_t nc = 0;

	if (!ids)
		die("bench", "out of memory");
	unlink(path);
	if (fs_replica_open(&r, path, NULL) < 0)
		die(path, fs_replica_errmsg(r));
	if (!capture)
		fs_replica__capture(r, 0);   /* as the sync engine applying */
	t0 = now_s();
	if (fs_replica_begin(r) < 0)
		die("begin", fs_replica_errmsg(r));
	for (i = 0; i < n; i++) {
		fs_field f[10];
		char b[6][64];

		fields_for(f, b, i);
		if (fs_record_insert(ids[i], r, "customer", f, 10) < 0)
			die("insert", fs_replica_errmsg(r));
	}
	if (fs_replica_commit(r) < 0)
		die("commit", fs_replica_errmsg(r));
	*ins = now_s() - t0;
	t0 = now_s();
	fs_replica_begin(r);
	for (i = 0; i < n; i++) {
		char ph[32];
		fs_field f;

		snprintf(ph, sizeof(ph), "+86 10 %08ld", i);
		f.name = "phone";
		f.value = ph;
		if (fs_record_update(r, "customer", ids[i], &f, 1) < 0)
			die("update", fs_replica_errmsg(r));
	}
	if (fs_replica_commit(r) < 0)
		die("commit", fs_replica_errmsg(r));
	*upd = now_s() - t0;
	fs_change_count(&nc, r);
	*changes = nc;
	fs_replica_close(r);
	free(ids);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static double least(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
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

#define ROUNDS 7

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	char p1[512], p2[512], p3[512], p4[512];
	double li[ROUNDS], lu[ROUNDS], ri[ROUNDS], ru[ROUNDS], ni[ROUNDS], nu[ROUNDS], fi[ROUNDS],
	       fu[ROUNDS], rfi[ROUNDS], rfu[ROUNDS];
	long long c0, c1;
	int k;

	if (n <= 0)
		die("usage", "capture_bench [N] [DIR]");
	snprintf(p1, sizeof(p1), "%s/bench_raw_%d.db", dir, (int)getpid());
	snprintf(p2, sizeof(p2), "%s/bench_nocap_%d.db", dir, (int)getpid());
	snprintf(p3, sizeof(p3), "%s/bench_fs_%d.db", dir, (int)getpid());
	snprintf(p4, sizeof(p4), "%s/bench_rawlog_%d.db", dir, (int)getpid());
	/* Interleaved rounds: a burst of load on the machine hits all four
	** ways alike; medians drop the outliers.  The order flips every round
	** (as apply_bench's), so that no way always runs first or last. */
	for (k = 0; k < ROUNDS; k++) {
		if (k % 2 == 0) {
			run_raw(p1, n, 0, &ri[k], &ru[k]);
			run_raw(p4, n, 1, &li[k], &lu[k]);
			run_fs(p2, n, 0, &ni[k], &nu[k], &c0);
			run_fs(p3, n, 1, &fi[k], &fu[k], &c1);
		} else {
			run_fs(p3, n, 1, &fi[k], &fu[k], &c1);
			run_fs(p2, n, 0, &ni[k], &nu[k], &c0);
			run_raw(p4, n, 1, &li[k], &lu[k]);
			run_raw(p1, n, 0, &ri[k], &ru[k]);
		}
		if (c0 != 0 || c1 != 2 * n)
			die("bench", "unexpected change-log size");
		rfi[k] = fi[k] / ri[k];
		rfu[k] = fu[k] / ru[k];
		remove_db(p1);
		remove_db(p2);
		remove_db(p3);
		remove_db(p4);
	}
	printf("change capture, %ld customers, one transaction per phase, "
	       "median of %d interleaved rounds\n", n, ROUNDS);
	printf("%-8s %11s %11s %11s %11s %8s %9s %9s\n", "phase", "raw",
	       "raw+log", "lib nocap", "lib+capt", "fs/raw", "fs/nocap",
	       "log/raw");
	printf("%-8s %10.3fs %10.3fs %10.3fs %10.3fs %7.2fx %8.2fx %8.2fx\n",
	       "insert", median(ri, ROUNDS), median(li, ROUNDS),
	       median(ni, ROUNDS), median(fi, ROUNDS), median(rfi, ROUNDS),
	       median(fi, ROUNDS) / median(ni, ROUNDS),
	       median(li, ROUNDS) / median(ri, ROUNDS));
	printf("%-8s %10.3fs %10.3fs %10.3fs %10.3fs %7.2fx %8.2fx %8.2fx\n",
	       "update", median(ru, ROUNDS), median(lu, ROUNDS),
	       median(nu, ROUNDS), median(fu, ROUNDS), median(rfu, ROUNDS),
	       median(fu, ROUNDS) / median(nu, ROUNDS),
	       median(lu, ROUNDS) / median(ru, ROUNDS));
	/* Noise on a shared machine only adds time (a slow fsync is +50 ms
	** on a 0.3 s phase): the best rounds are the other estimate. */
	printf("best of %d rounds, fs/raw: insert %.2fx, update %.2fx\n",
	       ROUNDS, least(fi, ROUNDS) / least(ri, ROUNDS),
	       least(fu, ROUNDS) / least(ru, ROUNDS));
	printf("change-log rows written per round: %lld\n", c1);
	return 0;
}
