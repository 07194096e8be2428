/*
** fuzz_wire.c -- fuzz target: a frame off the network (sync/wire.c).
**
** Decodes the input as one frame (header, length caps, zlib inflation),
** then reads its payload the way each receiver does: PUSH (batch id,
** count, entries), ACK, CHANGES and HELLO.  Nothing may crash, leak or
** read outside the buffer; every failure must be a clean error code.
*/
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void entries(fs_rd *rd, uint64_t n, fs_err *e)
{
	uint64_t i;

	for (i = 0; i < n && i < 100000; i++) {
		fs_entry en;
		if (fs_rd__entry(rd, &en, e) < 0)
			return;
	}
	(void)fs_rd__end(rd, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_buf payload;
	fs_err e;
	fs_rd rd;
	const char *s;
	uint64_t u, n;
	int type;

	memset(&e, 0, sizeof(e));
	fs_buf_init(&payload, FS_FRAME_RAW_MAX + 1);
	if (fs_wire__decode(&type, &payload, data, size, &e) == 0) {
		/* PUSH */
		fs_rd__init(&rd, &payload);
		if (fs_rd__str(&rd, &s, &e) == 0 && fs_rd__uv(&rd, &n, &e) == 0)
			entries(&rd, n, &e);
		/* CHANGES */
		fs_rd__init(&rd, &payload);
		if (fs_rd__uv(&rd, &u, &e) == 0 && fs_rd__uv(&rd, &u, &e) == 0 &&
		    fs_rd__uv(&rd, &u, &e) == 0 && fs_rd__str(&rd, &s, &e) == 0 &&
		    fs_rd__str(&rd, &s, &e) == 0 && fs_rd__uv(&rd, &u, &e) == 0 &&
		    fs_rd__uv(&rd, &n, &e) == 0)
			entries(&rd, n, &e);
		/* ACK */
		fs_rd__init(&rd, &payload);
		if (fs_rd__str(&rd, &s, &e) == 0 && fs_rd__uv(&rd, &u, &e) == 0 &&
		    fs_rd__uv(&rd, &u, &e) == 0 && fs_rd__uv(&rd, &n, &e) == 0) {
			uint64_t i;
			for (i = 0; i < n && i < 100000; i++)
				if (fs_rd__uv(&rd, &u, &e) < 0 || fs_rd__str(&rd, &s, &e) < 0)
					break;
			if (i == n && fs_rd__uv(&rd, &n, &e) == 0)
				entries(&rd, n, &e);
		}
		/* HELLO */
		fs_rd__init(&rd, &payload);
		if (fs_rd__uv(&rd, &u, &e) == 0 && fs_rd__uv(&rd, &u, &e) == 0 &&
		    fs_rd__str(&rd, &s, &e) == 0 && fs_rd__uv(&rd, &u, &e) == 0)
			(void)fs_rd__end(&rd, &e);
	}
	fs_buf_free(&payload);
	return 0;
}
