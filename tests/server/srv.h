/*
** srv.h -- what the server's C tests share: a fresh central database,
** an office user of the whole company, one-number queries, entries of a
** batch, and a push through fs_store__push() with its ACK read back
** (docs/protocol.md).
** (static inline: a test uses what it needs.)
*/
#ifndef FS_TEST_SRV_H
#define FS_TEST_SRV_H

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fieldsync.h"
#include "policy.h"
#include "replica_int.h"
#include "store.h"
#include "wire.h"

/* A fresh server database at $TMPDIR/fs_<name>_<pid>.db (path). */
static inline fs_replica *srv_open(char *path, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	fs_replica *r = NULL;

	snprintf(path, size, "%s/fs_%s_%d.db", tmp ? tmp : "/tmp", name,
	         (int)getpid());
	unlink(path);
	if (fs_replica__open_server(&r, path, 1) < 0) {
		fprintf(stderr, "open %s: %s\n", path, fs_replica_errmsg(r));
		exit(1);
	}
	return r;
}

/* One integer from sql, -1 if none. */
static inline long long srv_int(fs_replica *r, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Peer p: device on office user olga, who sees the whole company (the
** user is added the first time). */
static inline void srv_peer(fs_replica *r, fs_peer *p, const char *device)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->device, sizeof(p->device), "%s", device);
	snprintf(p->user, sizeof(p->user), "olga");
	snprintf(p->role, sizeof(p->role), "office");
	p->schema = fs_schema__latest();
	if (srv_int(r, "SELECT count(*) FROM fs_user WHERE name = 'olga'") == 0 &&
	    fs_replica__exec(r,
	        "INSERT INTO fs_user(name, role, region, created_at) VALUES "
	        "('olga', 'office', '*', '2026-01-01T00:00:00Z'); "
	        "INSERT INTO fs_user_scope(user, dept) VALUES ('olga', '*')",
	        "adding a user") < 0) {
		fprintf(stderr, "%s\n", fs_replica_errmsg(r));
		exit(1);
	}
	if (fs_policy__load_scope(r, p->user, &p->all) < 0) {
		fprintf(stderr, "%s\n", fs_replica_errmsg(r));
		exit(1);
	}
}

/* Appends to b an entry of customer rid: clock hlc (milliseconds; the
** counter 0), made on top of log position base, by device dev (NULL:
** the pushing device). */
static inline void srv_entry(fs_buf *b, const char *rid, char op,
                             const char *col, const char *val, uint64_t hlc,
                             uint64_t base, const char *dev)
{
	fs_entry en;

	memset(&en, 0, sizeof(en));
	en.op = op;
	en.tbl = "customer";
	en.rid = rid;
	en.col = col;
	en.val = val;
	en.hlc = hlc << 16;
	en.seq = base;
	en.device = dev;
	fs_wr__entry(b, &en);
}

/* A push's ACK, read back: rejected indexes (the first 8, then -1) and
** corrections (the first 16; their strings point into buf). */
typedef struct srv_ack {
	fs_buf buf;
	uint64_t applied, conflicts, nrej, ncorr;
	int64_t rej[8];
	fs_entry corr[16];
} srv_ack;

/* Pushes the count entries of body as batch id from peer p: returns
** fs_store__push()'s result, the ACK in *a (srv_ack_free() it). */
static inline int srv_push(fs_replica *r, const fs_peer *p, const char *id,
                    uint64_t count, const fs_buf *body, srv_ack *a)
{
	fs_buf b = FS_BUF_INIT;
	const char *batch, *why;
	uint64_t i, n;
	fs_rd rd;
	int rc;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < 8; i++)
		a->rej[i] = -1;
	fs_wr__str(&b, id);
	fs_wr__uv(&b, count);
	fs_buf_put(&b, body->ptr, body->len);
	fs_rd__init(&rd, &b);
	fs_rd__str(&rd, &batch, &r->err);
	fs_rd__uv(&rd, &n, &r->err);
	rc = fs_store__push(r, p, batch, &rd, n, &a->buf);
	fs_buf_free(&b);
	if (rc < 0)
		return rc;
	fs_rd__init(&rd, &a->buf);
	fs_rd__str(&rd, &batch, &r->err);
	fs_rd__uv(&rd, &a->applied, &r->err);
	fs_rd__uv(&rd, &a->conflicts, &r->err);
	fs_rd__uv(&rd, &a->nrej, &r->err);
	for (i = 0; i < a->nrej; i++) {
		uint64_t idx = 0;
		if (fs_rd__uv(&rd, &idx, &r->err) < 0 ||
		    fs_rd__str(&rd, &why, &r->err) < 0)
			return -1;
		if (i < 8)
			a->rej[i] = (int64_t)idx;
	}
	if (fs_rd__uv(&rd, &a->ncorr, &r->err) < 0)
		return -1;
	for (i = 0; i < a->ncorr; i++) {
		fs_entry en;
		if (fs_rd__entry(&rd, &en, &r->err) < 0)
			return -1;
		if (i < 16)
			a->corr[i] = en;
	}
	return 0;
}

static inline void srv_ack_free(srv_ack *a)
{
	fs_buf_free(&a->buf);
}

#endif
