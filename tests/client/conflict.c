/*
** conflict.c -- resolving a conflict on a replica (client/conflict.c).
** Keeping the loser (or a typed value) writes it as a new change; keeping
** the winner writes nothing, since the winner won already: the field may
** hold a newer value by then (another device's edit made since the
** conflict), which writing the recorded winner again would undo on every
** replica.  Only this device's own edit, still pending, gives way to it.
** Each resolution queues its 'R' change.
*/
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../sync/check.h"
#include "fieldsync.h"
#include "replica_int.h"

/* One text value from sql on the file at path ("(none)" if none). */
static void text_is(const char *path, const char *sql, const char *want)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char got[200] = "(none)";

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(got, sizeof(got), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	CHECK_STR(got, want);
}

/* A conflict on field col of customer id, as a pull brings it: winner
** and loser values as JSON (winner NULL: a 'refused upstream:' one). */
static void conflict_add(const char *path, int id, const char *rid,
                         const char *col, const char *reason,
                         const char *winner, const char *loser)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db,
	        "INSERT INTO fs_conflict(id, tbl, rid, col, reason, winner_value, "
	        "winner_hlc, winner_device, winner_author, loser_value, "
	        "loser_hlc, loser_device, loser_author, created_at) VALUES "
	        "(?1, 'customer', ?2, ?3, ?4, ?5, 200, 'dev-w', 'bob', ?6, 100 * ?1, "
	        "'dev-l', 'alice', '2026-11-27T09:00:00Z')", -1, &st, NULL)
	      == SQLITE_OK);
	sqlite3_bind_int(st, 1, id);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, winner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, loser, -1, SQLITE_STATIC);
	CHECK(sqlite3_step(st) == SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void set(fs_replica *r, const char *id, const char *col,
                const char *val)
{
	fs_field f = { col, val };

	CHECK(fs_record_update(r, "customer", id, &f, 1) == 0);
}

/* As a pull applies another device's edit: not a pending change. */
static void pulled(fs_replica *r, const char *id, const char *col,
                   const char *val)
{
	int was = fs_replica__capture(r, 0);

	set(r, id, col, val);
	fs_replica__capture(r, was);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[300], id[FS_ID_SIZE], sql[300];
	fs_field f[2] = { { "name", "Kappa Ltd" }, { "phone", "W1" } };
	fs_replica *r = NULL;

	snprintf(path, sizeof(path), "%s/fs_conflict_%d.db", tmp ? tmp : "/tmp",
	         (int)getpid());
	unlink(path);
	CHECK(fs_replica_open(&r, path, NULL) == 0);
	CHECK(fs_record_insert(id, r, "customer", f, 2) == 0);
	set(r, id, "city", "Lanzhou");
	CHECK(fs_replica_setting_set(r, "server_device", "dev-l") == 0);

	/* Bob's phone W1 won over Alice's L (this device, dev-l); Carol set
	** it to W2 since. */
	conflict_add(path, 1, id, "phone", "concurrent edit", "\"W1\"", "\"L\"");
	pulled(r, id, "phone", "W2");
	CHECK(fs_conflict_resolve(r, 1, "winner") == 0);
	snprintf(sql, sizeof(sql), "SELECT phone FROM customer WHERE id = '%s'",
	         id);
	text_is(path, sql, "W2");
	text_is(path, "SELECT resolution FROM fs_conflict WHERE id = 1", "\"W2\"");
	text_is(path, "SELECT op || ':' || rid FROM fs_change ORDER BY seq DESC "
	        "LIMIT 1", "R:1");
	text_is(path, "SELECT count(*) FROM fs_change WHERE op = 'U' AND "
	        "col = 'phone'", "0");
	CHECK(fs_conflict_resolve(r, 1, "winner") < 0);   /* resolved */

	/* A change head office refused: the conflict holds no winner value.
	** Keeping the winner keeps the field as it is (even this device's
	** pending edit of it), not NULL. */
	conflict_add(path, 2, id, "city", "refused upstream: scope", NULL,
	             "\"Xining\"");
	CHECK(fs_conflict_resolve(r, 2, "winner") == 0);
	snprintf(sql, sizeof(sql), "SELECT city FROM customer WHERE id = '%s'",
	         id);
	text_is(path, sql, "Lanzhou");

	/* This device, the loser, edited the email again since (pending):
	** keeping theirs (the winner) overrides its own edit. */
	conflict_add(path, 4, id, "email", "concurrent edit",
	             "\"w@example.cn\"", "\"l@example.cn\"");
	set(r, id, "email", "again@example.cn");
	CHECK(fs_conflict_resolve(r, 4, "theirs") == 0);
	snprintf(sql, sizeof(sql), "SELECT email FROM customer WHERE id = '%s'",
	         id);
	text_is(path, sql, "w@example.cn");
	/* ...and keeping mine is keeping the loser. */
	conflict_add(path, 5, id, "email", "concurrent edit",
	             "\"w@example.cn\"", "\"l5@example.cn\"");
	CHECK(fs_conflict_resolve(r, 5, "mine") == 0);
	text_is(path, sql, "l5@example.cn");

	/* This device won, and edited the field again since: keeping mine
	** (the winner) keeps its newest edit. */
	CHECK(fs_replica_setting_set(r, "server_device", "dev-w") == 0);
	conflict_add(path, 6, id, "website", "concurrent edit",
	             "\"w.example.cn\"", "\"l.example.cn\"");
	set(r, id, "website", "newer.example.cn");
	CHECK(fs_conflict_resolve(r, 6, "mine") == 0);
	snprintf(sql, sizeof(sql), "SELECT website FROM customer WHERE id = '%s'",
	         id);
	text_is(path, sql, "newer.example.cn");
	CHECK(fs_replica_setting_set(r, "server_device", "dev-l") == 0);

	/* Keeping the loser writes it, over whatever stands. */
	conflict_add(path, 3, id, "phone", "concurrent edit", "\"W1\"", "\"L3\"");
	CHECK(fs_conflict_resolve(r, 3, "loser") == 0);
	snprintf(sql, sizeof(sql), "SELECT phone FROM customer WHERE id = '%s'",
	         id);
	text_is(path, sql, "L3");
	text_is(path, "SELECT resolution FROM fs_conflict WHERE id = 3", "\"L3\"");
	text_is(path, "SELECT count(*) FROM fs_change WHERE op = 'R'", "6");

	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
