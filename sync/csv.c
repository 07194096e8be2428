/*
** csv.c -- CSV reader and writer.  See csv.h.
*/
#include "csv.h"

#include <string.h>

void fs_csv__reader_init(fs_csv_reader *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->next_line = 1;
	fs_buf_init(&r->data, FS_CSV_MAX_RECORD);
}

void fs_csv__reader_free(fs_csv_reader *r)
{
	fs_buf_free(&r->data);
}

const char *fs_csv__field(const fs_csv_reader *r, size_t i)
{
	return r->data.ptr + r->offs[i];
}

static int end_field(fs_csv_reader *r)
{
	if (r->nfields >= FS_CSV_MAX_FIELDS) {
		snprintf(r->err, sizeof(r->err),
		         "line %lld: more than %u fields", (long long)r->line,
		         FS_CSV_MAX_FIELDS);
		return -1;
	}
	if (fs_buf_putc(&r->data, '\0') < 0) {
		snprintf(r->err, sizeof(r->err),
		         "line %lld: record larger than %u bytes",
		         (long long)r->line, FS_CSV_MAX_RECORD);
		return -1;
	}
	return 0;
}

int fs_csv__read(fs_csv_reader *r)
{
	int c, quoted = 0, in_quotes = 0, after_quote = 0;
	size_t start = 0;

	fs_buf_clear(&r->data);
	r->nfields = 0;
	r->line = r->next_line;
	if (!r->started) {
		r->started = 1;
		c = getc(r->f);
		if (c == 0xEF) {
			int c2 = getc(r->f);
			int c3 = c2 == 0xBB ? getc(r->f) : EOF;

			if (c2 != 0xBB || c3 != 0xBF) {
				/* Not a BOM: text starting with U+F000..U+FFFF (or
				** junk).  Keep the bytes as data of the first field;
				** the UTF-8 check at the end of the field judges them. */
				fs_buf_putc(&r->data, (char)0xEF);
				if (c2 == 0xBB) {
					fs_buf_putc(&r->data, (char)0xBB);
					if (c3 != EOF)
						ungetc(c3, r->f);
				} else if (c2 != EOF) {
					ungetc(c2, r->f);
				}
			}
		} else if (c != EOF) {
			ungetc(c, r->f);
		}
	}
	c = getc(r->f);
	if (c == EOF && r->data.len == 0)
		return 0;
	r->offs[0] = 0;
	for (;; c = getc(r->f)) {
		if (in_quotes) {
			if (c == EOF) {
				snprintf(r->err, sizeof(r->err),
				         "line %lld, field %zu: quoted field not closed",
				         (long long)r->line, r->nfields + 1);
				return -1;
			}
			if (c == '"') {
				int d = getc(r->f);
				if (d == '"') {
					if (fs_buf_putc(&r->data, '"') < 0)
						goto too_big;
					continue;
				}
				if (d != EOF)
					ungetc(d, r->f);
				in_quotes = 0;
				after_quote = 1;
				continue;
			}
			if (c == '\n')
				r->next_line++;
			if (c == '\0') {
				snprintf(r->err, sizeof(r->err),
				         "line %lld, field %zu: NUL byte in text",
				         (long long)r->line, r->nfields + 1);
				return -1;
			}
			if (fs_buf_putc(&r->data, (char)c) < 0)
				goto too_big;
			continue;
		}
		if (c == ',' || c == '\n' || c == '\r' || c == EOF) {
			if (c == '\r') {
				int d = getc(r->f);
				if (d != '\n' && d != EOF)
					ungetc(d, r->f);
			}
			if (!fs_utf8__valid(r->data.ptr ? r->data.ptr + start : "",
			                    r->data.len - start)) {
				snprintf(r->err, sizeof(r->err),
				         "line %lld, field %zu: not valid UTF-8",
				         (long long)r->line, r->nfields + 1);
				return -1;
			}
			if (end_field(r) < 0)
				return -1;
			r->nfields++;
			start = r->data.len;
			if (c != ',') {
				r->next_line++;
				return 1;
			}
			if (r->nfields < FS_CSV_MAX_FIELDS)  /* else end_field() fails next */
				r->offs[r->nfields] = start;
			quoted = after_quote = 0;
			continue;
		}
		if (after_quote) {
			snprintf(r->err, sizeof(r->err),
			         "line %lld, field %zu: text after closing quote",
			         (long long)r->line, r->nfields + 1);
			return -1;
		}
		if (c == '"') {
			if (r->data.len != start || quoted) {
				snprintf(r->err, sizeof(r->err),
				         "line %lld, field %zu: quote inside an unquoted field",
				         (long long)r->line, r->nfields + 1);
				return -1;
			}
			quoted = in_quotes = 1;
			continue;
		}
		if (c == '\0') {
			/* A NUL would silently cut the field short downstream. */
			snprintf(r->err, sizeof(r->err),
			         "line %lld, field %zu: NUL byte in text",
			         (long long)r->line, r->nfields + 1);
			return -1;
		}
		if (fs_buf_putc(&r->data, (char)c) < 0)
			goto too_big;
	}
too_big:
	snprintf(r->err, sizeof(r->err), "line %lld: record larger than %u bytes",
	         (long long)r->line, FS_CSV_MAX_RECORD);
	return -1;
}

int fs_csv__write_field(fs_buf *b, const char *s)
{
	size_t n = strlen(s);
	int need = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');

	if (!need && !strpbrk(s, ",\"\r\n"))
		return fs_buf_put(b, s, n);
	fs_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			fs_buf_putc(b, '"');
		fs_buf_putc(b, *s);
	}
	return fs_buf_putc(b, '"');
}

int fs_utf8__valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;

	while (p < e) {
		unsigned c = *p++;
		unsigned need, min, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1; min = 0x80; cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2; min = 0x800; cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3; min = 0x10000; cp = c & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(e - p) < need)
			return 0;
		while (need--) {
			if ((*p & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p++ & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
	}
	return 1;
}
