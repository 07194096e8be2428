/*
** value.c -- tests of sync/value.c: scaled decimals, integers, booleans,
** dates, timestamp normalisation to UTC, and the kind table.
*/
#include "value.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_kind(void)
{
	CHECK(fs_value__kind("MONEY") == FS_KIND_MONEY);
	CHECK(fs_value__kind("money") == FS_KIND_MONEY);
	CHECK(fs_value__kind("Money") == FS_KIND_MONEY);
	CHECK(fs_value__kind("QTY") == FS_KIND_QTY);
	CHECK(fs_value__kind("RATE") == FS_KIND_RATE);
	CHECK(fs_value__kind("COORD") == FS_KIND_COORD);
	CHECK(fs_value__kind("INTEGER") == FS_KIND_INTEGER);
	CHECK(fs_value__kind("int") == FS_KIND_INTEGER);
	CHECK(fs_value__kind("BOOLEAN") == FS_KIND_BOOLEAN);
	CHECK(fs_value__kind("DATE") == FS_KIND_DATE);
	CHECK(fs_value__kind("timestamp") == FS_KIND_TIMESTAMP);
	CHECK(fs_value__kind("TEXT") == FS_KIND_TEXT);
	CHECK(fs_value__kind("VARCHAR(20)") == FS_KIND_TEXT);
	CHECK(fs_value__kind("MONEYS") == FS_KIND_TEXT);
	CHECK(fs_value__kind("") == FS_KIND_TEXT);
	CHECK(fs_value__kind(NULL) == FS_KIND_TEXT);

	CHECK(fs_value__scale(FS_KIND_MONEY) == 2);
	CHECK(fs_value__scale(FS_KIND_QTY) == 3);
	CHECK(fs_value__scale(FS_KIND_RATE) == 2);
	CHECK(fs_value__scale(FS_KIND_COORD) == 6);
	CHECK(fs_value__scale(FS_KIND_TEXT) == -1);
	CHECK(fs_value__scale(FS_KIND_INTEGER) == -1);
	CHECK(fs_value__scale(FS_KIND_BOOLEAN) == -1);
	CHECK(fs_value__scale(FS_KIND_DATE) == -1);
	CHECK(fs_value__scale(FS_KIND_TIMESTAMP) == -1);
}

/* Parses s at scale; checks success and the value. */
static int dec_ok(const char *s, int scale, int64_t want)
{
	int64_t v = 12345;
	char err[128] = "";
	int rc = fs_value__parse_decimal(&v, s, scale, err, sizeof(err));

	if (rc != 0 || v != want) {
		fprintf(stderr, "  parse_decimal(\"%s\", %d): rc %d v %lld err "
		        "\"%s\", want %lld\n", s, scale, rc, (long long)v, err,
		        (long long)want);
		return 0;
	}
	return 1;
}

/* Checks s is refused at scale, with a reason, and *out untouched. */
static int dec_bad(const char *s, int scale)
{
	int64_t v = 777;
	char err[128] = "";
	int rc = fs_value__parse_decimal(&v, s, scale, err, sizeof(err));

	if (rc != -1 || v != 777 || err[0] == '\0') {
		fprintf(stderr, "  parse_decimal(\"%s\", %d) accepted: rc %d "
		        "v %lld\n", s, scale, rc, (long long)v);
		return 0;
	}
	return 1;
}

static void test_parse_decimal(void)
{
	/* scale 2 (money) */
	CHECK(dec_ok("12", 2, 1200));
	CHECK(dec_ok("12.5", 2, 1250));
	CHECK(dec_ok("12.50", 2, 1250));
	CHECK(dec_ok("12.34", 2, 1234));
	CHECK(dec_ok("-0.01", 2, -1));
	CHECK(dec_ok("-12.5", 2, -1250));
	CHECK(dec_ok("+7.25", 2, 725));
	CHECK(dec_ok("0", 2, 0));
	CHECK(dec_ok("-0", 2, 0));
	CHECK(dec_ok("0.5", 2, 50));
	CHECK(dec_ok("007", 2, 700));
	CHECK(dec_ok("12.340", 2, 1234));      /* zeros past the scale: fine */
	CHECK(dec_ok("12.3400000", 2, 1234));
	CHECK(dec_ok("0000000000000000000000000012.5", 2, 1250));
	CHECK(dec_ok("1234567.89", 2, 123456789));
	CHECK(dec_bad("12.345", 2));
	CHECK(dec_bad("12.3401", 2));          /* non-zero after the zero */
	CHECK(dec_bad("0.001", 2));
	CHECK(dec_bad("1e5", 2));
	CHECK(dec_bad("1E5", 2));
	CHECK(dec_bad("abc", 2));
	CHECK(dec_bad("", 2));
	CHECK(dec_bad(NULL, 2));
	CHECK(dec_bad(".", 2));
	CHECK(dec_bad("-", 2));
	CHECK(dec_bad("+", 2));
	CHECK(dec_bad("-.", 2));
	CHECK(dec_bad("1.2.3", 2));
	CHECK(dec_bad("1,5", 2));
	CHECK(dec_bad(" 12", 2));
	CHECK(dec_bad("12 ", 2));
	CHECK(dec_bad("--1", 2));
	CHECK(dec_bad("+-1", 2));
	CHECK(dec_bad("12abc", 2));
	CHECK(dec_bad("0x10", 2));
	CHECK(dec_bad("1 000", 2));
	CHECK(dec_bad("nan", 2));
	CHECK(dec_bad("inf", 2));

	/* Overflow at scale 2: INT64_MAX = 9223372036854775807. */
	CHECK(dec_ok("92233720368547758.07", 2, INT64_MAX));
	CHECK(dec_ok("-92233720368547758.07", 2, -INT64_MAX));
	CHECK(dec_ok("92233720368547758", 2, 9223372036854775800));
	CHECK(dec_bad("92233720368547758.08", 2));
	CHECK(dec_bad("92233720368547759", 2));
	CHECK(dec_bad("100000000000000000", 2));   /* 1e17 * 100 > max */
	CHECK(dec_bad("99999999999999999999", 2));
	CHECK(dec_bad("18446744073709551615", 2));
	CHECK(dec_bad("18446744073709551616", 2)); /* 2^64 */
	CHECK(dec_bad("123456789012345678901234567890", 2));
	CHECK(dec_bad("-123456789012345678901234567890.5", 2));

	/* scale 0 */
	CHECK(dec_ok("42", 0, 42));
	CHECK(dec_ok("4.0", 0, 4));
	CHECK(dec_ok("-9223372036854775807", 0, -INT64_MAX));
	CHECK(dec_ok("9223372036854775807", 0, INT64_MAX));
	CHECK(dec_bad("9223372036854775808", 0));
	CHECK(dec_bad("4.5", 0));

	/* scale 3 (qty) and 6 (coord) */
	CHECK(dec_ok("1.5", 3, 1500));
	CHECK(dec_ok("-2.125", 3, -2125));
	CHECK(dec_ok("0.001", 3, 1));
	CHECK(dec_bad("0.0001", 3));
	CHECK(dec_ok("-122.419416", 6, -122419416));
	CHECK(dec_ok("37.77", 6, 37770000));
	CHECK(dec_bad("37.7749295", 6));

	/* The error text names the input. */
	{
		int64_t v;
		char err[128] = "";
		CHECK(fs_value__parse_decimal(&v, "12.345", 2, err, sizeof(err)) == -1);
		CHECK(strstr(err, "12.345") != NULL);
		/* a tiny err buffer is not overrun */
		{
			char small[4] = "zzz";
			CHECK(fs_value__parse_decimal(&v, "abcdef", 2, small,
			                              sizeof(small)) == -1);
			CHECK(small[3] == '\0');
		}
	}
}

static char *fmt(int64_t v, int scale, int trim)
{
	fs_buf b;

	fs_buf_init(&b, 0);
	CHECK(fs_value__format_decimal(&b, v, scale, trim) == 0);
	return fs_buf_detach(&b);
}

#define CHECK_FMT(v, scale, trim, want)              \
	do {                                         \
		char *s_ = fmt(v, scale, trim);      \
		CHECK_STR(s_, want);                 \
		free(s_);                            \
	} while (0)

static void test_format_decimal(void)
{
	CHECK_FMT(1234, 2, 0, "12.34");
	CHECK_FMT(1234, 2, 1, "12.34");
	CHECK_FMT(1200, 2, 0, "12.00");
	CHECK_FMT(1200, 2, 1, "12");
	CHECK_FMT(1250, 2, 0, "12.50");
	CHECK_FMT(1250, 2, 1, "12.5");
	CHECK_FMT(-1, 2, 0, "-0.01");
	CHECK_FMT(-1, 2, 1, "-0.01");
	CHECK_FMT(-150, 2, 0, "-1.50");
	CHECK_FMT(-150, 2, 1, "-1.5");
	CHECK_FMT(-100, 2, 1, "-1");
	CHECK_FMT(-99, 2, 1, "-0.99");
	CHECK_FMT(0, 2, 0, "0.00");
	CHECK_FMT(0, 2, 1, "0");
	CHECK_FMT(5, 3, 0, "0.005");
	CHECK_FMT(1500, 3, 1, "1.5");
	CHECK_FMT(1000, 3, 1, "1");
	CHECK_FMT(-122419416, 6, 1, "-122.419416");
	CHECK_FMT(37770000, 6, 0, "37.770000");
	CHECK_FMT(37770000, 6, 1, "37.77");
	CHECK_FMT(42, 0, 0, "42");
	CHECK_FMT(-42, 0, 1, "-42");
	CHECK_FMT(0, 0, 1, "0");
	CHECK_FMT(INT64_MAX, 2, 0, "92233720368547758.07");
	CHECK_FMT(INT64_MIN, 2, 0, "-92233720368547758.08");
	CHECK_FMT(INT64_MIN, 0, 0, "-9223372036854775808");

	/* Appends to what is there. */
	{
		fs_buf b;
		fs_buf_init(&b, 0);
		fs_buf_puts(&b, "total=");
		CHECK(fs_value__format_decimal(&b, 995, 2, 1) == 0);
		CHECK_STR(b.ptr, "total=9.95");
		fs_buf_free(&b);
		/* and reports a full buffer */
		fs_buf_init(&b, 3);
		CHECK(fs_value__format_decimal(&b, 123456, 2, 0) == -1);
		CHECK(b.len <= 3);
		fs_buf_free(&b);
	}

	/* Round trip: parse(format(v)) == v, trimmed or not. */
	{
		static const int64_t vals[] = {
			0, 1, -1, 9, 10, 99, 100, 101, -101, 1000, 123456789,
			-987654321, 100000000000, INT64_MAX, -INT64_MAX,
		};
		size_t i;
		int s, t, ok = 1;
		for (s = 0; s <= 6; s++)
			for (t = 0; t <= 1; t++)
				for (i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
					char *str = fmt(vals[i], s, t), err[128];
					int64_t back;
					if (fs_value__parse_decimal(&back, str, s, err,
					                            sizeof(err)) != 0 ||
					    back != vals[i]) {
						fprintf(stderr, "  round trip %lld s%d t%d: "
						        "\"%s\"\n", (long long)vals[i], s, t, str);
						ok = 0;
					}
					free(str);
				}
		CHECK(ok);
	}
}

static void test_parse_int(void)
{
	int64_t v = 0;

	CHECK(fs_value__parse_int(&v, "0") == 0 && v == 0);
	CHECK(fs_value__parse_int(&v, "-5") == 0 && v == -5);
	CHECK(fs_value__parse_int(&v, "123") == 0 && v == 123);
	CHECK(fs_value__parse_int(&v, "9223372036854775807") == 0 && v == INT64_MAX);
	CHECK(fs_value__parse_int(&v, "-9223372036854775808") == 0 && v == INT64_MIN);
	v = 55;
	CHECK(fs_value__parse_int(&v, "9223372036854775808") == -1);
	CHECK(fs_value__parse_int(&v, "-9223372036854775809") == -1);
	CHECK(fs_value__parse_int(&v, "12a") == -1);
	CHECK(fs_value__parse_int(&v, "1.0") == -1);
	CHECK(fs_value__parse_int(&v, "abc") == -1);
	CHECK(fs_value__parse_int(&v, "") == -1);
	CHECK(fs_value__parse_int(&v, NULL) == -1);
	CHECK(v == 55);
}

static void test_bool(void)
{
	static const char *yes[] = { "1", "true", "TRUE", "True", "yes", "Yes",
	                             "on", "ON", "y", "Y", "t", "T" };
	static const char *no[] = { "0", "false", "FALSE", "no", "No", "off",
	                            "OFF", "n", "N", "f", "F" };
	static const char *bad[] = { "", "2", "-1", "yes ", " no", "truthy",
	                             "nope", "tru", "01", "oui", "null" };
	size_t i;
	int v;

	for (i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		v = -7;
		CHECK(fs_value__parse_bool(&v, yes[i]) == 0 && v == 1);
	}
	for (i = 0; i < sizeof(no) / sizeof(*no); i++) {
		v = -7;
		CHECK(fs_value__parse_bool(&v, no[i]) == 0 && v == 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		v = -7;
		CHECK(fs_value__parse_bool(&v, bad[i]) == -1 && v == -7);
	}
}

static void test_dates(void)
{
	CHECK(fs_value__valid_date("2026-11-22"));
	CHECK(fs_value__valid_date("2024-02-29"));   /* leap year */
	CHECK(fs_value__valid_date("2000-02-29"));   /* divisible by 400 */
	CHECK(!fs_value__valid_date("2023-02-29"));
	CHECK(!fs_value__valid_date("1900-02-29"));  /* divisible by 100 */
	CHECK(!fs_value__valid_date("2100-02-29"));
	CHECK(fs_value__valid_date("2023-02-28"));
	CHECK(!fs_value__valid_date("2024-02-30"));
	CHECK(!fs_value__valid_date("2026-13-01"));
	CHECK(!fs_value__valid_date("2026-00-10"));
	CHECK(!fs_value__valid_date("2026-01-00"));
	CHECK(!fs_value__valid_date("2026-01-32"));
	CHECK(fs_value__valid_date("2026-01-31"));
	CHECK(!fs_value__valid_date("2026-04-31"));
	CHECK(fs_value__valid_date("2026-04-30"));
	CHECK(!fs_value__valid_date("2026-06-31"));
	CHECK(!fs_value__valid_date("2026-09-31"));
	CHECK(!fs_value__valid_date("2026-11-31"));
	CHECK(fs_value__valid_date("2026-12-31"));
	CHECK(fs_value__valid_date("9999-12-31"));
	CHECK(fs_value__valid_date("0001-01-01"));
	CHECK(!fs_value__valid_date("0000-01-01"));
	CHECK(!fs_value__valid_date("2026-1-01"));
	CHECK(!fs_value__valid_date("2026-01-1"));
	CHECK(!fs_value__valid_date("26-01-01"));
	CHECK(!fs_value__valid_date("2026/01/01"));
	CHECK(!fs_value__valid_date("2026-01-01T00:00:00Z"));
	CHECK(!fs_value__valid_date("2026-01-01 "));
	CHECK(!fs_value__valid_date(" 2026-01-01"));
	CHECK(!fs_value__valid_date("2026-01-0a"));
	CHECK(!fs_value__valid_date("+026-01-01"));
	CHECK(!fs_value__valid_date("abcd-ef-gh"));
	CHECK(!fs_value__valid_date(""));
	CHECK(!fs_value__valid_date(NULL));

	/* A timestamp in its stored form only (what a change carries). */
	CHECK(fs_value__valid_timestamp("2026-11-22T09:00:00Z"));
	CHECK(fs_value__valid_timestamp("2024-02-29T23:59:59Z"));
	CHECK(!fs_value__valid_timestamp("2023-02-29T00:00:00Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22 09:00:00Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T09:00Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T09:00:00+01:00"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T09:00:00.5Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T24:00:00Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T09:00:60Z"));
	CHECK(!fs_value__valid_timestamp("2026-11-22"));
	CHECK(!fs_value__valid_timestamp("2026-11-22T09:00:00z"));
	CHECK(!fs_value__valid_timestamp("soon"));
	CHECK(!fs_value__valid_timestamp(""));
	CHECK(!fs_value__valid_timestamp(NULL));
}

static int ts_ok(const char *in, const char *want)
{
	char out[32];
	int rc;

	memset(out, 'X', sizeof(out));
	rc = fs_value__norm_timestamp(out, in);
	if (rc != 0 || memchr(out, '\0', 21) == NULL || strcmp(out, want) != 0) {
		fprintf(stderr, "  norm_timestamp(\"%s\"): rc %d \"%.21s\", "
		        "want \"%s\"\n", in, rc, out, want);
		return 0;
	}
	return 1;
}

static int ts_bad(const char *in)
{
	char out[32];
	int rc = fs_value__norm_timestamp(out, in);

	if (rc != -1) {
		fprintf(stderr, "  norm_timestamp(\"%s\") accepted: \"%.21s\"\n",
		        in ? in : "(null)", out);
		return 0;
	}
	return 1;
}

static void test_timestamps(void)
{
	/* The forms the header lists. */
	CHECK(ts_ok("2026-11-22T09:30:00Z", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22 09:30", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22 09:30:15", "2026-11-22T09:30:15Z"));
	CHECK(ts_ok("2026-11-22", "2026-11-22T00:00:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:00.123Z", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:59.999999Z", "2026-11-22T09:30:59Z"));
	CHECK(ts_ok("2026-11-22T09:30:00.5", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30Z", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:00+08:00", "2026-11-22T01:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:00-00:00", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:00+00:00", "2026-11-22T09:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30+08:00", "2026-11-22T01:30:00Z"));
	CHECK(ts_ok("2026-11-22T09:30:45.999+01:00", "2026-11-22T08:30:45Z"));
	CHECK(ts_ok("2026-11-22T12:00:00+05:45", "2026-11-22T06:15:00Z"));
	CHECK(ts_ok("2026-11-22T12:00:00-03:30", "2026-11-22T15:30:00Z"));
	CHECK(ts_ok("2026-11-22 23:59:59", "2026-11-22T23:59:59Z"));

	/* Offsets crossing day, month, year and leap-day boundaries. */
	CHECK(ts_ok("2026-11-22T02:00:00+08:00", "2026-11-21T18:00:00Z"));
	CHECK(ts_ok("2026-11-22T22:00:00-05:00", "2026-11-23T03:00:00Z"));
	CHECK(ts_ok("2026-11-30T20:00:00-06:00", "2026-12-01T02:00:00Z"));
	CHECK(ts_ok("2026-03-01T01:00:00+02:00", "2026-02-28T23:00:00Z"));
	CHECK(ts_ok("2024-03-01T01:00:00+02:00", "2024-02-29T23:00:00Z"));
	CHECK(ts_ok("2024-02-28T23:00:00-02:00", "2024-02-29T01:00:00Z"));
	CHECK(ts_ok("2000-03-01T00:00:00+00:01", "2000-02-29T23:59:00Z"));
	CHECK(ts_ok("2100-03-01T00:00:00+00:01", "2100-02-28T23:59:00Z"));
	CHECK(ts_ok("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00Z"));
	CHECK(ts_ok("2026-01-01T00:15:00+00:30", "2025-12-31T23:45:00Z"));
	CHECK(ts_ok("2026-01-01", "2026-01-01T00:00:00Z"));
	CHECK(ts_ok("2024-02-29T23:59:59-14:00", "2024-03-01T13:59:59Z"));
	CHECK(ts_ok("2026-01-01T00:00:00+14:00", "2025-12-31T10:00:00Z"));
	CHECK(ts_ok("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"));
	CHECK(ts_ok("1970-01-01T00:00:00+01:00", "1969-12-31T23:00:00Z"));
	CHECK(ts_ok("1969-07-20T20:17:40Z", "1969-07-20T20:17:40Z"));
	CHECK(ts_ok("2038-01-19T03:14:08Z", "2038-01-19T03:14:08Z"));
	CHECK(ts_ok("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"));
	CHECK(ts_ok("1000-01-01", "1000-01-01T00:00:00Z"));

	/* Junk. */
	CHECK(ts_bad(NULL));
	CHECK(ts_bad(""));
	CHECK(ts_bad("junk"));
	CHECK(ts_bad("2026-11-2"));
	CHECK(ts_bad("2026/11/22"));
	CHECK(ts_bad("2026-11-22x"));
	CHECK(ts_bad("2026-11-22Z"));
	CHECK(ts_bad("2026-11-22T"));
	CHECK(ts_bad("2026-11-22 "));
	CHECK(ts_bad(" 2026-11-22"));
	CHECK(ts_bad("2026-11-22T9:30"));
	CHECK(ts_bad("2026-11-22T09"));
	CHECK(ts_bad("2026-11-22T09:3"));
	CHECK(ts_bad("2026-11-22T0930"));
	CHECK(ts_bad("2026-11-22T09:30:0"));
	CHECK(ts_bad("2026-11-22T09:30:"));
	CHECK(ts_bad("2026-11-22T09:30:00X"));
	CHECK(ts_bad("2026-11-22T09:30:00z"));
	CHECK(ts_bad("2026-11-22T09:30:00Z "));
	CHECK(ts_bad("2026-11-22T09:30:00ZZ"));
	CHECK(ts_bad("2026-11-22T09:30:00."));
	CHECK(ts_bad("2026-11-22T09:30:00.Z"));
	CHECK(ts_bad("2026-11-22T24:00"));
	CHECK(ts_bad("2026-11-22T23:60"));
	CHECK(ts_bad("2026-11-22T23:59:61"));
	CHECK(ts_bad("2026-11-22T09:30:00+8:00"));
	CHECK(ts_bad("2026-11-22T09:30:00+08"));
	CHECK(ts_bad("2026-11-22T09:30:00+08:"));
	CHECK(ts_bad("2026-11-22T09:30:00+0800"));
	CHECK(ts_bad("2026-11-22T09:30:00+08:0"));
	CHECK(ts_bad("2026-11-22T09:30:00+15:00"));
	CHECK(ts_bad("2026-11-22T09:30:00+08:60"));
	CHECK(ts_bad("2026-11-22T09:30:00+08:00Z"));
	CHECK(ts_bad("2026-11-22T09:30:00+08:00:00"));
	CHECK(ts_bad("2026-02-30T00:00:00Z"));
	CHECK(ts_bad("2023-02-29"));
	CHECK(ts_bad("2026-13-01T00:00:00Z"));
}

/* Contract: the output is always a real 'YYYY-MM-DDTHH:MM:SSZ'.  Dates
** that valid_date() accepts, but whose year has fewer than 4 digits or
** which an offset moves outside 0001..9999, must not yield a malformed or
** placeholder string. */
static void test_timestamp_edges(void)
{
	char out[32];
	int rc;

	rc = fs_value__norm_timestamp(out, "0999-05-05");
	CHECK(rc == -1 || strcmp(out, "0999-05-05T00:00:00Z") == 0);
	rc = fs_value__norm_timestamp(out, "0001-01-01T12:00:00Z");
	CHECK(rc == -1 || strcmp(out, "0001-01-01T12:00:00Z") == 0);

	rc = fs_value__norm_timestamp(out, "9999-12-31T23:30:00-01:00");
	CHECK(rc == -1);   /* would be year 10000 */
	rc = fs_value__norm_timestamp(out, "0001-01-01T00:00:00+01:00");
	CHECK(rc == -1);   /* would be year 0 */
}

static void test_format_time(void)
{
	char out[32];

	fs_value__format_time(out, 0);
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	fs_value__format_time(out, 999);
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	fs_value__format_time(out, 86399999);
	CHECK_STR(out, "1970-01-01T23:59:59Z");
	fs_value__format_time(out, 1700000000000ull);
	CHECK_STR(out, "2023-11-14T22:13:20Z");
	fs_value__format_time(out, 1700000000999ull);
	CHECK_STR(out, "2023-11-14T22:13:20Z");
	fs_value__format_time(out, 951782400000ull);   /* 11016 days */
	CHECK_STR(out, "2000-02-29T00:00:00Z");
	fs_value__format_time(out, 2147483648000ull);  /* past 2038 */
	CHECK_STR(out, "2038-01-19T03:14:08Z");
}

int main(void)
{
	test_kind();
	test_parse_decimal();
	test_format_decimal();
	test_parse_int();
	test_bool();
	test_dates();
	test_timestamps();
	test_timestamp_edges();
	test_format_time();
	return CHECK_EXIT();
}
