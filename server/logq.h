/*
** logq.h -- the server's change log rows of one transaction, written in
** groups.
**
** A merge appends an fs_log row for every change it takes.  One INSERT
** per row was a fifth of a creation's merge (12k of 62k instructions,
** callgrind); most of that is the statement's own overhead, which an
** INSERT of 64 rows pays once.  So rows wait here with the log positions
** they take (given by the caller: the log grows only inside a write
** transaction, which the merge holds) and are written 64 at a time, as
** the client's capture writes fs_change (sync/capture.c).
**
** The rule that keeps this invisible: every read of fs_log inside the
** transaction, and its COMMIT, comes after fs_logq__flush().  A failed
** flush fails the transaction (the caller rolls back).
*/
#ifndef FS_LOGQ_H
#define FS_LOGQ_H

#include <stdint.h>

#include "buf.h"
#include "fieldsync.h"

#define FS_LOGQ_ROWS 64
#define FS_LOGQ_STRS 8   /* tbl, rid, col, val, device, author, scope, via */

/* One fs_log row; a NULL string is logged as NULL (tbl, rid, device and
** author are never NULL). */
typedef struct fs_logq_row {
	int64_t seq;
	const char *tbl, *rid;
	char op;
	const char *col, *val;
	int64_t hlc;
	const char *device, *author, *scope, *via;
	int64_t up;          /* < 0: NULL */
} fs_logq_row;

typedef struct fs_logq {
	/* Per row: seq, op, hlc, up, and its strings' offsets in the arena
	** ((size_t)-1 for NULL). */
	struct {
		int64_t seq, hlc, up;
		char op;
		size_t off[FS_LOGQ_STRS], len[FS_LOGQ_STRS];
	} rows[FS_LOGQ_ROWS];
	size_t n;
	fs_buf arena;        /* copies of the rows' strings */
} fs_logq;

#define FS_LOGQ_INIT { .n = 0 }

/* Queues row (its strings copied), writing the queue first if it is
** full.  0, or <0 with r->err set. */
int fs_logq__add(fs_logq *q, fs_replica *r, const fs_logq_row *row);
/* Writes every queued row.  0, or <0 with r->err set; the queue is empty
** either way. */
int fs_logq__flush(fs_logq *q, fs_replica *r);
/* Drops the queued rows (a rolled-back transaction) and frees memory. */
void fs_logq__free(fs_logq *q);

#endif
