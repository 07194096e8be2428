/*
** fieldsync.h -- the public face of the Fieldsync client library.
**
** A replica is a rep's local CRM database (one SQLite file).  Every write
** made through this library is recorded, in the same transaction, in a
** per-field change log stamped with a hybrid logical clock (HLC) and the
** device id; the sync engine ships that log to the server.
**
** Conventions (libgit2 style):
**   - every fallible call returns an int: 0 (FS_OK) on success, a negative
**     FS_E* code on failure; the one-line message is read back with
**     fs_replica_errmsg() on the handle the call was made on;
**   - out-parameters come first; memory returned to the caller is released
**     with fs_free();
**   - there is no global state: everything hangs off an fs_replica handle,
**     and one handle must not be used by two threads at once.
**
** Field values cross this API as text, in the form a user types them:
**   money     "1234.56"  (stored as integer minor units, 2 decimals)
**   quantity  "2.5"      (stored as integer thousandths)
**   rate      "13.5"     (percent; stored as integer basis points)
**   coord     "48.8566"  (degrees; stored as integer micro-degrees)
**   date      "2026-11-22", timestamp "2026-11-22T09:30:00Z"
**   boolean   "true"/"false" (also 1/0, yes/no)
** A NULL value pointer means SQL NULL (clears the field).
*/
#ifndef FIELDSYNC_H
#define FIELDSYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FS_VERSION "0.1.0"

/* Return codes. */
#define FS_OK         0
#define FS_ERROR     -1   /* anything not listed below */
#define FS_ENOTFOUND -3   /* unknown table, record or field */
#define FS_EINVALID  -4   /* a value or argument is not acceptable */
#define FS_ECONFLICT -5   /* the operation conflicts with existing data */
#define FS_ECORRUPT  -6   /* the database or an input file is damaged */
#define FS_EVERSION  -7   /* database written by a newer schema version */
#define FS_ECREDIT   -8   /* refused: customer credit limit would be exceeded */
#define FS_EAUTH     -9   /* authentication failed */
#define FS_ESCOPE   -10   /* outside the caller's scope */
#define FS_ETIMEOUT -11   /* timed out */
#define FS_EFULL    -12   /* disk or database full */
#define FS_EFIELD   -13   /* no such field in that entity */
#define FS_EBUSY    -14   /* another sync of this replica is running */

/* Ids are UUIDv7 in canonical text form: 36 characters plus NUL. */
#define FS_ID_SIZE 37

typedef struct fs_replica fs_replica;

/* One field of a record: name = column name, value = text form or NULL. */
typedef struct fs_field {
	const char *name;
	const char *value;
} fs_field;

/* Releases memory returned by this library.  Accepts NULL. */
void fs_free(void *p);

/* ---------------------------------------------------------------- replica */

#define FS_OPEN_OPTIONS_VERSION 1
typedef struct fs_open_options {
	unsigned int version;
	int create;          /* create the file if missing (default 1) */
	int readonly;        /* open read-only: no migration, no writes */
} fs_open_options;
#define FS_OPEN_OPTIONS_INIT { FS_OPEN_OPTIONS_VERSION, 1, 0 }

/*
** Opens (creating and migrating as needed) the replica at 'path'.
** *out is set even on failure, so that fs_replica_errmsg() can say why;
** it is NULL only when memory ran out.  The caller closes it either way.
** Returns FS_OK, FS_EVERSION (newer schema), FS_ECORRUPT (not a Fieldsync
** database or damaged), or FS_ERROR.
*/
int fs_replica_open(fs_replica **out, const char *path,
                    const fs_open_options *opts);
void fs_replica_close(fs_replica *r);

/* The message of the last failed call on this handle ("" if none). */
const char *fs_replica_errmsg(const fs_replica *r);

/* This replica's device id (UUIDv7 text); stable for the file's life. */
const char *fs_replica_device(const fs_replica *r);

/* Local settings (e.g. "user": the rep this replica acts for). */
int fs_replica_setting_get(char **out, fs_replica *r, const char *key);
int fs_replica_setting_set(fs_replica *r, const char *key, const char *value);

/* Group several calls into one atomic, durable transaction. */
int fs_replica_begin(fs_replica *r);
int fs_replica_commit(fs_replica *r);
int fs_replica_rollback(fs_replica *r);

/* The schema version of the open database and of this library. */
int fs_replica_schema_version(const fs_replica *r);
int fs_schema_version_latest(void);

/* ---------------------------------------------------------------- records */

/* Entities, by the noun users know ("customer", "order", ...). */
typedef int (*fs_name_cb)(const char *noun, const char *table, void *payload);
int fs_entity_foreach(fs_replica *r, fs_name_cb cb, void *payload);

/*
** Creates a record.  'entity' is a noun ("customer") or table name
** ("sales_order").  An "id" field, if given, must be a UUID not in use;
** otherwise a fresh UUIDv7 is made.  out_id (FS_ID_SIZE bytes, may be NULL)
** receives the id.  Fails with FS_EINVALID naming the field for a bad or
** missing required value, FS_EFIELD for an unknown field, FS_ENOTFOUND for
** a reference to a record that does not exist.  On failure nothing is written.
*/
int fs_record_insert(char *out_id, fs_replica *r, const char *entity,
                     const fs_field *fields, size_t nfields);

/* Changes the given fields of one record; fields not named keep their
** value.  Setting a field to the value it has records no change. */
int fs_record_update(fs_replica *r, const char *entity, const char *id,
                     const fs_field *fields, size_t nfields);

/* Deletes a record (a tombstone for sync).  Lines of a quote or order go
** with it; any other record still pointing at it makes this FS_ECONFLICT. */
int fs_record_delete(fs_replica *r, const char *entity, const char *id);

/* The record as one JSON object with every field (NULLs as null) and "id".
** *out is owned by the caller (fs_free). */
int fs_record_get_json(char **out, fs_replica *r, const char *entity,
                       const char *id);

/* Insert or update from a JSON object of fields (values as JSON strings,
** numbers, booleans or null). */
int fs_record_insert_json(char *out_id, fs_replica *r, const char *entity,
                          const char *json);
int fs_record_update_json(fs_replica *r, const char *entity, const char *id,
                          const char *json);

/*
** Lists records, ordered by their label field then id.  'search' (may be
** NULL) keeps records where any text field contains it, case-insensitively;
** 'filters' keeps records whose field equals the value.  cb receives each
** record as a JSON object (as fs_record_get_json); a non-zero return stops
** the listing and is returned.
*/
typedef int (*fs_json_cb)(const char *json, void *payload);
int fs_record_list(fs_replica *r, const char *entity, const char *search,
                   const fs_field *filters, size_t nfilters,
                   fs_json_cb cb, void *payload);

/* Every live synced record as canonical JSON lines: keys sorted, "table"
** and "id" included, NULL fields omitted, ordered by table then id.  Two
** replicas holding the same data produce byte-identical output. */
int fs_replica_dump(fs_replica *r, fs_json_cb cb, void *payload);

/* ------------------------------------------------------------ change log */

typedef struct fs_change {
	int64_t seq;          /* local order of the change */
	const char *table;
	const char *id;       /* record id */
	char op;              /* 'I' insert, 'U' update, 'D' delete */
	const char *column;   /* 'U' only: the field */
	const char *value;    /* 'U': new value as JSON; 'I': JSON object */
	uint64_t hlc;         /* hybrid logical clock: ms << 16 | counter */
	const char *device;   /* device id that made the change */
} fs_change;

typedef int (*fs_change_cb)(const fs_change *c, void *payload);

/* Pending (not yet acknowledged) changes, oldest first. */
int fs_change_foreach(fs_replica *r, fs_change_cb cb, void *payload);
int fs_change_count(int64_t *out, fs_replica *r);

/* Formats an HLC as "2026-11-22T09:30:00.123Z#0007" into buf. */
void fs_hlc_format(char *buf, size_t size, uint64_t hlc);

/* ------------------------------------------------------------------ sales */

typedef struct fs_quote_line {
	const char *sku;        /* product sku (or product id) */
	const char *quantity;   /* text, e.g. "2" or "2.5" */
	const char *unit_price; /* NULL: customer price list, else list price */
} fs_quote_line;

/* Creates a draft quote for a customer with the given lines; prices and
** tax come from the catalogue unless given; totals are computed. */
int fs_quote_create(char *out_id, fs_replica *r, const char *customer_id,
                    const fs_quote_line *lines, size_t nlines,
                    const fs_field *extra, size_t nextra);

#define FS_ORDER_OVERRIDE_CREDIT 0x1

/* Creates a draft order with lines, priced like a quote.  FS_ECREDIT as
** for fs_order_from_quote(). */
int fs_order_create(char *out_id, fs_replica *r, const char *customer_id,
                    const fs_quote_line *lines, size_t nlines,
                    const fs_field *extra, size_t nextra, unsigned int flags);

/* Creates any record like fs_record_insert(), with FS_ORDER_* flags for an
** order (the credit check applies to orders created this way too). */
int fs_record_insert_flags(char *out_id, fs_replica *r, const char *entity,
                           const fs_field *fields, size_t nfields,
                           unsigned int flags);

/* Turns a quote into a draft sales order with the same lines; the quote
** becomes "accepted".  FS_ECREDIT when the customer's open orders plus this
** one would pass the credit limit, unless FS_ORDER_OVERRIDE_CREDIT is set
** (the override is recorded on the order with who and when). */
int fs_order_from_quote(char *out_id, fs_replica *r, const char *quote_id,
                        unsigned int flags);

/* Moves an order along draft -> submitted -> confirmed -> shipped ->
** invoiced, or to cancelled.  Submitting checks the credit limit as above.
** FS_EINVALID for a transition that is not allowed. */
int fs_order_set_status(fs_replica *r, const char *order_id,
                        const char *status, unsigned int flags);

/* Totals of a quote or order in minor units (cents). */
typedef struct fs_totals {
	int64_t net;    /* after discounts, before tax */
	int64_t tax;
	int64_t gross;  /* net + tax */
	int64_t paid;   /* orders only: sum of payments */
} fs_totals;
int fs_totals_get(fs_totals *out, fs_replica *r, const char *entity,
                  const char *id);

/* ---------------------------------------------------- customer operations */

/* A copy of a customer under a new id (name suffixed " (copy)"). */
int fs_customer_copy(char *out_id, fs_replica *r, const char *id);

/* Merges duplicate into keep: re-points every record that refers to the
** duplicate, fills keep's empty fields from it, deletes the duplicate.
** All of it in one transaction, captured as ordinary changes. */
int fs_customer_merge(fs_replica *r, const char *keep_id,
                      const char *duplicate_id);

/* CSV import (UTF-8, header row of column names, all-or-nothing; a row
** whose id exists updates that record).  *out_count = rows applied.
** Errors name the line and the column. */
int fs_csv_import(int64_t *out_count, fs_replica *r, const char *entity,
                  const char *path);
/* CSV export of every record of an entity; round-trips with import.
** cb receives the text in pieces. */
typedef int (*fs_write_cb)(const char *data, size_t len, void *payload);
int fs_csv_export(fs_replica *r, const char *entity, fs_write_cb cb,
                  void *payload);

/* ------------------------------------------------------------------ sync */

/* Points the replica at a server with the files `fieldsync-admin device
** enroll` wrote into dir (ca.crt, device.crt, device.key, device.conf).
** Pending local changes are kept (they are pushed on the next sync). */
int fs_replica_enroll(fs_replica *r, const char *server, const char *dir);
/* Enrolling as another user than the one the pending changes were made as
** fails with FS_EINVALID (the server would record the new user as their
** author): sync first, or drop them with fs_replica_discard_unsynced(). */

/* Drops every unsynced local change and the local records, in one
** transaction; the next sync loads the server's state with a snapshot.
** Conflicts and rejections already listed stay.  Irreversible. */
int fs_replica_discard_unsynced(fs_replica *r);

typedef struct fs_sync_stats {
	uint64_t pushed;       /* local changes acknowledged by the server */
	uint64_t pulled;       /* changes from elsewhere applied here */
	uint64_t conflicts;    /* new conflicts received */
	uint64_t rejected;     /* local changes the server refused */
	uint64_t bytes_out;    /* on the wire, TLS payload */
	uint64_t bytes_in;
	int snapshot;          /* 1 if this sync bootstrapped from a snapshot */
} fs_sync_stats;

/* Progress: phase is "push", "snapshot" or "pull"; total may be 0 when
** unknown.  A non-zero return cancels the sync (nothing is lost). */
typedef int (*fs_progress_cb)(const char *phase, uint64_t done,
                              uint64_t total, void *payload);

#define FS_SYNC_OPTIONS_VERSION 1
typedef struct fs_sync_options {
	unsigned int version;
	int timeout_ms;          /* connect and handshake; each read after
	                         ** that may take twice as long */
	unsigned int batch;      /* changes per pushed batch */
	fs_progress_cb progress;
	void *payload;
} fs_sync_options;
#define FS_SYNC_OPTIONS_INIT { FS_SYNC_OPTIONS_VERSION, 30000, 2000, NULL, NULL }

/*
** Pushes every pending change, then pulls everything new (a snapshot
** first, for a replica that never synced).  Each acknowledged batch and
** each pulled frame is committed locally as it arrives, so a sync cut at
** any point loses nothing and the next one resumes.  Returns FS_OK;
** FS_ECONFLICT when the server refused some changes (they are kept in
** fs_rejection, listed by `fieldsync rejections`, and stats->rejected says
** how many); FS_EAUTH for certificate problems; FS_ERROR/FS_ETIMEOUT for
** network failures; FS_EBUSY when another sync of the same replica (from
** any process or handle) is running: one sync at a time holds a lock on
** the file DB-sync beside the replica.
*/
int fs_replica_sync(fs_replica *r, fs_sync_stats *stats,
                    const fs_sync_options *opts);

/* Conflicts recorded by the server, as JSON objects. */
int fs_conflict_list(fs_replica *r, int all, fs_json_cb cb, void *payload);
/* Resolves a conflict: keep is "mine", "theirs", "winner", "loser", or a
** value in text form.  A kept loser or value is written as a new local
** change; keeping the winner writes nothing (the field keeps what stands,
** which may be another device's edit made since the conflict) unless this
** replica has an edit of the field pending and the winner is another
** device's: the winner then overrides it.
** The resolution itself syncs. */
int fs_conflict_resolve(fs_replica *r, int64_t id, const char *keep);
/* Changes the server refused, as JSON objects. */
int fs_rejection_list(fs_replica *r, fs_json_cb cb, void *payload);

#ifdef __cplusplus
}
#endif
#endif /* FIELDSYNC_H */
