/*
** value.c -- parsing and formatting of column value kinds.  See value.h.
*/
#include "value.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

fs_kind fs_value__kind(const char *t)
{
	if (!t)
		return FS_KIND_TEXT;
	if (!strcasecmp(t, "INTEGER") || !strcasecmp(t, "INT"))
		return FS_KIND_INTEGER;
	if (!strcasecmp(t, "BOOLEAN"))
		return FS_KIND_BOOLEAN;
	if (!strcasecmp(t, "DATE"))
		return FS_KIND_DATE;
	if (!strcasecmp(t, "TIMESTAMP"))
		return FS_KIND_TIMESTAMP;
	if (!strcasecmp(t, "MONEY"))
		return FS_KIND_MONEY;
	if (!strcasecmp(t, "QTY"))
		return FS_KIND_QTY;
	if (!strcasecmp(t, "RATE"))
		return FS_KIND_RATE;
	if (!strcasecmp(t, "COORD"))
		return FS_KIND_COORD;
	return FS_KIND_TEXT;
}

int fs_value__scale(fs_kind k)
{
	switch (k) {
	case FS_KIND_MONEY: return 2;
	case FS_KIND_QTY:   return 3;
	case FS_KIND_RATE:  return 2;
	case FS_KIND_COORD: return 6;
	default:            return -1;
	}
}

const char *fs_value__kind_wants(fs_kind k)
{
	switch (k) {
	case FS_KIND_INTEGER:   return "an integer";
	case FS_KIND_BOOLEAN:   return "0 or 1 (or true or false)";
	case FS_KIND_DATE:      return "a date 'YYYY-MM-DD'";
	case FS_KIND_TIMESTAMP: return "a UTC time 'YYYY-MM-DDTHH:MM:SSZ'";
	case FS_KIND_MONEY:     return "an integer number of hundredths";
	case FS_KIND_QTY:       return "an integer number of thousandths";
	case FS_KIND_RATE:      return "an integer number of basis points";
	case FS_KIND_COORD:     return "an integer number of micro-degrees";
	default:                return "text (a JSON string)";
	}
}

int fs_value__parse_decimal(int64_t *out, const char *s, int scale,
                            char *err, size_t errsz)
{
	int neg = 0, digits = 0, decimals = 0, dot = 0;
	uint64_t v = 0;
	const char *p = s;
	int i;

	if (!s || !*s) {
		snprintf(err, errsz, "empty number");
		return -1;
	}
	if (*p == '-' || *p == '+')
		neg = (*p++ == '-');
	for (; *p; p++) {
		if (*p == '.' && !dot) {
			dot = 1;
			continue;
		}
		if (*p < '0' || *p > '9') {
			snprintf(err, errsz, "'%s' is not a number", s);
			return -1;
		}
		if (dot && ++decimals > scale) {
			/* Trailing zeros past the scale change nothing. */
			if (*p == '0')
				continue;
			snprintf(err, errsz, "'%s' has more than %d decimal places",
			         s, scale);
			return -1;
		}
		if (v > (UINT64_MAX - 9) / 10) {
			snprintf(err, errsz, "'%s' is too large", s);
			return -1;
		}
		v = v * 10 + (uint64_t)(*p - '0');
		digits++;
	}
	if (!digits) {
		snprintf(err, errsz, "'%s' is not a number", s);
		return -1;
	}
	if (decimals > scale)
		decimals = scale;
	for (i = decimals; i < scale; i++) {
		if (v > UINT64_MAX / 10) {
			snprintf(err, errsz, "'%s' is too large", s);
			return -1;
		}
		v *= 10;
	}
	if (v > (uint64_t)INT64_MAX) {
		snprintf(err, errsz, "'%s' is too large", s);
		return -1;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int fs_value__format_decimal(fs_buf *b, int64_t v, int scale, int trim)
{
	char digits[32];
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	uint64_t div = 1, ip, fp;
	int i, n;

	for (i = 0; i < scale; i++)
		div *= 10;
	ip = u / div;
	fp = u % div;
	if (scale <= 0)
		return fs_buf_printf(b, "%s%llu", v < 0 ? "-" : "",
		                     (unsigned long long)ip);
	n = snprintf(digits, sizeof(digits), "%0*llu", scale,
	             (unsigned long long)fp);
	if (trim) {
		while (n > 0 && digits[n - 1] == '0')
			digits[--n] = '\0';
	}
	if (n == 0)
		return fs_buf_printf(b, "%s%llu", v < 0 ? "-" : "",
		                     (unsigned long long)ip);
	return fs_buf_printf(b, "%s%llu.%s", v < 0 ? "-" : "",
	                     (unsigned long long)ip, digits);
}

int fs_value__parse_int(int64_t *out, const char *s)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int fs_value__parse_bool(int *out, const char *s)
{
	static const char *yes[] = { "1", "true", "yes", "on", "y", "t" };
	static const char *no[] = { "0", "false", "no", "off", "n", "f" };
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int ndigits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static int parse_date(const char *s, int *y, int *m, int *d)
{
	if (strlen(s) < 10 || s[4] != '-' || s[7] != '-')
		return -1;
	if (ndigits(s, 4, y) || ndigits(s + 5, 2, m) || ndigits(s + 8, 2, d))
		return -1;
	if (*y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
		return -1;
	return 0;
}

int fs_value__valid_date(const char *s)
{
	int y, m, d;

	return s && strlen(s) == 10 && parse_date(s, &y, &m, &d) == 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int format_epoch(char *out, int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year < -1899) {
		memcpy(out, "0000-00-00T00:00:00Z", 21);
		return -1;
	}
	/* Not strftime("%Y"): glibc does not pad years below 1000.
	** (The % only tell GCC's -Wformat-truncation the ranges; the values
	** are already in range.) */
	snprintf(out, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ",
	         (unsigned)(tm.tm_year + 1900) % 10000u,
	         (unsigned)tm.tm_mon % 12u + 1, (unsigned)tm.tm_mday % 32u,
	         (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u,
	         (unsigned)tm.tm_sec % 61u);
	return 0;
}

int fs_value__norm_timestamp(char *out, const char *s)
{
	int y, m, d, hh = 0, mm = 0, ss = 0, oh = 0, om = 0, sign = 0;
	const char *p;
	int64_t secs;

	if (!s || parse_date(s, &y, &m, &d) < 0)
		return -1;
	p = s + 10;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (ndigits(p, 2, &hh) || p[2] != ':' || ndigits(p + 3, 2, &mm))
			return -1;
		p += 5;
		if (*p == ':') {
			if (ndigits(p + 1, 2, &ss))
				return -1;
			p += 3;
			if (*p == '.') {
				p++;
				if (*p < '0' || *p > '9')
					return -1;
				while (*p >= '0' && *p <= '9')
					p++;
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '-' ? -1 : 1;
			if (ndigits(p + 1, 2, &oh) || p[3] != ':' ||
			    ndigits(p + 4, 2, &om) || oh > 14 || om > 59)
				return -1;
			p += 6;
		}
	}
	if (*p || hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (ss == 60)
		ss = 59;
	secs = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
	secs -= sign * (oh * 3600 + om * 60);
	return format_epoch(out, secs);
}

int fs_value__valid_timestamp(const char *s)
{
	int y, m, d, hh, mm, ss;

	/* Read in place: normalising and comparing costs a gmtime_r() and a
	** printf, per record the server merges. */
	return s && strlen(s) == 20 && parse_date(s, &y, &m, &d) == 0 &&
	       s[10] == 'T' && !ndigits(s + 11, 2, &hh) && s[13] == ':' &&
	       !ndigits(s + 14, 2, &mm) && s[16] == ':' &&
	       !ndigits(s + 17, 2, &ss) && s[19] == 'Z' && hh <= 23 &&
	       mm <= 59 && ss <= 59;
}

void fs_value__format_time(char *out, uint64_t ms)
{
	(void)format_epoch(out, (int64_t)(ms / 1000));
}
