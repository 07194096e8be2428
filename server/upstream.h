/*
** upstream.h -- a regional server's link to head office (docs/tiers.md).
**
** `fieldsyncd --upstream HOST:PORT --enroll DIR` runs one upstream thread
** beside the listener.  At each sync it connects to head office as the
** relay device DIR holds, copies head office's department tree, pushes
** this server's own changes and pulls head office's changes within its
** region.  When it syncs: at start, then continuously (soon after local
** changes, and every poll_s seconds), every N minutes, or
** once a day at HH:MM; and whenever fs_upstream_kick() is called
** (SIGUSR1).
*/
#ifndef FS_UPSTREAM_H
#define FS_UPSTREAM_H

#include <pthread.h>

#include "err.h"

#define FS_UPSTREAM_POLL_S 30    /* continuous mode's default poll_s */

typedef struct fs_upstream fs_upstream;

typedef struct fs_upstream_conf {
	const char *server;       /* head office, HOST:PORT */
	const char *enroll_dir;   /* ca.crt, device.crt, device.key */
	const char *db_path;      /* this server's central database */
	int every_min;            /* > 0: every N minutes */
	int at_min;               /* >= 0: daily at this minute (local time) */
	int poll_s;               /* continuous: pull at least this often */
	int timeout_ms;           /* connect and read timeout */
	pthread_mutex_t *write_lock;  /* the server's: merges are serialised */
	struct fs_ledger *ledger;     /* NULL without one: what head office's
	                              ** changes commit is queued to it */
	void (*log)(const char *line);
} fs_upstream_conf;

/* Checks the enrolment files and the database, records the link in
** fs_upstream and starts the thread.  The strings must outlive it. */
int fs_upstream_start(fs_upstream **out, const fs_upstream_conf *c,
                      fs_err *e);

/* Async-signal-safe: sync now. */
void fs_upstream_kick(fs_upstream *u);

/* Local changes were merged (continuous mode syncs soon after). */
void fs_upstream_changed(fs_upstream *u);

/* Stops the thread (a sync in progress finishes its current step, which
** commits or rolls back whole) and frees u.  NULL is fine. */
void fs_upstream_stop(fs_upstream *u);

/* Parses --sync-at HH:MM into minutes of the day; -1 if malformed. */
int fs_upstream_parse_at(const char *s);

#endif
