/*
** err.c -- error codes with messages.  See err.h.
*/
#include "err.h"

#include <errno.h>
#include <string.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fieldsync.h"

int fs_err__set(fs_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int fs_err__sqlite(fs_err *e, sqlite3 *db, int rc, const char *what)
{
	const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_FULL:
		return fs_err__set(e, FS_EFULL, "%s: disk or database full (%s)",
		                   what, m);
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return fs_err__set(e, FS_ECORRUPT,
		                   "%s: database file is damaged or not a database (%s)",
		                   what, m);
	case SQLITE_CONSTRAINT:
		return fs_err__set(e, FS_EINVALID, "%s: %s", what, m);
	case SQLITE_CANTOPEN:
		return fs_err__set(e, FS_ERROR, "%s: cannot open database (%s)",
		                   what, m);
	case SQLITE_BUSY:
		return fs_err__set(e, FS_ETIMEOUT, "%s: database is busy (%s)",
		                   what, m);
	case SQLITE_IOERR: {
		/* The system's word when SQLite kept it ("No space left on
		** device", "File too large"); either way, say what it means. */
		int sys = db ? sqlite3_system_errno(db) : 0;
		if (sys == ENOSPC || sys == EFBIG || sys == EDQUOT)
			return fs_err__set(e, FS_EFULL, "%s: disk full (%s); nothing "
			                   "was saved", what, strerror(sys));
		return fs_err__set(e, FS_ERROR, "%s: %s%s%s%s; the disk may be full "
		                   "or failing, nothing was saved", what, m,
		                   sys ? " (" : "", sys ? strerror(sys) : "",
		                   sys ? ")" : "");
	}
	default:
		return fs_err__set(e, FS_ERROR, "%s: %s", what, m);
	}
}

int fs_err__prefix(fs_err *e, const char *fmt, ...)
{
	char old[sizeof(e->msg)];
	va_list ap;
	int n;

	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(e->msg) - 3) {
		size_t room = sizeof(e->msg) - (size_t)n;
		memcpy(e->msg + n, ": ", 3);
		memcpy(e->msg + n + 2, old, room - 3);
		e->msg[sizeof(e->msg) - 1] = '\0';
	}
	return e->code;
}

void fs_err__clear(fs_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}
