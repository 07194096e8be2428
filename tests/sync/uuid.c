/*
** uuid.c -- tests of sync/uuid.c: text form, version and variant bits,
** timestamp prefix, uniqueness, ordering, and fs_uuid__valid.
*/
#include "uuid.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Checks the 8-4-4-4-12 lower-case form, version 7, variant 10. */
static int well_formed(const char *u)
{
	size_t i;

	if (strlen(u) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return 0;
		} else if (hexval(u[i]) < 0) {
			return 0;
		}
	}
	if (u[14] != '7')
		return 0;
	/* variant: top two bits of byte 8 are 10 -> first hex digit 8..b */
	if ((hexval(u[19]) & 0xc) != 0x8)
		return 0;
	return 1;
}

static fs_rand RND;   /* zero-initialised, as the header asks */

static void test_format(void)
{
	char u[FS_UUID_LEN + 1];
	int i, ok = 1;

	memset(u, 'Z', sizeof(u));
	CHECK(fs_uuid__v7(u, 0x0123456789abull, &RND) == 0);
	CHECK(u[36] == '\0');
	CHECK(well_formed(u));
	CHECK(strncmp(u, "01234567-89ab-7", 15) == 0);
	CHECK(fs_uuid__valid(u));

	/* 1700000000000 ms = 0x018bcfe56800 (2023-11-14T22:13:20Z). */
	CHECK(fs_uuid__v7(u, 1700000000000ull, &RND) == 0);
	CHECK(strncmp(u, "018bcfe5-6800-7", 15) == 0);
	CHECK((uint64_t)fs_uuid__ms(u, strlen(u)) == 1700000000000ull);

	/* ms 0 and the largest 48-bit ms. */
	CHECK(fs_uuid__v7(u, 0, &RND) == 0);
	CHECK(strncmp(u, "00000000-0000-7", 15) == 0);
	CHECK(well_formed(u));
	CHECK(fs_uuid__v7(u, 0xffffffffffffull, &RND) == 0);
	CHECK(strncmp(u, "ffffffff-ffff-7", 15) == 0);
	CHECK(well_formed(u));

	/* Without a pool: randomness straight from the system. */
	for (i = 0; i < 200; i++) {
		if (fs_uuid__v7(u, 1700000000000ull + (uint64_t)i, NULL) != 0 ||
		    !well_formed(u) || (uint64_t)fs_uuid__ms(u, strlen(u)) != 1700000000000ull + (uint64_t)i)
			ok = 0;
	}
	CHECK(ok);
}

static int cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void test_unique(void)
{
	enum { N = 100000 };
	char (*ids)[FS_UUID_LEN + 1] = malloc((size_t)N * sizeof(*ids));
	size_t i;
	int ok = 1, dup = 0, zero = 0;

	CHECK(ids != NULL);
	if (!ids)
		return;
	/* All in the same millisecond: only the random bits tell them apart. */
	for (i = 0; i < N; i++) {
		if (fs_uuid__v7(ids[i], 1700000000000ull, &RND) != 0 ||
		    !well_formed(ids[i]) || !fs_uuid__valid(ids[i]))
			ok = 0;
		/* random tail must never be the zeroed-out pool */
		if (strcmp(ids[i] + 24, "000000000000") == 0)
			zero++;
	}
	CHECK(ok);
	CHECK(zero == 0);
	qsort(ids, N, sizeof(*ids), cmp);
	for (i = 1; i < N; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			dup++;
	CHECK(dup == 0);

	/* The random bits are not stuck: over many ids each of the 16 hex
	** values turns up in the last position. */
	{
		int seen[16] = { 0 }, all = 1;
		for (i = 0; i < N; i++)
			seen[hexval(ids[i][35])] = 1;
		for (i = 0; i < 16; i++)
			all &= seen[i];
		CHECK(all);
	}
	free(ids);
}

static void test_order(void)
{
	char a[FS_UUID_LEN + 1], b[FS_UUID_LEN + 1];
	uint64_t ms = 1700000000000ull;
	int i, ok = 1;

	CHECK(fs_uuid__v7(a, ms, &RND) == 0);
	for (i = 1; i <= 5000; i++) {
		/* steps of 1 ms, and some big jumps across hex digits */
		ms += (i % 100 == 0) ? 0x10000 : 1;
		if (fs_uuid__v7(b, ms, &RND) != 0)
			ok = 0;
		if (strcmp(a, b) >= 0 || (uint64_t)fs_uuid__ms(b, strlen(b)) != ms)
			ok = 0;
		memcpy(a, b, sizeof(a));
	}
	CHECK(ok);
}

static void test_valid(void)
{
	CHECK(fs_uuid__valid("01234567-89ab-7def-8123-456789abcdef"));
	/* valid() checks the text form, not the version. */
	CHECK(fs_uuid__valid("00000000-0000-0000-0000-000000000000"));
	CHECK(!fs_uuid__valid("01234567-89AB-7DEF-8123-456789ABCDEF"));
	CHECK(!fs_uuid__valid("01234567-89ab-7def-8123-456789abcdeF"));
	CHECK(!fs_uuid__valid("01234567-89ab-7def-8123-456789abcde"));
	CHECK(!fs_uuid__valid("01234567-89ab-7def-8123-456789abcdef0"));
	CHECK(!fs_uuid__valid("0123456789ab7def8123456789abcdef"));
	CHECK(!fs_uuid__valid("0123456-789ab-7def-8123-456789abcdef"));
	CHECK(!fs_uuid__valid("01234567-89ab-7def-8123_456789abcdef"));
	CHECK(!fs_uuid__valid("0123456g-89ab-7def-8123-456789abcdef"));
	CHECK(!fs_uuid__valid("{1234567-89ab-7def-8123-456789abcdef}"));
	CHECK(!fs_uuid__valid(" 1234567-89ab-7def-8123-456789abcdef"));
	CHECK(!fs_uuid__valid("------------------------------------"));
	CHECK(!fs_uuid__valid("hello"));
	CHECK(!fs_uuid__valid(""));
	CHECK(!fs_uuid__valid(NULL));
}

static void test_ms(void)
{
	const char *u = "018bcfe5-6800-7def-8123-456789abcdef";

	CHECK(fs_uuid__ms(u, strlen(u)) == 1700000000000ll);
	/* Its text within a longer string: len says where it ends. */
	CHECK(fs_uuid__ms("00000000-0001-7000-8000-000000000000, more", 36)
	      == 1);
	CHECK(fs_uuid__ms(u, 35) == -1);
	CHECK(fs_uuid__ms("018BCFE5-6800-7DEF-8123-456789ABCDEF", 36) == -1);
	CHECK(fs_uuid__ms("hello", 5) == -1);
}

int main(void)
{
	test_format();
	test_unique();
	test_order();
	test_valid();
	test_ms();
	return CHECK_EXIT();
}
