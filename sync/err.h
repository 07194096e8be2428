/*
** err.h -- an error code with its one-line message.
**
** Each handle (a replica, later a server connection) owns one fs_err; a
** failing function fills it and returns the code, and callers pass the
** code up unchanged so the first, most precise message survives.
*/
#ifndef FS_ERR_H
#define FS_ERR_H

#include <sqlite3.h>

typedef struct fs_err {
	int code;
	char msg[512];
} fs_err;

/* Sets the message and returns code (a negative FS_E* value). */
int fs_err__set(fs_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps an SQLite failure to an FS_E* code, with 'what' and SQLite's
** message (disk full, corrupt file and constraint failures get their own
** codes and words). */
int fs_err__sqlite(fs_err *e, sqlite3 *db, int rc, const char *what);
/* Puts context in front of the message already set ("line 3: ..."),
** keeping the code. Returns the code. */
int fs_err__prefix(fs_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fs_err__clear(fs_err *e);

#endif
