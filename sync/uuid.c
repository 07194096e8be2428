/*
** uuid.c -- UUIDv7 generation and validation.  See uuid.h.
*/
#include "uuid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int fill_random(unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

static int take_random(unsigned char *p, size_t n, fs_rand *rnd)
{
	if (!rnd)
		return fill_random(p, n);
	if (!rnd->filled || rnd->pos + n > sizeof(rnd->pool)) {
		if (fill_random(rnd->pool, sizeof(rnd->pool)) < 0)
			return -1;
		rnd->filled = 1;
		rnd->pos = 0;
	}
	memcpy(p, rnd->pool + rnd->pos, n);
	/* Never hand the same bytes out twice. */
	memset(rnd->pool + rnd->pos, 0, n);
	rnd->pos += n;
	return 0;
}

int fs_uuid__v7(char *out, uint64_t now_ms, fs_rand *rnd)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i, o = 0;

	if (take_random(b + 6, 10, rnd) < 0)
		return -1;
	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(now_ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));  /* version 7 */
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));  /* variant 10 */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

int fs_uuid__valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != FS_UUID_LEN)
		return 0;
	for (i = 0; i < FS_UUID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int64_t fs_uuid__ms(const char *s, size_t len)
{
	char text[FS_UUID_LEN + 1];
	int64_t ms = 0;
	int i;

	if (len != FS_UUID_LEN)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (!fs_uuid__valid(text))
		return -1;
	for (i = 0; i < 13; i++)
		if (i != 8)
			ms = ms * 16 + (text[i] <= '9' ? text[i] - '0'
			                                : text[i] - 'a' + 10);
	return ms;
}
