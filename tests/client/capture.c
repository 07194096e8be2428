/*
** capture.c -- change capture inside the library's transactions, through
** the public API (and the capture's windows through its internal one):
** whatever fs_replica_commit() commits has its log rows,
** whatever a failed call or a rollback undoes has none (sync/capture.h).
** The pre-update hook notes changes in memory and writes them 64 rows
** at a time; these cases sit on either side of that boundary.
*/
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../sync/check.h"
#include "capture.h"
#include "fieldsync.h"
#include "replica_int.h"

static char dir[256];

/* A fresh replica at dir/name. */
static fs_replica *open_new(const char *name, char *path, size_t size)
{
	fs_replica *r = NULL;

	snprintf(path, size, "%s/%s", dir, name);
	unlink(path);
	if (fs_replica_open(&r, path, NULL) < 0) {
		fprintf(stderr, "open %s: %s\n", path, fs_replica_errmsg(r));
		exit(1);
	}
	return r;
}

/* One integer from sql on the file at path. */
static long long count(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Every record of every table has exactly one 'I' row, and no 'I' row is
** without its record. */
static int log_matches(const char *path)
{
	static const char *tables[] = { "customer", "contact", "product",
	                                "sales_order", "order_line" };
	char sql[512];
	size_t i;
	int ok = 1;

	for (i = 0; i < sizeof(tables) / sizeof(*tables); i++) {
		snprintf(sql, sizeof(sql),
		         "SELECT (SELECT count(*) FROM \"%s\" t WHERE (SELECT count(*) "
		         "FROM fs_change c WHERE c.op = 'I' AND c.tbl = '%s' AND "
		         "c.rid = t.id) <> 1) + (SELECT count(*) FROM fs_change c "
		         "WHERE c.op = 'I' AND c.tbl = '%s' AND NOT EXISTS (SELECT 1 "
		         "FROM \"%s\" t WHERE t.id = c.rid))", tables[i], tables[i],
		         tables[i], tables[i]);
		if (count(path, sql) != 0) {
			fprintf(stderr, "  %s: records and 'I' rows differ\n", tables[i]);
			ok = 0;
		}
	}
	return ok;
}

/* In one transaction: a customer with a credit limit of 1, an order over
** it, pad contacts, then a second order, refused by the credit check
** (its savepoint rolled back); then commit.  The records kept must all
** have their log rows, whatever pad is. */
static void refused_call_inside_a_transaction(int pad)
{
	char path[512], c[FS_ID_SIZE], p[FS_ID_SIZE], o[FS_ID_SIZE],
	     x[FS_ID_SIZE];
	fs_field cf[] = { { "name", "Acme" }, { "credit_limit", "1" } };
	fs_field pf[] = { { "sku", "S1" }, { "name", "P" }, { "list_price", "50" } };
	fs_field of[] = { { "customer", c } };
	fs_field lf[] = { { "order", o }, { "product", p }, { "quantity", "1" },
	                  { "unit_price", "50" } };
	fs_field kf[] = { { "customer", c }, { "name", "K" } };
	fs_replica *r = open_new("refused.db", path, sizeof(path));
	int i, rc;

	CHECK(fs_replica_begin(r) == 0);
	CHECK(fs_record_insert(c, r, "customer", cf, 2) == 0);
	CHECK(fs_record_insert(p, r, "product", pf, 3) == 0);
	CHECK(fs_record_insert(o, r, "order", of, 1) == 0);
	lf[0].value = o;
	CHECK(fs_record_insert(x, r, "order_line", lf, 4) == 0);
	for (i = 0; i < pad; i++)
		CHECK(fs_record_insert(x, r, "contact", kf, 2) == 0);
	rc = fs_record_insert(x, r, "order", of, 1);
	CHECK(rc != 0);   /* over the credit limit */
	/* A statement that fails by itself (an enumeration) notes nothing. */
	{
		fs_field bad[] = { { "name", "B" }, { "level", "Z" } };
		CHECK(fs_record_insert(x, r, "customer", bad, 2) != 0);
	}
	CHECK(fs_replica_commit(r) == 0);
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM contact") == pad);
	CHECK(count(path, "SELECT count(*) FROM sales_order") == 1);
	if (!log_matches(path))
		fprintf(stderr, "  (pad %d)\n", pad);
	CHECK(log_matches(path));
}

/* Changes waiting in a transaction are listed and counted, and dropped
** with everything else by fs_replica_discard_unsynced(). */
static int seen(const fs_change *ch, void *payload)
{
	(void)ch;
	++*(int *)payload;
	return 0;
}

static void waiting_changes(void)
{
	char path[512], c[FS_ID_SIZE];
	fs_field cf[] = { { "name", "Acme" } };
	fs_replica *r = open_new("waiting.db", path, sizeof(path));
	int64_t n = -1;
	int listed = 0;

	CHECK(fs_replica_begin(r) == 0);
	CHECK(fs_record_insert(c, r, "customer", cf, 1) == 0);
	CHECK(fs_change_count(&n, r) == 0 && n == 1);
	CHECK(fs_change_foreach(r, seen, &listed) == 0 && listed == 1);
	CHECK(fs_record_insert(c, r, "customer", cf, 1) == 0);
	CHECK(fs_replica_discard_unsynced(r) == 0);
	CHECK(fs_replica_commit(r) == 0);
	CHECK(fs_change_count(&n, r) == 0 && n == 0);
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM customer") == 0);
	CHECK(count(path, "SELECT count(*) FROM fs_change") == 0);
}

/* A rolled-back transaction leaves nothing waiting: the next one logs
** only its own changes. */
static void rollback_then_more(void)
{
	char path[512], c[FS_ID_SIZE];
	fs_field cf[] = { { "name", "Acme" } };
	fs_replica *r = open_new("rollback.db", path, sizeof(path));
	int i;

	CHECK(fs_replica_begin(r) == 0);
	for (i = 0; i < 100; i++)
		CHECK(fs_record_insert(c, r, "customer", cf, 1) == 0);
	CHECK(fs_replica_rollback(r) == 0);
	CHECK(fs_replica_begin(r) == 0);
	for (i = 0; i < 3; i++)
		CHECK(fs_record_insert(c, r, "customer", cf, 1) == 0);
	CHECK(fs_replica_commit(r) == 0);
	CHECK(fs_record_insert(c, r, "customer", cf, 1) == 0);   /* no tx */
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM customer") == 4);
	CHECK(log_matches(path));
}

/* The library's UPDATE notes its changed fields itself (fs_note_update
** in its WHERE clause); an UPDATE in plain SQL is still noted by the hook,
** every field compared. */
static long long u_rows(const char *path, const char *col, const char *val,
                        const char *old)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM fs_change WHERE op = 'U' "
	         "AND col = '%s' AND val = '%s' AND old IS '%s'", col, val, old);
	return count(path, sql);
}

static void updates_noted_where_they_run(void)
{
	char path[512], c[FS_ID_SIZE], sql[256];
	fs_field cf[] = { { "name", "Acme" }, { "phone", "111" },
	                  { "city", "Wuxi" }, { "credit_limit", "100" } };
	fs_field same[] = { { "city", "Wuxi" }, { "phone", "222" } };
	fs_field money[] = { { "credit_limit", "100.00" } };
	fs_field money2[] = { { "credit_limit", "250.5" } };
	fs_field bad[] = { { "phone", "333" }, { "level", "Z" } };
	fs_field gone[] = { { "phone", "444" } };
	fs_field wide[] = { { "code", "W1" }, { "address", "1 Road" },
	                    { "city", "Lyon" }, { "postcode", "69001" },
	                    { "phone", "555" }, { "email", "w@x.y" },
	                    { "website", "w.y" }, { "industry", "retail" },
	                    { "level", "A" }, { "type", "shop" },
	                    { "status", "active" } };
	fs_replica *r = open_new("updates.db", path, sizeof(path));
	const fs_table *cust = fs_schema__table(&r->schema, "customer");
	sqlite3_stmt *st = NULL;
	size_t mark;

	CHECK(fs_record_insert(c, r, "customer", cf, 4) == 0);
	/* One field of two changed: one row, its old value kept. */
	CHECK(fs_record_update(r, "customer", c, same, 2) == 0);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE op = 'U'") == 1);
	CHECK(u_rows(path, "phone", "\"222\"", "\"111\"") == 1);
	/* The same value again, and a money field written otherwise: none. */
	CHECK(fs_record_update(r, "customer", c, same, 2) == 0);
	CHECK(fs_record_update(r, "customer", c, money, 1) == 0);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE op = 'U'") == 1);
	CHECK(fs_record_update(r, "customer", c, money2, 1) == 0);
	CHECK(u_rows(path, "credit_limit", "25050", "10000") == 1);

	/* A refused update notes nothing, and the transaction goes on. */
	CHECK(fs_replica_begin(r) == 0);
	CHECK(fs_record_update(r, "customer", c, bad, 2) != 0);
	CHECK(fs_record_update(r, "customer", "no-such-id", gone, 1) ==
	      FS_ENOTFOUND);
	/* The function notes only the row whose id it is given, and only
	** for the library's UPDATE: from other SQL it is refused. */
	mark = fs_capture__mark(&r->cap);
	snprintf(sql, sizeof(sql), "SELECT fs_note_update(%d, 1, 'x', 'y', 0, "
	         "'a', 'b')", (int)(cust - r->schema.tables));
	CHECK(sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ERROR);
	sqlite3_finalize(st);
	CHECK(sqlite3_exec(r->db, "SELECT fs_note_update()", NULL, NULL,
	                   NULL) == SQLITE_ERROR);
	fs_capture__self(&r->cap, cust);
	CHECK(sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1);
	sqlite3_finalize(st);
	fs_capture__self(&r->cap, NULL);
	CHECK(fs_capture__mark(&r->cap) == mark);
	/* Plain SQL on the replica's connection: the hook notes it. */
	snprintf(sql, sizeof(sql), "UPDATE customer SET email = 'a@b.c', "
	         "city = 'Wuxi' WHERE id = '%s'", c);
	CHECK(sqlite3_exec(r->db, sql, NULL, NULL, NULL) == SQLITE_OK);
	CHECK(fs_record_update(r, "customer", c, gone, 1) == 0);
	CHECK(fs_replica_commit(r) == 0);
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE op = 'U'") == 4);
	CHECK(u_rows(path, "email", "\"a@b.c\"", "null") == 1);
	CHECK(u_rows(path, "phone", "\"444\"", "\"222\"") == 1);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE val LIKE "
	            "'%333%'") == 0);

	/* More fields than one call of the function takes: each changed
	** field is noted once (11 rows), and the same update again notes
	** nothing. */
	CHECK(sizeof(wide) / sizeof(*wide) > FS_CAPTURE_NOTE_FIELDS);
	CHECK(fs_replica_open(&r, path, NULL) == 0);
	CHECK(fs_record_update(r, "customer", c, wide,
	                       sizeof(wide) / sizeof(*wide)) == 0);
	CHECK(fs_record_update(r, "customer", c, wide,
	                       sizeof(wide) / sizeof(*wide)) == 0);
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE op = 'U'") ==
	      4 + (long long)(sizeof(wide) / sizeof(*wide)));
	CHECK(u_rows(path, "status", "\"active\"", "\"prospect\"") == 1);
	CHECK(u_rows(path, "type", "\"shop\"", "null") == 1);
}

/* Creations put together as the push and the listing see them. */
typedef struct made {
	int64_t seq[16];
	char *json[16];
	int n;
} made;

static int keep(void *payload, int64_t seq, const char *json)
{
	made *m = payload;

	if (m->n == 16)
		return 1;
	m->seq[m->n] = seq;
	m->json[m->n++] = strdup(json);
	return 0;
}

static void made_free(made *m)
{
	while (m->n)
		free(m->json[--m->n]);
}

/* Creations are put together a window at a time (sync/capture.h, so
** that memory stays bounded however many are pending): whatever the
** window, and whether it falls between a creation and its edits or its
** delete, the result is that of one window, and settling writes it.
** (Internal API: the window sizes the library uses are thousands.) */
static void creation_windows(void)
{
	char path[512], id[6][FS_ID_SIZE];
	fs_field cf[] = { { "name", "Acme" }, { "city", "Lyon" } };
	fs_field f1[] = { { "city", "Nice" } }, f2[] = { { "phone", "1" } },
	         f3[] = { { "phone", "2" } }, f4[] = { { "name", "Acme 2" } };
	fs_replica *r = open_new("windows.db", path, sizeof(path));
	made whole = { { 0 }, { 0 }, 0 };
	int64_t last, after;
	size_t max;
	int i, ok;

	CHECK(fs_replica_begin(r) == 0);
	for (i = 0; i < 5; i++)
		CHECK(fs_record_insert(id[i], r, "customer", cf, 2) == 0);
	CHECK(fs_replica_commit(r) == 0);
	CHECK(fs_record_update(r, "customer", id[1], f1, 1) == 0);
	CHECK(fs_record_delete(r, "customer", id[2]) == 0);
	CHECK(fs_record_update(r, "customer", id[3], f2, 1) == 0);
	CHECK(fs_record_update(r, "customer", id[3], f3, 1) == 0);
	CHECK(fs_record_update(r, "customer", id[0], f4, 1) == 0);
	CHECK(fs_record_insert(id[5], r, "customer", cf, 2) == 0);
	CHECK(fs_record_update(r, "customer", id[5], f1, 1) == 0);

	CHECK(fs_capture__creations(r->db, &r->schema, 0, 100, &last, keep,
	                            &whole, &r->err) == 0);
	CHECK(last == INT64_MAX);
	CHECK(whole.n == 6);
	for (i = 0; i < whole.n; i++)   /* each as it was made */
		CHECK(strstr(whole.json[i], "\"city\":\"Lyon\"") &&
		      strstr(whole.json[i], "\"name\":\"Acme\"") &&
		      !strstr(whole.json[i], "\"phone\":\""));
	for (max = 1; max <= 7; max++) {
		made w = { { 0 }, { 0 }, 0 };
		int windows = 0;

		after = 0;
		do {
			CHECK(fs_capture__creations(r->db, &r->schema, after, max,
			                            &last, keep, &w, &r->err) == 0);
			CHECK(last > after);
			after = last;
			windows++;
		} while (last != INT64_MAX && windows < 10);
		CHECK(windows == (int)((6 + max - 1) / max));   /* ceil(6 / max) */
		ok = w.n == whole.n;
		for (i = 0; ok && i < w.n; i++)
			ok = w.seq[i] == whole.seq[i] &&
			     !strcmp(w.json[i], whole.json[i]);
		if (!ok)
			fprintf(stderr, "window of %zu: creations differ\n", max);
		CHECK(ok);
		made_free(&w);
	}

	after = 0;
	do {   /* as the push does, a transaction per window */
		CHECK(fs_replica_begin(r) == 0);
		CHECK(fs_capture__settle(r->db, &r->schema, after, 2, &last,
		                         &r->err) == 0);
		CHECK(fs_replica_commit(r) == 0);
		CHECK(last > after);
		after = last;
	} while (last != INT64_MAX);
	fs_replica_close(r);
	CHECK(count(path, "SELECT count(*) FROM fs_change WHERE op = 'I' AND "
	                  "val IS NULL") == 0);
	for (i = 0; i < whole.n; i++) {
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM fs_change WHERE "
		         "seq = %lld AND op = 'I'", (long long)whole.seq[i]);
		CHECK(count(path, sql) == 1);
	}
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		i = 0;
		ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		     SQLITE_OK && sqlite3_prepare_v2(db, "SELECT val FROM fs_change "
		     "WHERE op = 'I' ORDER BY seq", -1, &st, NULL) == SQLITE_OK;
		while (ok && sqlite3_step(st) == SQLITE_ROW && i < whole.n)
			ok = !strcmp((const char *)sqlite3_column_text(st, 0),
			             whole.json[i++]);
		CHECK(ok && i == whole.n);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	made_free(&whole);
}

static void remove_all(void)
{
	static const char *names[] = { "refused.db", "waiting.db", "rollback.db",
	                               "windows.db", "updates.db" };
	static const char *ext[] = { "", "-wal", "-shm" };
	char p[600];
	size_t i, k;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		for (k = 0; k < 3; k++) {
			snprintf(p, sizeof(p), "%s/%s%s", dir, names[i], ext[k]);
			unlink(p);
		}
	rmdir(dir);
}

int main(void)
{
	static const int pads[] = { 0, 55, 58, 59, 60, 61, 62, 63, 64, 130 };
	const char *tmp = getenv("TMPDIR");
	size_t i;

	snprintf(dir, sizeof(dir), "%s/fs_test_capture_XXXXXX",
	         tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (i = 0; i < sizeof(pads) / sizeof(*pads); i++)
		refused_call_inside_a_transaction(pads[i]);
	waiting_changes();
	rollback_then_more();
	updates_noted_where_they_run();
	creation_windows();
	remove_all();
	return CHECK_EXIT();
}
