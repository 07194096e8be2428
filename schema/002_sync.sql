-- 002_sync.sql -- the state of synchronisation, on both sides.
--
-- A client replica uses fs_conflict and fs_rejection; a server uses
-- fs_user, fs_device, fs_clock, fs_log, fs_batch and fs_conflict.  A
-- regional server is both (it syncs upstream as a client), so the two
-- sides share one migration chain.  None of these tables is synced as
-- records: they are the sync engine's own bookkeeping.

-- Conflicts: the losing side of every concurrent edit, kept for review.
-- id is assigned by the server that detected it and is the same on every
-- replica; the natural key makes recording a conflict idempotent.
CREATE TABLE fs_conflict(
  id             INTEGER PRIMARY KEY,
  tbl            TEXT NOT NULL,
  rid            TEXT NOT NULL,
  col            TEXT NOT NULL,          -- '' for a whole-record conflict
  reason         TEXT NOT NULL,          -- 'concurrent edit' | 'record deleted'
  winner_value   TEXT,                   -- JSON
  winner_hlc     INTEGER NOT NULL,
  winner_device  TEXT NOT NULL,
  winner_author  TEXT NOT NULL,
  loser_value    TEXT,                   -- JSON
  loser_hlc      INTEGER NOT NULL,
  loser_device   TEXT NOT NULL,
  loser_author   TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  resolved_at    TEXT,
  resolved_by    TEXT,
  resolution     TEXT,                   -- JSON value kept
  UNIQUE (tbl, rid, col, loser_hlc, loser_device)
);

-- Client: changes the server refused (never silently dropped).
CREATE TABLE fs_rejection(
  id         INTEGER PRIMARY KEY,
  seq        INTEGER NOT NULL,           -- the change's local seq
  tbl        TEXT NOT NULL,
  rid        TEXT NOT NULL,
  op         TEXT NOT NULL,
  col        TEXT,
  val        TEXT,
  hlc        INTEGER NOT NULL,
  reason     TEXT NOT NULL,
  created_at TEXT NOT NULL
);

-- Server: people and their devices.  The author of a change is the user
-- of the device whose certificate authenticated the connection.
CREATE TABLE fs_user(
  name       TEXT PRIMARY KEY,
  role       TEXT NOT NULL CONSTRAINT "role: one of rep, manager, office, admin"
             CHECK (role = 'rep' OR role = 'manager' OR role = 'office' OR role = 'admin'),
  region     TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE fs_device(
  id         TEXT PRIMARY KEY,           -- the certificate's CN
  user       TEXT NOT NULL REFERENCES fs_user(name),
  serial     TEXT NOT NULL UNIQUE,       -- certificate serial (hex)
  created_at TEXT NOT NULL,
  revoked_at TEXT,
  last_seen  TEXT
);

-- Server: the winning version of every field.  col '' is the record's
-- creation (the version of every field not updated since), col '*' its
-- tombstone.  seq is the fs_log entry that wrote it.
CREATE TABLE fs_clock(
  tbl    TEXT NOT NULL,
  rid    TEXT NOT NULL,
  col    TEXT NOT NULL,
  hlc    INTEGER NOT NULL,
  device TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  PRIMARY KEY (tbl, rid, col)
) WITHOUT ROWID;

-- Server: every accepted change in the order it was applied.  Clients pull
-- from it by seq.  op as in fs_change, plus 'C' (a conflict was recorded;
-- rid = conflict id, val = the conflict as JSON).
CREATE TABLE fs_log(
  seq    INTEGER PRIMARY KEY,
  tbl    TEXT NOT NULL,
  rid    TEXT NOT NULL,
  op     TEXT NOT NULL,
  col    TEXT,
  val    TEXT,
  hlc    INTEGER NOT NULL,
  device TEXT NOT NULL,
  author TEXT NOT NULL
);

-- Server: batches received, for logging replays (applying is idempotent
-- by itself).
CREATE TABLE fs_batch(
  device      TEXT NOT NULL,
  batch_id    TEXT NOT NULL,
  entries     INTEGER NOT NULL,
  received_at TEXT NOT NULL,
  PRIMARY KEY (device, batch_id)
) WITHOUT ROWID;
