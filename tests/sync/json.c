/*
** json.c -- tests of sync/json.c: canonical string escaping.
*/
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static char *esc(const char *s)
{
	fs_buf b;

	fs_buf_init(&b, 0);
	CHECK(fs_json__str(&b, s) == 0);
	return fs_buf_detach(&b);
}

static char *escn(const char *s, size_t n)
{
	fs_buf b;

	fs_buf_init(&b, 0);
	CHECK(fs_json__strn(&b, s, n) == 0);
	return fs_buf_detach(&b);
}

#define CHECK_ESC(in, want)              \
	do {                             \
		char *got_ = esc(in);    \
		CHECK_STR(got_, want);   \
		free(got_);              \
	} while (0)

static void test_basic(void)
{
	CHECK_ESC("", "\"\"");
	CHECK_ESC("abc", "\"abc\"");
	CHECK_ESC("a b/c", "\"a b/c\"");           /* '/' is not escaped */
	CHECK_ESC("say \"hi\"", "\"say \\\"hi\\\"\"");
	CHECK_ESC("\"", "\"\\\"\"");
	CHECK_ESC("C:\\dir\\f", "\"C:\\\\dir\\\\f\"");
	CHECK_ESC("\\\"", "\"\\\\\\\"\"");
	CHECK_ESC("l1\nl2", "\"l1\\nl2\"");
	CHECK_ESC("\r\t\b\f", "\"\\r\\t\\b\\f\"");
}

static void test_control(void)
{
	CHECK_ESC("\x01", "\"\\u0001\"");
	CHECK_ESC("a\x01z", "\"a\\u0001z\"");
	CHECK_ESC("\x0b", "\"\\u000b\"");        /* vertical tab */
	CHECK_ESC("\x1b[0m", "\"\\u001b[0m\"");  /* escape */
	CHECK_ESC("\x1f", "\"\\u001f\"");
	CHECK_ESC("\x1f\x20", "\"\\u001f \"");   /* 0x20 is not a control */
	CHECK_ESC("\x7f", "\"\x7f\"");           /* DEL passes through */

	/* Every control char from 0x01 to 0x1f is escaped somehow, and
	** nothing below 0x20 is left raw in the output. */
	{
		int c, ok = 1;
		for (c = 1; c < 0x20; c++) {
			char in[2] = { (char)c, 0 };
			char *o = esc(in);
			size_t i;
			if (o[0] != '"' || o[1] != '\\' || o[strlen(o) - 1] != '"')
				ok = 0;
			for (i = 0; o[i]; i++)
				if ((unsigned char)o[i] < 0x20)
					ok = 0;
			free(o);
		}
		CHECK(ok);
	}

	/* strn: embedded NUL becomes \u0000, and n bounds the read. */
	{
		char *o = escn("a\0b", 3);
		CHECK_STR(o, "\"a\\u0000b\"");
		free(o);
		o = escn("abcdef", 3);
		CHECK_STR(o, "\"abc\"");
		free(o);
		o = escn("\"x", 1);
		CHECK_STR(o, "\"\\\"\"");
		free(o);
	}
}

static void test_utf8(void)
{
	CHECK_ESC("caf\xC3\xA9", "\"caf\xC3\xA9\"");
	CHECK_ESC("\xE2\x82\xAC 5", "\"\xE2\x82\xAC 5\"");
	CHECK_ESC("\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\"");
	CHECK_ESC("\xE4\xB8\xAD\"\xE6\x96\x87", "\"\xE4\xB8\xAD\\\"\xE6\x96\x87\"");
	/* U+2028 / U+2029 are valid in JSON strings and pass unchanged. */
	CHECK_ESC("\xE2\x80\xA8", "\"\xE2\x80\xA8\"");
}

static void test_append(void)
{
	fs_buf b;

	/* Appends after existing content; two strings in a row. */
	fs_buf_init(&b, 0);
	fs_buf_puts(&b, "{");
	CHECK(fs_json__str(&b, "k") == 0);
	fs_buf_putc(&b, ':');
	CHECK(fs_json__str(&b, "v\n") == 0);
	fs_buf_putc(&b, '}');
	CHECK_STR(b.ptr, "{\"k\":\"v\\n\"}");
	fs_buf_free(&b);

	/* Same input, same bytes (canonical). */
	{
		char *x = esc("m\xC3\xBCller \"\\\x02\n");
		char *y = esc("m\xC3\xBCller \"\\\x02\n");
		CHECK(strcmp(x, y) == 0);
		CHECK_STR(x, "\"m\xC3\xBCller \\\"\\\\\\u0002\\n\"");
		free(x);
		free(y);
	}

	/* A long string mixing runs and escapes. */
	{
		char in[3001], *o;
		size_t i;
		int ok = 1;
		for (i = 0; i < 3000; i++)
			in[i] = (i % 10 == 9) ? '"' : 'a';
		in[3000] = '\0';
		o = esc(in);
		CHECK(strlen(o) == 2 + 2700 + 300 * 2);
		for (i = 1; i + 1 < strlen(o); i += 11)
			if (memcmp(o + i, "aaaaaaaaa\\\"", 11) != 0)
				ok = 0;
		CHECK(ok);
		free(o);
	}

	/* A capped buffer: failure is reported, content stays bounded. */
	fs_buf_init(&b, 8);
	CHECK(fs_json__str(&b, "0123456789") == -1);
	CHECK(b.failed);
	CHECK(b.len <= 8);
	fs_buf_free(&b);
	fs_buf_init(&b, 8);
	CHECK(fs_json__str(&b, "\x01\x01") == -1);   /* 14 bytes escaped */
	CHECK(b.len <= 8);
	fs_buf_free(&b);
	fs_buf_init(&b, 8);
	CHECK(fs_json__str(&b, "123456") == 0);       /* exactly 8 */
	CHECK_STR(b.ptr, "\"123456\"");
	fs_buf_free(&b);
}

int main(void)
{
	test_basic();
	test_control();
	test_utf8();
	test_append();
	return CHECK_EXIT();
}
