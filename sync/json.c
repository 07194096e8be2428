/*
** json.c -- canonical JSON string writing.  See json.h.
*/
#include "json.h"

#include <string.h>

int fs_json__strn(fs_buf *b, const char *s, size_t n)
{
	size_t i, run = 0;

	/* Most text needs no escape: one copy, quotes included (change
	** capture writes two values per edit). */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	if (i == n) {
		if (fs_buf_reserve(b, n + 2) < 0)
			return -1;
		b->ptr[b->len++] = '"';
		if (n)
			memcpy(b->ptr + b->len, s, n);
		b->len += n;
		b->ptr[b->len++] = '"';
		b->ptr[b->len] = '\0';
		return 0;
	}
	/* s[0..i) needs none: the first escape is at i. */
	fs_buf_putc(b, '"');
	for (run = i; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char tmp[8];

		switch (c) {
		case '"':  esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (c < 0x20) {
				static const char hex[] = "0123456789abcdef";
				memcpy(tmp, "\\u00", 4);
				tmp[4] = hex[c >> 4];
				tmp[5] = hex[c & 15];
				tmp[6] = '\0';
				esc = tmp;
			}
		}
		if (esc) {
			fs_buf_put(b, s + i - run, run);
			run = 0;
			fs_buf_puts(b, esc);
		} else {
			run++;
		}
	}
	fs_buf_put(b, s + n - run, run);
	return fs_buf_putc(b, '"');
}

int fs_json__str(fs_buf *b, const char *s)
{
	return fs_json__strn(b, s, strlen(s));
}
