/*
** hlc.c -- tests of sync/hlc.c: strictly increasing values whatever the
** wall clock does, counter carry, observe(), and the bit layout.
*/
#include "hlc.h"

#include "check.h"

static void test_layout(void)
{
	fs_hlc c = { 0 };
	uint64_t v = fs_hlc__next(&c, 1700000000000ull);

	/* Wall ms in the top 48 bits, counter 0 on a fresh millisecond. */
	CHECK(v == 1700000000000ull << 16);
	CHECK(FS_HLC_MS(v) == 1700000000000ull);
	CHECK(FS_HLC_COUNTER(v) == 0);
	CHECK(c.last == v);

	/* The macros on a hand-built value. */
	CHECK(FS_HLC_MS(0x0123456789ab0042ull) == 0x0123456789abull);
	CHECK(FS_HLC_COUNTER(0x0123456789ab0042ull) == 0x42);

	/* The largest 48-bit ms still fits. */
	c.last = 0;
	v = fs_hlc__next(&c, 0xffffffffffffull);
	CHECK(FS_HLC_MS(v) == 0xffffffffffffull && FS_HLC_COUNTER(v) == 0);
}

static void test_constant_clock(void)
{
	fs_hlc c = { 0 };
	uint64_t prev = 0, v;
	int i, ok = 1;

	for (i = 0; i < 1000; i++) {
		v = fs_hlc__next(&c, 5000);
		if (v <= prev)
			ok = 0;
		if (FS_HLC_MS(v) != 5000 || FS_HLC_COUNTER(v) != (uint64_t)i)
			ok = 0;
		prev = v;
	}
	CHECK(ok);
	/* Clock moves on: counter resets to 0. */
	v = fs_hlc__next(&c, 5001);
	CHECK(v > prev);
	CHECK(FS_HLC_MS(v) == 5001 && FS_HLC_COUNTER(v) == 0);
}

static void test_backwards_clock(void)
{
	fs_hlc c = { 0 };
	uint64_t a, b, d, e;

	a = fs_hlc__next(&c, 2000);
	b = fs_hlc__next(&c, 1500);    /* clock stepped back 500 ms */
	d = fs_hlc__next(&c, 1);       /* and way back */
	e = fs_hlc__next(&c, 1999);
	CHECK(a < b && b < d && d < e);
	CHECK(FS_HLC_MS(b) == 2000 && FS_HLC_COUNTER(b) == 1);
	CHECK(FS_HLC_MS(e) == 2000 && FS_HLC_COUNTER(e) == 3);
	/* When the wall clock catches up it takes over again. */
	e = fs_hlc__next(&c, 2001);
	CHECK(e == 2001ull << 16);

	/* A clock that zig-zags stays strictly increasing. */
	{
		uint64_t prev = 0, v, now = 100000;
		int i, ok = 1;
		c.last = 0;
		for (i = 0; i < 20000; i++) {
			now = (i % 3 == 2) ? now - 7 : now + 3;
			v = fs_hlc__next(&c, now);
			if (v <= prev)
				ok = 0;
			prev = v;
		}
		CHECK(ok);
	}
}

static void test_counter_overflow(void)
{
	fs_hlc c = { 0 };
	uint64_t prev = 0, v = 0;
	long i;
	int ok = 1;

	/* 65536 values fill the counter of ms 7000 ... */
	for (i = 0; i < 65536; i++) {
		v = fs_hlc__next(&c, 7000);
		if (v <= prev && i > 0)
			ok = 0;
		prev = v;
	}
	CHECK(ok);
	CHECK(FS_HLC_MS(v) == 7000 && FS_HLC_COUNTER(v) == 0xffff);
	/* ... and the next one, still within ms 7000, carries into 7001. */
	v = fs_hlc__next(&c, 7000);
	CHECK(v > prev);
	CHECK(v == 7001ull << 16);
	prev = v;
	/* The real ms 7001 arriving does not go back. */
	v = fs_hlc__next(&c, 7001);
	CHECK(v > prev);
	CHECK(v == (7001ull << 16) + 1);
	/* Many more in the same ms: still strictly increasing. */
	for (i = 0; i < 200000; i++) {
		v = fs_hlc__next(&c, 7001);
		if (v <= prev)
			ok = 0;
		prev = v;
	}
	CHECK(ok);
}

static void test_observe(void)
{
	fs_hlc c = { 0 };
	uint64_t remote = (9000ull << 16) | 7, v, w;

	v = fs_hlc__next(&c, 1000);
	CHECK(v == 1000ull << 16);
	fs_hlc__observe(&c, remote);
	v = fs_hlc__next(&c, 1000);
	CHECK(v > remote);
	CHECK(v == remote + 1);

	/* Observing an older value changes nothing. */
	fs_hlc__observe(&c, 5ull << 16);
	w = fs_hlc__next(&c, 1000);
	CHECK(w > v);
	CHECK(w == remote + 2);

	/* Observing the same value twice is fine; next still exceeds it. */
	fs_hlc__observe(&c, remote + 100);
	fs_hlc__observe(&c, remote + 100);
	CHECK(fs_hlc__next(&c, 0) == remote + 101);

	/* A remote with a full counter: next carries into the next ms. */
	c.last = 0;
	fs_hlc__observe(&c, (3000ull << 16) | 0xffff);
	v = fs_hlc__next(&c, 3000);
	CHECK(v == 3001ull << 16);

	/* Wall clock ahead of the observed value wins. */
	c.last = 0;
	fs_hlc__observe(&c, (3000ull << 16) | 5);
	v = fs_hlc__next(&c, 3001);
	CHECK(v == 3001ull << 16);
}

static void test_wall(void)
{
	uint64_t a = fs_hlc__wall_ms(), b;

	/* After 2020-01-01 and before 2200-01-01, in ms. */
	CHECK(a > 1577836800000ull);
	CHECK(a < 7258118400000ull);
	b = fs_hlc__wall_ms();
	CHECK(b + 1000 >= a);   /* CLOCK_REALTIME may step, but not by much here */
	{
		fs_hlc c = { 0 };
		uint64_t v = fs_hlc__next(&c, a);
		CHECK(FS_HLC_MS(v) == a);
	}
}

int main(void)
{
	test_layout();
	test_constant_clock();
	test_backwards_clock();
	test_counter_overflow();
	test_observe();
	test_wall();
	return CHECK_EXIT();
}
