/*
** capture.h -- change capture: every local write to a synced table is
** logged in fs_change, in the same transaction as the write.
**
** SQLite's pre-update hook (compiled into Debian's libsqlite3, which the
** session extension needs too) reports each row the connection inserts,
** updates or deletes, with the row's old and new values.  The hook only
** notes the change in memory (it may not run SQL); fs_capture__flush()
** writes the notes to fs_change, 64 rows per INSERT statement, before the
** write's transaction commits:
**   insert   one 'I' row, val NULL: its fields are the record's, but for
**            those edited since, which had the 'old' of their first 'U'
**            row after it (fs_capture__creations() puts it together, and
**            fs_capture__settle() writes it into val before a push)
**   update   one 'U' row per field whose value really changed (old IS NOT
**            new), val = the new value as JSON, old = the value before.
**            The library's own UPDATE of a record notes them in its WHERE
**            clause instead (fs_note_update(), where the old values cost
**            nothing to read), and the hook leaves that row alone
**   delete   one 'D' row (the tombstone), val = the deleted record's
**            fields as a JSON object (the creation of a record deleted
**            before it was pushed is put together from it)
** Each row is stamped at the flush with the next HLC and the device:
** device '' is this replica's own (fs_meta 'device', which never changes
** for a replica), read back as its id (fs_capture__device), as cr-sqlite
** keeps the local site as ordinal 0: the 36 bytes of the id on every row
** were a quarter of the log, and the log's pages a third of what an
** update's commit writes (BENCHMARKS.md).
** The log thus says exactly what each record was created with and each
** change, as the capture triggers before it did, without writing every
** created record a second time: that copy was most of the triggers' cost
** (2.7x a plain INSERT; BENCHMARKS.md).
**
** The library flushes at the end of every write call (client/replica.c,
** fs_replica__tx_end) and before every COMMIT.  The commit hook is the net
** under that: a transaction that would commit with notes not yet written
** is rolled back instead, so a write never reaches the disk without its
** log rows.  A write made by another program (the sqlite3 shell) is not
** captured: replicas are written through the library only.
**
** Capture is switched off (fs_capture.on = 0) while the sync engine
** applies changes that came from elsewhere.  The only trigger left is the
** guard that refuses a change of a record's id.
*/
#ifndef FS_CAPTURE_H
#define FS_CAPTURE_H

#include <stdint.h>
#include <sqlite3.h>

#include "buf.h"
#include "err.h"
#include "hlc.h"
#include "schema.h"
#include "uuid.h"

/* Bumped when the capture machinery installed in a replica changes: the
** replica records it (fs_meta 'capture_version') and is re-equipped. */
#define FS_CAPTURE_GENERATION 2

/* Where a note's string sits in the arena (by offset: the arena moves as
** it grows); off == (size_t)-1: NULL. */
typedef struct fs_capture_str {
	size_t off, len;
} fs_capture_str;

/* A change noted by the hook, waiting for the flush. */
typedef struct fs_capture_note {
	const fs_table *t;
	char op;             /* 'I', 'U' or 'D' */
	int col;             /* 'U': index into t->cols */
	fs_capture_str rid, val, old;
} fs_capture_note;

typedef struct fs_capture {
	fs_hlc clock;
	char device[FS_UUID_LEN + 1];
	int on;
	sqlite3 *db;
	/* Whether the clock has been synced with the database in the current
	** write transaction.  Several processes may write one replica (an app
	** and its sync service, two CLI calls): the first stamp of every
	** transaction re-reads the last HLC written, under the write lock, so
	** no two changes ever share a stamp.  Commit and rollback hooks clear
	** it. */
	int synced;
	int64_t base;  /* server-log position seen (fs_meta 'cursor') */

	/* Set by fs_capture__bind(): the synced tables, and where each of
	** their fields sits in the SQL row (the hook reads by position). */
	const fs_schema *schema;
	int *idpos;          /* per table: the id column's position */
	int **pos;           /* per table, per field: its position */

	/* The table of an UPDATE the library is running, which notes its
	** changes itself (fs_capture__self), and the row it noted, by rowid:
	** the hook leaves that row alone. */
	const fs_table *self_t;
	int self_noted;
	sqlite3_int64 self_rowid;

	fs_capture_note *notes;
	size_t n, alloc;
	fs_buf arena;
	int failed;          /* the hook could not note a change */
	char why[96];
	sqlite3_stmt *ins[3];  /* INSERTs of 64, 8 and 1 log rows */
	size_t last_ti;          /* the table the hook saw last */
} fs_capture;

/* The device of a log row whose device column reads dev: '' is this
** replica's own. */
const char *fs_capture__device(const fs_capture *cap, const char *dev);

/* Registers the commit hooks and the SQL functions fs_hlc_next(),
** fs_device() and fs_base() (for log rows written in SQL, such as a
** conflict's resolution) and fs_note_update() (the library's updates). */
int fs_capture__register(sqlite3 *db, fs_capture *cap, fs_err *e);
/* Starts capturing the synced tables of s (which must outlive cap):
** installs the pre-update hook (when capture is on).  FS_ECORRUPT when a
** table lacks a field s names, or a text field's column would store
** numbers (fs_note_update relies on bound values being stored as they
** are). */
int fs_capture__bind(fs_capture *cap, const fs_schema *s, fs_err *e);
/* Switches capture on or off (the sync engine applying remote changes);
** returns the old state. */
int fs_capture__switch(fs_capture *cap, int on);
/* Writes the oldest notes to fs_change: all of them, or (all == 0) only
** whole 64-row statements' worth, keeping the rest for later.  On failure
** the statements that went through are in the log and the rest wait. */
int fs_capture__flush(fs_capture *cap, int all, fs_err *e);
/* Tells capture that the library's UPDATE of one record of t is about to
** run, noting its changes itself by calling fs_note_update() in its WHERE
** clause (see capture.c), at most FS_CAPTURE_NOTE_FIELDS fields a call;
** cleared with t == NULL.  Every other row the statement may write is
** noted by the hook as usual. */
#define FS_CAPTURE_NOTE_FIELDS 8
void fs_capture__self(fs_capture *cap, const fs_table *t);
/* How many notes are waiting; discard() drops those after the mark (the
** writes they describe were rolled back: a failed statement, or a
** savepoint, which starts with none waiting). */
size_t fs_capture__mark(const fs_capture *cap);
void fs_capture__discard(fs_capture *cap, size_t mark);
void fs_capture__free(fs_capture *cap);

/* (Re)creates the id guard trigger of every table, drops any older
** capture triggers, and adds fs_change's 'old' column (local to a
** replica, so not a schema migration); call inside the transaction that
** migrated the schema. */
int fs_capture__install(sqlite3 *db, const fs_schema *s, fs_err *e);

/* The fields of the creations logged without them ('I', val NULL) after
** log position after, at most max of them, in log order: cb(payload,
** seq, json) for each; a non-zero return stops the walk and is returned
** (negative: an error cb set in e).  *last is the seq of the max-th
** creation (the next window starts after it), or INT64_MAX when there are
** no more.  A creation whose record is gone without a 'D' row to tell its
** fields (it cannot happen through the library) is left out.  One pass
** over the log from after on, memory for max creations: a replica with a
** million pending creations walks them window by window. */
typedef int (*fs_capture_creation_cb)(void *payload, int64_t seq,
                                      const char *json);
int fs_capture__creations(sqlite3 *db, const fs_schema *s, int64_t after,
                          size_t max, int64_t *last,
                          fs_capture_creation_cb cb, void *payload,
                          fs_err *e);
/* Writes the fields of the window creations after log position after
** into val; *last as for fs_capture__creations.  Run inside a write
** transaction, window by window (each its own transaction: a savepoint
** keeps a copy of every page it changes), before the log is pushed.
** FS_CAPTURE_SETTLE_WINDOW is ~10 MB of creations. */
#define FS_CAPTURE_SETTLE_WINDOW 65536
int fs_capture__settle(sqlite3 *db, const fs_schema *s, int64_t after,
                       size_t window, int64_t *last, fs_err *e);

#endif
