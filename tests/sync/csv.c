/*
** csv.c -- tests of sync/csv.c: the RFC 4180 reader (quoting, line ends,
** line numbers, BOM, UTF-8 checks, size caps), the field writer, and
** fs_utf8__valid.
*/
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* A read-only stream holding the n bytes at s. */
static FILE *stream_n(const char *s, size_t n)
{
	FILE *f = tmpfile();

	if (!f) {
		perror("tmpfile");
		exit(2);
	}
	if (n && fwrite(s, 1, n, f) != n) {
		perror("fwrite");
		exit(2);
	}
	rewind(f);
	return f;
}

static FILE *stream(const char *s)
{
	return stream_n(s, strlen(s));
}

/* The reader is large (offs[]); keep it off the stack. */
static fs_csv_reader R;

static void open_r(const char *s)
{
	fs_csv__reader_init(&R, stream(s));
}

static void close_r(void)
{
	FILE *f = R.f;
	fs_csv__reader_free(&R);
	fclose(f);
}

static void test_plain(void)
{
	open_r("id,name,amount\n1,Ann,12.50\n2,Bob,\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 3);
	CHECK(R.line == 1);
	CHECK_STR(fs_csv__field(&R, 0), "id");
	CHECK_STR(fs_csv__field(&R, 1), "name");
	CHECK_STR(fs_csv__field(&R, 2), "amount");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 3 && R.line == 2);
	CHECK_STR(fs_csv__field(&R, 0), "1");
	CHECK_STR(fs_csv__field(&R, 1), "Ann");
	CHECK_STR(fs_csv__field(&R, 2), "12.50");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 3 && R.line == 3);
	CHECK_STR(fs_csv__field(&R, 2), "");   /* trailing empty field */
	CHECK(fs_csv__read(&R) == 0);
	CHECK(fs_csv__read(&R) == 0);          /* EOF stays EOF */
	close_r();

	/* No newline after the last record. */
	open_r("a,b\nc,d");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 2 && R.line == 2);
	CHECK_STR(fs_csv__field(&R, 0), "c");
	CHECK_STR(fs_csv__field(&R, 1), "d");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* Empty input. */
	open_r("");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* Leading/trailing empty fields and a single-field record. */
	open_r(",x,\nsolo\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 3);
	CHECK_STR(fs_csv__field(&R, 0), "");
	CHECK_STR(fs_csv__field(&R, 1), "x");
	CHECK_STR(fs_csv__field(&R, 2), "");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 1 && R.line == 2);
	CHECK_STR(fs_csv__field(&R, 0), "solo");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* Spaces are data in unquoted fields. */
	open_r(" a , b \n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK_STR(fs_csv__field(&R, 0), " a ");
	CHECK_STR(fs_csv__field(&R, 1), " b ");
	close_r();
}

static void test_quoted(void)
{
	open_r("\"Smith, John\",\"say \"\"hi\"\"\",\"\",plain\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 4);
	CHECK_STR(fs_csv__field(&R, 0), "Smith, John");
	CHECK_STR(fs_csv__field(&R, 1), "say \"hi\"");
	CHECK_STR(fs_csv__field(&R, 2), "");
	CHECK_STR(fs_csv__field(&R, 3), "plain");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* A field that is only a doubled quote; a quoted field at EOF. */
	open_r("\"\"\"\",\"end\"");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 0), "\"");
	CHECK_STR(fs_csv__field(&R, 1), "end");
	CHECK(fs_csv__read(&R) == 0);
	close_r();
}

static void test_newlines(void)
{
	/* Embedded LF: the record's line is where it starts, and the
	** following record's line counts the embedded break. */
	open_r("a,b\n\"x\ny\",z\nc,d\n\"1\n2\n3\"\ne\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 1);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 2);
	CHECK(R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 0), "x\ny");
	CHECK_STR(fs_csv__field(&R, 1), "z");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 4);
	CHECK_STR(fs_csv__field(&R, 0), "c");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 5);
	CHECK_STR(fs_csv__field(&R, 0), "1\n2\n3");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 8);
	CHECK_STR(fs_csv__field(&R, 0), "e");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* CRLF line ends, and CRLF inside a quoted field (kept as is). */
	open_r("h1,h2\r\n\"p\r\nq\",r\r\ns,t\r\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 1 && R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 1), "h2");   /* no stray CR */
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 2 && R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 0), "p\r\nq");
	CHECK_STR(fs_csv__field(&R, 1), "r");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 4 && R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 0), "s");
	CHECK_STR(fs_csv__field(&R, 1), "t");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* A blank line is one record with one empty field. */
	open_r("a\n\nb\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 2 && R.nfields == 1);
	CHECK_STR(fs_csv__field(&R, 0), "");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 3);
	CHECK_STR(fs_csv__field(&R, 0), "b");
	close_r();
}

static void test_bom(void)
{
	open_r("\xEF\xBB\xBFid,name\n1,\xC3\xA9\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 1);
	CHECK_STR(fs_csv__field(&R, 0), "id");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 2);
	CHECK_STR(fs_csv__field(&R, 1), "\xC3\xA9");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* A BOM alone is an empty file. */
	open_r("\xEF\xBB\xBF");
	CHECK(fs_csv__read(&R) == 0);
	close_r();

	/* Only the leading BOM is stripped; U+FEFF later is data. */
	open_r("a,\xEF\xBB\xBF" "b\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK_STR(fs_csv__field(&R, 1), "\xEF\xBB\xBF" "b");
	close_r();

	/* A BOM followed by a quoted field. */
	open_r("\xEF\xBB\xBF\"q,1\",2\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 2);
	CHECK_STR(fs_csv__field(&R, 0), "q,1");
	close_r();

	/* A file whose first character is U+FF71 (EF BD B1) -- valid UTF-8
	** that merely starts with the BOM's first byte -- is not a BOM. */
	open_r("\xEF\xBD\xB1,x\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 2);
	if (R.nfields == 2) {
		CHECK_STR(fs_csv__field(&R, 0), "\xEF\xBD\xB1");
		CHECK_STR(fs_csv__field(&R, 1), "x");
	}
	close_r();
}

static void test_errors(void)
{
	/* Unterminated quote: the error names the line the record starts. */
	open_r("a,b\nc,\"never closed\nmore\nlines\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 2") != NULL);
	CHECK(strstr(R.err, "field 2") != NULL);
	close_r();

	/* Text after a closing quote. */
	open_r("x\n\"abc\"def,1\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 2") != NULL);
	CHECK(strstr(R.err, "after closing quote") != NULL);
	close_r();

	/* A space after the closing quote is text too. */
	open_r("\"abc\" ,1\n");
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 1") != NULL);
	close_r();

	/* A quote in the middle of an unquoted field. */
	open_r("ab\"c\"\n");
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 1") != NULL);
	close_r();

	/* Invalid UTF-8 in the third field of line 3. */
	open_r("a\nb\nc,d,\xff\xfe\n");
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 3") != NULL);
	CHECK(strstr(R.err, "field 3") != NULL);
	CHECK(strstr(R.err, "UTF-8") != NULL);
	close_r();

	/* Invalid UTF-8 inside a quoted field. */
	open_r("\"ok\xC0\xAF\"\n");
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "UTF-8") != NULL);
	close_r();

	/* Overlong and surrogate encodings through the reader. */
	open_r("\xE0\x80\xAF\n");
	CHECK(fs_csv__read(&R) == -1);
	close_r();
	open_r("x,\xED\xA0\x80\n");
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "UTF-8") != NULL);
	close_r();

	/* A truncated multi-byte sequence at EOF. */
	open_r("x,\xE2\x82");
	CHECK(fs_csv__read(&R) == -1);
	close_r();

	/* A broken BOM. */
	open_r("\xEF\xBB" "a\n");
	CHECK(fs_csv__read(&R) == -1);
	close_r();
}

static void test_big_record(void)
{
	size_t n = FS_CSV_MAX_RECORD + 10;
	char *s = malloc(n + 1);
	FILE *f;

	CHECK(s != NULL);
	if (!s)
		return;

	/* Over the cap: an error, not an unbounded allocation. */
	memset(s, 'x', n);
	s[n] = '\n';
	f = stream_n(s, n + 1);
	fs_csv__reader_init(&R, f);
	CHECK(fs_csv__read(&R) == -1);
	CHECK(strstr(R.err, "line 1") != NULL);
	CHECK(strstr(R.err, "larger") != NULL);
	CHECK(R.data.len <= FS_CSV_MAX_RECORD);
	fs_csv__reader_free(&R);
	fclose(f);

	/* Over the cap within a quoted field spread over many fields. */
	{
		size_t i, o = 0;
		char *q = malloc((size_t)2000 * 9003);
		CHECK(q != NULL);
		if (q) {
			/* 2000 quoted fields of 9000 bytes = 18 MB > 16 MiB */
			for (i = 0; i < 2000; i++) {
				q[o++] = '"';
				memset(q + o, 'y', 9000);
				o += 9000;
				q[o++] = '"';
				q[o++] = i + 1 < 2000 ? ',' : '\n';
			}
			f = stream_n(q, o);
			fs_csv__reader_init(&R, f);
			CHECK(fs_csv__read(&R) == -1);
			CHECK(strstr(R.err, "larger") != NULL);
			fs_csv__reader_free(&R);
			fclose(f);
			free(q);
		}
	}

	/* A large record under the cap is fine: 1 MiB field. */
	memset(s, 'x', 1u << 20);
	s[1u << 20] = '\n';
	memcpy(s + (1u << 20) + 1, "next\n", 5);
	f = stream_n(s, (1u << 20) + 6);
	fs_csv__reader_init(&R, f);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == 1);
	CHECK(strlen(fs_csv__field(&R, 0)) == 1u << 20);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.line == 2);
	CHECK_STR(fs_csv__field(&R, 0), "next");
	fs_csv__reader_free(&R);
	fclose(f);
	free(s);
}

static void test_many_fields(void)
{
	/* n empty fields = n-1 commas and a newline. */
	size_t n;

	for (n = FS_CSV_MAX_FIELDS - 1; n <= FS_CSV_MAX_FIELDS + 2; n++) {
		char *s = malloc(n + 8);
		FILE *f;
		int rc;

		if (!s) {
			CHECK(s != NULL);
			return;
		}
		memset(s, ',', n - 1);
		s[n - 1] = '\n';
		f = stream_n(s, n);
		fs_csv__reader_init(&R, f);
		rc = fs_csv__read(&R);
		if (n <= FS_CSV_MAX_FIELDS) {
			CHECK(rc == 1);
			CHECK(R.nfields == n);
			if (rc == 1)
				CHECK_STR(fs_csv__field(&R, n - 1), "");
		} else {
			CHECK(rc == -1);
			CHECK(strstr(R.err, "fields") != NULL);
		}
		fs_csv__reader_free(&R);
		fclose(f);
		free(s);
	}
}

static void test_utf8(void)
{
	static const struct { const char *s; int ok; } t[] = {
		{ "", 1 },
		{ "plain ascii", 1 },
		{ "\xC3\xA9", 1 },                 /* U+00E9 */
		{ "\xC2\x80", 1 },                 /* U+0080, smallest 2-byte */
		{ "\xDF\xBF", 1 },                 /* U+07FF */
		{ "\xE0\xA0\x80", 1 },             /* U+0800, smallest 3-byte */
		{ "\xE2\x82\xAC", 1 },             /* U+20AC euro */
		{ "\xED\x9F\xBF", 1 },             /* U+D7FF, just below surrogates */
		{ "\xEE\x80\x80", 1 },             /* U+E000, just above */
		{ "\xEF\xBF\xBF", 1 },             /* U+FFFF */
		{ "\xF0\x90\x80\x80", 1 },         /* U+10000 */
		{ "\xF0\x9F\x98\x80", 1 },         /* U+1F600 */
		{ "\xF4\x8F\xBF\xBF", 1 },         /* U+10FFFF */
		{ "\x80", 0 },                     /* lone continuation */
		{ "\xBF", 0 },
		{ "\xC0\x80", 0 },                 /* overlong NUL */
		{ "\xC0\xAF", 0 },                 /* overlong '/' */
		{ "\xC1\xBF", 0 },                 /* overlong U+007F */
		{ "\xE0\x80\xAF", 0 },             /* overlong '/' */
		{ "\xE0\x9F\xBF", 0 },             /* overlong U+07FF */
		{ "\xF0\x80\x80\xAF", 0 },         /* overlong '/' */
		{ "\xF0\x8F\xBF\xBF", 0 },         /* overlong U+FFFF */
		{ "\xED\xA0\x80", 0 },             /* U+D800 high surrogate */
		{ "\xED\xBF\xBF", 0 },             /* U+DFFF low surrogate */
		{ "\xED\xA0\xBD\xED\xB8\x80", 0 }, /* CESU-8 surrogate pair */
		{ "\xF4\x90\x80\x80", 0 },         /* U+110000 */
		{ "\xF5\x80\x80\x80", 0 },
		{ "\xF8\x88\x80\x80\x80", 0 },     /* 5-byte form */
		{ "\xFE", 0 },
		{ "\xFF", 0 },
		{ "\xC3", 0 },                     /* truncated */
		{ "\xE2\x82", 0 },
		{ "\xF0\x9F\x98", 0 },
		{ "\xC3" "A", 0 },                 /* bad continuation */
		{ "\xE2\x28\xA1", 0 },
		{ "a\xC3\xA9z\xE2\x82\xAC", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		int got = fs_utf8__valid(t[i].s, strlen(t[i].s));
		if (got != t[i].ok)
			fprintf(stderr, "utf8 case %zu\n", i);
		CHECK(got == t[i].ok);
	}
	/* Length is honoured: the bad byte beyond n is not looked at, and a
	** sequence cut by n is rejected. */
	CHECK(fs_utf8__valid("ab\xff", 2) == 1);
	CHECK(fs_utf8__valid("\xE2\x82\xAC", 2) == 0);
	CHECK(fs_utf8__valid("\xE2\x82\xAC", 0) == 1);
	/* Embedded NUL is a valid (ASCII) byte. */
	CHECK(fs_utf8__valid("a\0b", 3) == 1);
}

static void test_write(void)
{
	static const struct { const char *in, *out; } w[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "\"", "\"\"\"\"" },
		{ "l1\nl2", "\"l1\nl2\"" },
		{ "cr\rx", "\"cr\rx\"" },
		{ "crlf\r\n", "\"crlf\r\n\"" },
		{ " lead", "\" lead\"" },
		{ "trail ", "\"trail \"" },
		{ "mid space", "mid space" },
		{ "\xC3\xA9t\xC3\xA9", "\xC3\xA9t\xC3\xA9" },
	};
	static const char *rt[] = {
		"plain", "", "a,b", "say \"hi\"", "\"", "\"\"", ",", ",,",
		"l1\nl2", "cr\rx", "\r\n", "x\r\n\r\ny", " lead", "trail ", " ",
		"\xC3\xA9,\xE2\x82\xAC", "\"quoted, with\nnewline\"",
		"12.50", "end",
	};
	size_t i, n = sizeof(rt) / sizeof(*rt);
	fs_buf b;
	FILE *f;

	fs_buf_init(&b, 0);
	for (i = 0; i < sizeof(w) / sizeof(*w); i++) {
		fs_buf_clear(&b);
		CHECK(fs_csv__write_field(&b, w[i].in) == 0);
		CHECK_STR(b.ptr ? b.ptr : "", w[i].out);
	}

	/* Round trip: two records of all the fields, written then read. */
	fs_buf_clear(&b);
	for (i = 0; i < n; i++) {
		if (i)
			fs_buf_putc(&b, ',');
		fs_csv__write_field(&b, rt[i]);
	}
	fs_buf_puts(&b, "\r\n");
	for (i = n; i-- > 0;) {
		fs_csv__write_field(&b, rt[i]);
		fs_buf_putc(&b, i ? ',' : '\n');
	}
	CHECK(!b.failed);
	f = stream_n(b.ptr, b.len);
	fs_csv__reader_init(&R, f);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == n);
	if (R.nfields == n)
		for (i = 0; i < n; i++)
			CHECK_STR(fs_csv__field(&R, i), rt[i]);
	CHECK(fs_csv__read(&R) == 1);
	CHECK(R.nfields == n);
	if (R.nfields == n)
		for (i = 0; i < n; i++)
			CHECK_STR(fs_csv__field(&R, n - 1 - i), rt[i]);
	CHECK(fs_csv__read(&R) == 0);
	fs_csv__reader_free(&R);
	fclose(f);

	/* A write into a full buffer reports failure. */
	fs_buf_free(&b);
	fs_buf_init(&b, 4);
	CHECK(fs_csv__write_field(&b, "a,bcdef") == -1);
	CHECK(b.failed);
	CHECK(b.len <= 4);
	fs_buf_free(&b);
}

int main(void)
{
	test_plain();
	test_quoted();
	test_newlines();
	test_bom();
	test_errors();
	test_big_record();
	test_many_fields();
	test_utf8();
	test_write();
	return CHECK_EXIT();
}
