/*
** store.h -- the server's central database: authentication lookups, the
** per-field merge of pushed batches, pulls of the change log, snapshots.
**
** The store is a replica handle opened in server mode (same schema, no
** capture triggers) plus the sync tables of schema/002_sync.sql.  One
** handle per connection thread; writes are serialised by the caller.
*/
#ifndef FS_STORE_H
#define FS_STORE_H

#include <stdint.h>

#include "fieldsync.h"
#include "wire.h"

typedef struct fs_peer {
	char device[64];
	char user[128];
	char role[16];
	char region[128];
	int all;             /* scope: the whole company (else temp.fs_scope) */
	int schema;          /* the client's schema version (HELLO) */
	int rescope;         /* its scope changed: it must bootstrap again */
	int relay;           /* a regional server (fs_device.relay): its
	                     ** entries carry their own device and author */
	int upstream;        /* at a regional server: head office's changes */
	/* The highest log position the device is known to have pulled
	** (fs_device.cursor, raised by this connection's pulls): its writes
	** to a customer that moved away before it are not "made before the
	** move", whatever base they claim. */
	int64_t pulled;
} fs_peer;

/* Looks the authenticated certificate (CN = device id, serial) up:
** FS_EAUTH if unknown, revoked, or the serial does not match.  Loads the
** user's scope into the connection (policy.h). */
int fs_store__auth(fs_replica *r, fs_peer *out, const char *cn,
                   const char *serial);

/* Reads the device's standing again, at each PUSH and PULL of a
** connection: FS_EAUTH once it is revoked (or gone); its user's role and
** scope as they are now (reloaded into the connection), and a scope
** change to act on (rescope).  A connection kept open must not go on
** with what was true when it was authenticated. */
int fs_store__recheck(fs_replica *r, fs_peer *p);

/* Process-wide SQLite settings of a server process, made before its
** first SQLite call: memory statistics off (the server never reads them,
** and keeping them takes a global mutex around every allocation, which
** the merge makes a dozen of per change).  Not for the client library:
** an embedding application owns its process's SQLite configuration. */
void fs_store__process_init(void);

/* Applies one pushed batch in one transaction and writes the ACK payload.
** rd is positioned after the batch id and count.  The caller holds the
** write lock.  Returns <0 only for failures of the server itself (disk
** full...), after which nothing of the batch is applied. */
int fs_store__push(fs_replica *r, const fs_peer *p, const char *batch_id,
                   fs_rd *rd, uint64_t count, fs_buf *ack);

/* Writes a CHANGES payload with log entries after cursor (not the peer's
** own changes), at most max entries and about FS_FRAME_MAX/2 bytes. */
int fs_store__pull(fs_replica *r, const fs_peer *p, uint64_t cursor,
                   uint64_t max, fs_buf *out);

/* Writes a CHANGES payload of the current records after (tbl, rid) in
** snapshot order; snap_seq 0 starts a snapshot at the current log end. */
int fs_store__snapshot(fs_replica *r, fs_peer *p, const char *tbl,
                       const char *rid, uint64_t snap_seq, uint64_t max,
                       fs_buf *out);

/* Records a device's visit: when, and the log position it has been sent
** (HELLO's cursor, raised by its pulls; compaction waits for it: a device
** that lost a frame it was sent takes a snapshot again if compaction
** passed it).  The position never goes down: it also bounds what the
** device may claim not to have seen (fs_peer.pulled).  The caller holds
** the write lock. */
int fs_store__seen(fs_replica *r, const fs_peer *p, uint64_t cursor);

/* ------------------------------------------------------------------
** A regional server and head office (docs/tiers.md).  Writes: the caller
** holds the write lock. */

/* The log entries a regional server sends head office, as an SQL
** condition on fs_log aliased l: what its own devices wrote (and their
** writes passed on unmerged, via '>'), never what came from head office
** (via '^'), moves (X, M) or organisation markers. */
#define FS_STORE_RELAYED \
	"(l.via IS NULL OR l.via = '>') AND " \
	"l.op IN ('I', 'U', 'D', 'C', 'R') AND l.tbl <> 'fs_org'"

/* A regional server's position in head office's log (fs_upstream). */
typedef struct fs_upstream_pos {
	uint64_t cursor;
	int bootstrapped;
	const char *snap_tbl;   /* snapshot position, NULL when none */
	const char *snap_rid;
	uint64_t snap_seq;
	/* Head office asks for a snapshot again (our scope changed, or it
	** compacted its log past our cursor): what this server holds is
	** noted, and what the snapshot does not bring is dropped when it is
	** complete (fs_resnap, store.c). */
	int resnap;
} fs_upstream_pos;

/* The peer that head office's changes are merged as, at a regional
** server (this server's schema version). */
void fs_store__upstream_peer(fs_peer *p, int schema);

/* Merges count entries pulled from head office (rd at the first) and
** saves the new position, in one transaction.  *applied: entries that
** changed something. */
int fs_store__apply_upstream(fs_replica *r, const fs_peer *p, fs_rd *rd,
                             uint64_t count, const fs_upstream_pos *pos,
                             uint64_t *applied);

/* The next batch of this server's own changes for head office: log
** entries after position after (at most max), encoded into entries; *n
** of them, *last the log position reached. */
int fs_store__relay_batch(fs_replica *r, int64_t after, uint64_t max,
                          fs_buf *entries, uint64_t *n, int64_t *last);

/* Head office's ACK of a relayed batch (rd after the applied and
** conflict counts; sent: the nsent entries pushed): refused changes
** become conflicts here ('refused upstream: ...') and head office's
** corrections are applied; the batch is marked relayed up to last.
** *refused: how many were refused. */
int fs_store__relay_acked(fs_replica *r, const fs_peer *p, fs_rd *rd,
                          const fs_buf *sent, uint64_t nsent, int64_t last,
                          uint64_t *refused);

/* The greatest HLC the server has seen (for WELCOME). */
uint64_t fs_store__max_hlc(fs_replica *r);

#endif
