/*
** buf.h -- a growable byte buffer with a hard size cap (curl's dynbuf).
**
** All text we build (JSON, CSV, SQL) and, later, all network input goes
** through an fs_buf, so that no outside input can make us allocate without
** bound.  The content is always NUL-terminated.
*/
#ifndef FS_BUF_H
#define FS_BUF_H

#include <stddef.h>
#include <stdarg.h>

typedef struct fs_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;   /* hard cap on len; 0 means FS_BUF_DEFAULT_MAX */
	int failed;   /* sticky: an append failed (out of memory or over cap) */
} fs_buf;

#define FS_BUF_DEFAULT_MAX ((size_t)1 << 30)
#define FS_BUF_INIT { NULL, 0, 0, 0, 0 }

void fs_buf_init(fs_buf *b, size_t max);
void fs_buf_free(fs_buf *b);
void fs_buf_clear(fs_buf *b);
/* Appends; return 0 or -1 (and set b->failed) on OOM or cap. */
int fs_buf_put(fs_buf *b, const void *data, size_t len);
int fs_buf_puts(fs_buf *b, const char *s);
int fs_buf_putc(fs_buf *b, char c);
/* Makes room for extra more bytes (and the NUL) without appending: the
** caller then writes at ptr + len itself; 0 or -1 as for fs_buf_put. */
int fs_buf_reserve(fs_buf *b, size_t extra);
int fs_buf_printf(fs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int fs_buf_vprintf(fs_buf *b, const char *fmt, va_list ap);
/* Hands the content to the caller (free()) and resets the buffer. */
char *fs_buf_detach(fs_buf *b);

#endif
