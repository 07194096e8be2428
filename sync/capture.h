/*
** capture.h -- change capture: triggers that log every local write.
**
** For each synced table the replica carries triggers (generated from the
** schema metadata, so they follow migrations) that append to fs_change in
** the same transaction as the write itself:
**   AFTER INSERT            one 'I' row, val = json_object(all fields)
**   AFTER UPDATE OF col     one 'U' row per field whose value really
**                           changed (old IS NOT new), val = json_quote(new)
**   AFTER DELETE            one 'D' row (the tombstone)
**   BEFORE UPDATE OF id     abort: ids never change
** Each row is stamped by the SQL functions fs_hlc_next() and fs_device(),
** which live on the connection and read the fs_capture state below.  A
** connection without them (say the sqlite3 shell) cannot write synced
** tables at all, which is what we want: no write escapes the log.
** Capture is switched off (fs_capturing() = 0) while the sync engine
** applies changes that came from elsewhere.
*/
#ifndef FS_CAPTURE_H
#define FS_CAPTURE_H

#include <stdint.h>
#include <sqlite3.h>

#include "err.h"
#include "hlc.h"
#include "schema.h"
#include "uuid.h"

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
} fs_capture;

/* Registers fs_hlc_next(), fs_device() and fs_capturing() on db, and the
** commit/rollback hooks that keep the clock in step with other writers. */
int fs_capture__register(sqlite3 *db, fs_capture *cap, fs_err *e);
/* (Re)creates the capture triggers of every table; call inside the
** transaction that migrated the schema. */
int fs_capture__install(sqlite3 *db, const fs_schema *s, fs_err *e);

#endif
