/*
** logq.c -- the server's change log rows of one transaction, written 64
** to an INSERT (logq.h says why and the rule that keeps it invisible).
*/
#include "logq.h"

#include <string.h>

#include "../client/replica_int.h"

#define ROW_PARAMS 12

/* The INSERT statements of 64, 8 and 1 rows, kept on the handle. */
static const int group_sizes[3] = { FS_LOGQ_ROWS, 8, 1 };

static sqlite3_stmt *group_stmt(fs_replica *r, int slot)
{
	fs_buf sql = FS_BUF_INIT;
	int i, rc;

	if (r->log_ins[slot])
		return r->log_ins[slot];
	fs_buf_puts(&sql, "INSERT INTO fs_log(seq, tbl, rid, op, col, val, hlc, "
	            "device, author, scope, via, up) VALUES ");
	for (i = 0; i < group_sizes[slot]; i++)
		fs_buf_puts(&sql, i ? ",(?,?,?,?,?,?,?,?,?,?,?,?)"
		                    : "(?,?,?,?,?,?,?,?,?,?,?,?)");
	if (sql.failed) {
		fs_buf_free(&sql);
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		return NULL;
	}
	rc = sqlite3_prepare_v3(r->db, sql.ptr, (int)sql.len,
	                        SQLITE_PREPARE_PERSISTENT, &r->log_ins[slot],
	                        NULL);
	fs_buf_free(&sql);
	if (rc != SQLITE_OK) {
		fs_err__sqlite(&r->err, r->db, rc, "writing the change log");
		return NULL;
	}
	return r->log_ins[slot];
}

static void put_str(fs_logq *q, size_t k, int s, const char *v)
{
	size_t len;

	if (!v) {
		q->rows[k].off[s] = (size_t)-1;
		return;
	}
	len = strlen(v);
	q->rows[k].off[s] = q->arena.len;
	q->rows[k].len[s] = len;
	/* With its NUL: a failed append leaves arena.failed set. */
	fs_buf_put(&q->arena, v, len + 1);
}

int fs_logq__add(fs_logq *q, fs_replica *r, const fs_logq_row *row)
{
	size_t k;
	int rc;

	if (q->n == FS_LOGQ_ROWS && (rc = fs_logq__flush(q, r)) < 0)
		return rc;
	k = q->n;
	q->rows[k].seq = row->seq;
	q->rows[k].op = row->op;
	q->rows[k].hlc = row->hlc;
	q->rows[k].up = row->up;
	put_str(q, k, 0, row->tbl);
	put_str(q, k, 1, row->rid);
	put_str(q, k, 2, row->col);
	put_str(q, k, 3, row->val);
	put_str(q, k, 4, row->device);
	put_str(q, k, 5, row->author);
	put_str(q, k, 6, row->scope);
	put_str(q, k, 7, row->via);
	if (q->arena.failed) {
		fs_logq__free(q);
		return fs_err__set(&r->err, FS_ERROR, "out of memory queueing a "
		                   "change log row");
	}
	q->n++;
	return 0;
}

/* Binds queued row k as row i of st (its strings stay in the arena until
** the statement has run). */
static void bind_row(sqlite3_stmt *st, int i, const fs_logq *q, size_t k)
{
	static const int param[FS_LOGQ_STRS] = { 2, 3, 5, 6, 8, 9, 10, 11 };
	int p = i * ROW_PARAMS, s;

	sqlite3_bind_int64(st, p + 1, q->rows[k].seq);
	sqlite3_bind_text(st, p + 4, &q->rows[k].op, 1, SQLITE_STATIC);
	sqlite3_bind_int64(st, p + 7, q->rows[k].hlc);
	if (q->rows[k].up >= 0)
		sqlite3_bind_int64(st, p + 12, q->rows[k].up);
	else
		sqlite3_bind_null(st, p + 12);
	for (s = 0; s < FS_LOGQ_STRS; s++) {
		if (q->rows[k].off[s] == (size_t)-1)
			sqlite3_bind_null(st, p + param[s]);
		else
			sqlite3_bind_text(st, p + param[s],
			                  q->arena.ptr + q->rows[k].off[s],
			                  (int)q->rows[k].len[s], SQLITE_STATIC);
	}
}

int fs_logq__flush(fs_logq *q, fs_replica *r)
{
	size_t done = 0;
	int slot, i, rc = 0;

	for (slot = 0; slot < 3 && rc == 0; slot++) {
		int k = group_sizes[slot];
		sqlite3_stmt *st;

		while (rc == 0 && q->n - done >= (size_t)k) {
			if (!(st = group_stmt(r, slot))) {
				rc = r->err.code;
				break;
			}
			for (i = 0; i < k; i++)
				bind_row(st, i, q, done + (size_t)i);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			if (rc != SQLITE_DONE)
				rc = fs_err__sqlite(&r->err, r->db, rc,
				                    "writing the change log");
			else
				rc = 0;
			done += (size_t)k;
		}
	}
	q->n = 0;
	fs_buf_clear(&q->arena);
	return rc;
}

void fs_logq__free(fs_logq *q)
{
	q->n = 0;
	fs_buf_free(&q->arena);
}
