/*
** csv.h -- RFC 4180 CSV reading and writing.
**
** The reader takes a FILE*, strips a UTF-8 byte-order mark, accepts LF or
** CRLF line ends and quoted fields with embedded commas, quotes and line
** breaks, checks that the text is valid UTF-8, and caps the size of a
** record so that a malformed file cannot make it allocate without bound.
** Errors say which line (1-based, counting physical lines) and field.
*/
#ifndef FS_CSV_H
#define FS_CSV_H

#include <stdio.h>
#include <stdint.h>

#include "buf.h"

#define FS_CSV_MAX_RECORD (16u << 20)
#define FS_CSV_MAX_FIELDS 4096

typedef struct fs_csv_reader {
	FILE *f;
	int64_t line;        /* physical line where the current record starts */
	int64_t next_line;   /* physical line the next record starts on */
	int started;
	fs_buf data;         /* field bytes, each NUL-terminated */
	size_t offs[FS_CSV_MAX_FIELDS];
	size_t nfields;
	char err[256];
} fs_csv_reader;

void fs_csv__reader_init(fs_csv_reader *r, FILE *f);
void fs_csv__reader_free(fs_csv_reader *r);
/* Reads the next record: 1 when one was read, 0 at end of input, -1 on a
** malformed record (r->err says why and where). */
int fs_csv__read(fs_csv_reader *r);
/* Field i of the current record (0 <= i < r->nfields). */
const char *fs_csv__field(const fs_csv_reader *r, size_t i);

/* Appends one field, quoted when it holds a comma, quote, CR or LF, or
** begins or ends with a space. */
int fs_csv__write_field(fs_buf *b, const char *s);

/* 1 if the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
int fs_utf8__valid(const char *s, size_t n);

#endif
