/*
** compact.h -- keeping the central database proportional to the live data.
**
** The ledger holds the full history, so the database need not: log
** entries older than a horizon, and the clocks of records deleted before
** it, are purged (docs/ledger.md, "Compaction").  The horizon never passes
** what every active device has pulled (unless forced), nor what the
** ledger has written; a device whose cursor falls below it is told to
** bootstrap again, keeping and pushing its own unsynced changes.
*/
#ifndef FS_COMPACT_H
#define FS_COMPACT_H

#include <stdint.h>

#include "fieldsync.h"

typedef struct fs_compact_options {
	int64_t older_than_ms;  /* purge only entries at least this old */
	int64_t active_ms;      /* devices seen within this are active */
	int force;              /* do not wait for active devices */
	int64_t ledger_mark;    /* the ledger holds the log up to this seq;
	                        ** -1: no ledger */
	int dry_run;            /* count, change nothing */
} fs_compact_options;

typedef struct fs_compact_result {
	int64_t horizon;        /* log entries below this seq are gone */
	int64_t log_end;
	int64_t log_rows;       /* log entries purged */
	int64_t tombstones;     /* deleted records whose clocks were purged */
	int64_t clock_rows;
	int64_t moves, batches;
	char limit[240];        /* what set the horizon, in words */
} fs_compact_result;

/* Compacts in one transaction.  0 or <0 (the replica's error says why). */
int fs_compact(fs_replica *r, const fs_compact_options *o,
               fs_compact_result *out);

#endif
