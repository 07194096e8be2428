/*
** hlc.c -- hybrid logical clock (Kulkarni et al., 2014).  See hlc.h.
*/
#include "hlc.h"

#include <time.h>

uint64_t fs_hlc__wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fs_hlc__next(fs_hlc *c, uint64_t now_ms)
{
	uint64_t wall = (now_ms & 0xffffffffffffull) << 16;

	/* Wall clock ahead of everything seen: take it with counter 0.
	** Otherwise tick the logical part; a full counter carries into the
	** millisecond part, which keeps the value strictly increasing. */
	if (wall > c->last)
		c->last = wall;
	else
		c->last += 1;
	return c->last;
}

void fs_hlc__observe(fs_hlc *c, uint64_t remote)
{
	if (remote > c->last)
		c->last = remote;
}
