/*
** fuzz_push.c -- fuzz target: a PUSH payload merged by the server
** (server/store.c), the one input a client fully controls.  A batch id
** starting with 'R' is pushed as by a regional server (relay: entries name
** their own device and author, may be C entries, R entries by natural
** key); one starting with 'U' is merged as head office's changes at a
** regional server (fs_store__apply_upstream: snapshot field clocks, X).
**
** The payload is merged into a central database seeded with a customer,
** then rolled back to the seed by deleting what the batch added (the
** database is reused across inputs for speed).  Every outcome must be an
** ACK or a clean error: no crash, no leak, no sanitizer report, and the
** database must stay consistent (PRAGMA integrity_check).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../client/replica_int.h"
#include "policy.h"
#include "store.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fs_replica *srv;   /* a fuzzing harness may keep one: not library */
static unsigned long runs;
static int scope_all;
static char path[] = "/tmp/fs-fuzz-push-XXXXXX";

static void cleanup(void)
{
	char p[64];

	fs_replica_close(srv);
	srv = NULL;
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static void setup(void)
{
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	close(fd);
	unlink(path);
	atexit(cleanup);
	if (fs_replica__open_server(&srv, path, 1) < 0) {
		fprintf(stderr, "fuzz_push: %s\n", fs_replica_errmsg(srv));
		abort();
	}
	if (fs_replica__exec(srv, "PRAGMA synchronous=OFF", "fuzz") < 0)
		abort();
	/* A rep scoped to one region, so that scope and ownership checks
	** run on every entry. */
	if (fs_replica__exec(srv,
	        "INSERT INTO fs_user(name, role, created_at) VALUES "
	        "('fuzz', 'rep', '2026-01-01T00:00:00Z');"
	        "INSERT INTO fs_dept(code, name, created_at) VALUES "
	        "('north', 'North', '2026-01-01T00:00:00Z');"
	        "INSERT INTO fs_user_scope(user, dept) VALUES ('fuzz', 'north')",
	        "fuzz") < 0 ||
	    fs_policy__load_scope(srv, "fuzz", &scope_all) < 0) {
		fprintf(stderr, "fuzz_push: %s\n", fs_replica_errmsg(srv));
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_peer peer;
	fs_buf payload, ack;
	const char *batch;
	uint64_t n;
	fs_rd rd;

	if (!srv)
		setup();
	memset(&peer, 0, sizeof(peer));
	snprintf(peer.device, sizeof(peer.device),
	         "01900000-0000-7000-8000-000000000001");
	snprintf(peer.user, sizeof(peer.user), "fuzz");
	snprintf(peer.role, sizeof(peer.role), "rep");
	peer.all = scope_all;
	peer.schema = fs_replica_schema_version(srv);
	fs_buf_init(&payload, 0);
	fs_buf_init(&ack, 0);
	fs_buf_put(&payload, data, size);
	fs_rd__init(&rd, &payload);
	if (fs_rd__str(&rd, &batch, &srv->err) == 0 &&
	    fs_rd__uv(&rd, &n, &srv->err) == 0 && n <= 10000) {
		if (batch && batch[0] == 'U') {
			fs_upstream_pos pos;
			uint64_t applied;
			memset(&pos, 0, sizeof(pos));
			pos.cursor = 7;
			fs_store__upstream_peer(&peer, fs_replica_schema_version(srv));
			(void)fs_store__apply_upstream(srv, &peer, &rd, n, &pos, &applied);
		} else {
			if (batch && batch[0] == 'R') {
				peer.relay = 1;
				snprintf(peer.role, sizeof(peer.role), "office");
			}
			(void)fs_store__push(srv, &peer, batch, &rd, n, &ack);
		}
	}
	fs_buf_free(&payload);
	fs_buf_free(&ack);
	/* Keep the database small and check it now and then. */
	if (++runs % 2000 == 0) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(srv->db, "PRAGMA integrity_check", -1, &st,
		                       NULL) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW ||
		    strcmp((const char *)sqlite3_column_text(st, 0), "ok"))
			abort();
		sqlite3_finalize(st);
		fs_replica__exec(srv, "DELETE FROM fs_log; DELETE FROM fs_clock; "
		                 "DELETE FROM fs_conflict; DELETE FROM fs_batch; "
		                 "DELETE FROM fs_origin; DELETE FROM fs_gone", "fuzz");
	}
	return 0;
}
