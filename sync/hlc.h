/*
** hlc.h -- hybrid logical clock.
**
** An HLC value is a uint64: the top 48 bits are wall-clock milliseconds
** since the Unix epoch, the low 16 bits a logical counter.  next() never
** returns a value <= any value it returned or observed before, even when
** the wall clock steps back; observe() folds in a clock seen from another
** node, so causally later changes always sort later.  Ties between nodes
** are broken by the device id (see sync/merge, later).
*/
#ifndef FS_HLC_H
#define FS_HLC_H

#include <stdint.h>

typedef struct fs_hlc {
	uint64_t last;  /* the greatest value issued or observed */
} fs_hlc;

#define FS_HLC_MS(h)      ((h) >> 16)
#define FS_HLC_COUNTER(h) ((h) & 0xffffu)

/* Current wall-clock time in milliseconds. */
uint64_t fs_hlc__wall_ms(void);
/* The next clock value, given the wall clock now_ms. */
uint64_t fs_hlc__next(fs_hlc *c, uint64_t now_ms);
/* Folds in a remote value so later local values sort after it. */
void fs_hlc__observe(fs_hlc *c, uint64_t remote);

#endif
