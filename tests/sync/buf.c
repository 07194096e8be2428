/*
** buf.c -- tests of sync/buf.c: growth, printf, the hard cap, detach.
*/
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_init(void)
{
	fs_buf b = FS_BUF_INIT;
	fs_buf c;

	CHECK(b.ptr == NULL && b.len == 0 && b.failed == 0);
	/* A FS_BUF_INIT buffer (max 0) works with the default cap. */
	CHECK(fs_buf_puts(&b, "hi") == 0);
	CHECK_STR(b.ptr, "hi");
	CHECK(b.len == 2);
	fs_buf_free(&b);
	CHECK(b.ptr == NULL && b.len == 0);
	fs_buf_free(&b);           /* twice is harmless */
	fs_buf_free(NULL);

	fs_buf_init(&c, 0);
	CHECK(c.max == FS_BUF_DEFAULT_MAX);
	CHECK(c.ptr == NULL && c.len == 0 && c.failed == 0);
	fs_buf_free(&c);
	fs_buf_init(&c, 123);
	CHECK(c.max == 123);
	fs_buf_free(&c);
}

static void test_growth(void)
{
	fs_buf b;
	size_t i;
	int ok = 1;

	fs_buf_init(&b, 0);
	/* An empty put still gives a NUL-terminated string. */
	CHECK(fs_buf_put(&b, "", 0) == 0);
	CHECK(b.ptr != NULL && b.ptr[0] == '\0' && b.len == 0);

	/* 10000 single bytes: forces many reallocations. */
	for (i = 0; i < 10000; i++)
		if (fs_buf_putc(&b, (char)('a' + i % 26)) != 0)
			ok = 0;
	CHECK(ok);
	CHECK(b.len == 10000);
	CHECK(b.cap > b.len);
	CHECK(b.ptr[10000] == '\0');
	CHECK(strlen(b.ptr) == 10000);
	for (i = 0; i < 10000; i++)
		if (b.ptr[i] != (char)('a' + i % 26))
			ok = 0;
	CHECK(ok);

	/* put with embedded NUL keeps the bytes and the length. */
	fs_buf_clear(&b);
	CHECK(b.len == 0 && b.ptr[0] == '\0');
	CHECK(fs_buf_put(&b, "a\0b", 3) == 0);
	CHECK(b.len == 3);
	CHECK(memcmp(b.ptr, "a\0b", 4) == 0);

	/* One big append. */
	{
		char *big = malloc(100000);
		CHECK(big != NULL);
		if (big) {
			memset(big, 'z', 100000);
			fs_buf_clear(&b);
			CHECK(fs_buf_put(&b, big, 100000) == 0);
			CHECK(b.len == 100000 && b.ptr[99999] == 'z' &&
			      b.ptr[100000] == '\0');
			free(big);
		}
	}
	fs_buf_free(&b);
}

static void test_printf(void)
{
	fs_buf b;
	char want[600];

	fs_buf_init(&b, 0);
	CHECK(fs_buf_printf(&b, "%d-%s", 42, "x") == 0);
	CHECK_STR(b.ptr, "42-x");
	CHECK(b.len == 4);
	CHECK(fs_buf_printf(&b, "|%05.1f|", 2.5) == 0);
	CHECK_STR(b.ptr, "42-x|002.5|");
	CHECK(b.len == strlen("42-x|002.5|"));
	/* An empty format is a successful no-op. */
	CHECK(fs_buf_printf(&b, "%s", "") == 0);
	CHECK(b.len == strlen("42-x|002.5|"));

	/* printf output longer than the initial capacity. */
	fs_buf_clear(&b);
	memset(want, 'q', 500);
	want[500] = '\0';
	CHECK(fs_buf_printf(&b, "[%s]", want) == 0);
	CHECK(b.len == 502 && b.ptr[0] == '[' && b.ptr[501] == ']' &&
	      b.ptr[502] == '\0' && b.ptr[250] == 'q');
	fs_buf_free(&b);

	/* printf into a fresh buffer. */
	fs_buf_init(&b, 0);
	CHECK(fs_buf_printf(&b, "%llu", 18446744073709551615ull) == 0);
	CHECK_STR(b.ptr, "18446744073709551615");
	fs_buf_free(&b);
}

static void test_cap(void)
{
	fs_buf b;

	fs_buf_init(&b, 10);
	CHECK(fs_buf_puts(&b, "0123456789") == 0);   /* exactly max: fine */
	CHECK(b.len == 10 && !b.failed);
	CHECK(fs_buf_putc(&b, 'x') == -1);           /* one past: refused */
	CHECK(b.failed);
	CHECK(b.len == 10);
	CHECK_STR(b.ptr, "0123456789");
	/* Sticky: even an append that would fit after a clear now fails. */
	CHECK(fs_buf_put(&b, "", 0) == -1);
	CHECK(fs_buf_printf(&b, "%s", "") == -1);
	CHECK(b.len == 10);
	/* clear() resets failed and the buffer is usable again. */
	fs_buf_clear(&b);
	CHECK(!b.failed && b.len == 0);
	CHECK(fs_buf_puts(&b, "abc") == 0);
	CHECK_STR(b.ptr, "abc");

	/* A single append larger than the room left fails whole: nothing
	** of it is written. */
	CHECK(fs_buf_puts(&b, "12345678") == -1);
	CHECK(b.failed);
	CHECK(b.len == 3);
	CHECK_STR(b.ptr, "abc");
	fs_buf_clear(&b);

	/* printf past the cap fails and leaves the content as it was. */
	CHECK(fs_buf_printf(&b, "%s", "hello") == 0);
	CHECK(fs_buf_printf(&b, "%d", 123456) == -1);
	CHECK(b.failed);
	CHECK(b.len == 5);
	CHECK_STR(b.ptr, "hello");
	fs_buf_clear(&b);

	/* A huge length (would overflow len + extra) is refused, not wrapped. */
	CHECK(fs_buf_puts(&b, "a") == 0);
	CHECK(fs_buf_put(&b, "b", (size_t)-1) == -1);
	CHECK(b.failed && b.len == 1);
	fs_buf_free(&b);

	/* Appending byte by byte into a cap stops at the cap. */
	{
		int i, fails = 0;
		fs_buf_init(&b, 100);
		for (i = 0; i < 1000; i++)
			if (fs_buf_putc(&b, 'x') < 0)
				fails++;
		CHECK(b.len == 100);
		CHECK(fails == 900);
		CHECK(strlen(b.ptr) == 100);
		fs_buf_free(&b);
	}
}

static void test_detach(void)
{
	fs_buf b;
	char *p;

	fs_buf_init(&b, 0);
	CHECK(fs_buf_puts(&b, "owned") == 0);
	p = fs_buf_detach(&b);
	CHECK_STR(p, "owned");
	CHECK(b.ptr == NULL && b.len == 0 && b.cap == 0 && !b.failed);
	free(p);

	/* The buffer is reusable after a detach. */
	CHECK(fs_buf_puts(&b, "again") == 0);
	CHECK_STR(b.ptr, "again");
	p = fs_buf_detach(&b);
	CHECK_STR(p, "again");
	free(p);

	/* Detaching an empty (never allocated) buffer gives "" to free. */
	p = fs_buf_detach(&b);
	CHECK(p != NULL);
	CHECK_STR(p, "");
	free(p);

	/* Detach also resets failed. */
	fs_buf_init(&b, 2);
	CHECK(fs_buf_puts(&b, "abc") == -1);
	CHECK(b.failed);
	p = fs_buf_detach(&b);
	CHECK(p != NULL);
	CHECK(!b.failed);
	free(p);
	fs_buf_free(&b);
}

int main(void)
{
	test_init();
	test_growth();
	test_printf();
	test_cap();
	test_detach();
	return CHECK_EXIT();
}
