/*
** uuid.h -- UUIDv7 ids made offline without coordination (RFC 9562).
**
** 48 bits of Unix milliseconds then 74 random bits: ids from different
** devices never collide in practice, and ids sort roughly by creation time,
** which keeps the primary-key B-trees append-mostly.
*/
#ifndef FS_UUID_H
#define FS_UUID_H

#include <stddef.h>
#include <stdint.h>

#define FS_UUID_LEN 36

/* Random bytes drawn from the system in blocks (one getrandom() call per
** ~400 ids rather than one per id).  Zero-initialise before first use. */
typedef struct fs_rand {
	unsigned char pool[4096];
	size_t pos;   /* bytes of pool already used; 0 also means "empty" */
	int filled;
} fs_rand;

/* Writes a new UUIDv7 into out (FS_UUID_LEN + 1 bytes), taking randomness
** from rnd (or straight from the system when rnd is NULL).  0, or -1 if
** the system random source failed. */
int fs_uuid__v7(char *out, uint64_t now_ms, fs_rand *rnd);
/* 1 if s is a UUID in canonical lower-case text form. */
int fs_uuid__valid(const char *s);
/* The Unix milliseconds a UUIDv7 was made at (its first 48 bits), from
** its text s of len bytes (no NUL needed); -1 if that is no UUID. */
int64_t fs_uuid__ms(const char *s, size_t len);

#endif
