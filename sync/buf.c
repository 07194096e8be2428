/*
** buf.c -- growable, capped byte buffer.  See buf.h.
*/
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fs_buf_init(fs_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = b->cap = 0;
	b->max = max ? max : FS_BUF_DEFAULT_MAX;
	b->failed = 0;
}

void fs_buf_free(fs_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

void fs_buf_clear(fs_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

static int grow(fs_buf *b, size_t extra)
{
	size_t max = b->max ? b->max : FS_BUF_DEFAULT_MAX;
	size_t need, ncap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > max || b->len > max - extra) {
		b->failed = 1;
		return -1;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	p = realloc(b->ptr, ncap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->ptr = p;
	b->cap = ncap;
	return 0;
}

int fs_buf_reserve(fs_buf *b, size_t extra)
{
	return grow(b, extra);
}

int fs_buf_put(fs_buf *b, const void *data, size_t len)
{
	if (grow(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int fs_buf_puts(fs_buf *b, const char *s)
{
	return fs_buf_put(b, s, strlen(s));
}

int fs_buf_putc(fs_buf *b, char c)
{
	return fs_buf_put(b, &c, 1);
}

int fs_buf_vprintf(fs_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || grow(b, (size_t)n) < 0) {
		b->failed = 1;
		return -1;
	}
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int fs_buf_printf(fs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = fs_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *fs_buf_detach(fs_buf *b)
{
	char *p = b->ptr;

	if (!p)
		p = calloc(1, 1);
	b->ptr = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
	return p;
}
