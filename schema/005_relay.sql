-- 005_relay.sql -- the three tiers: regional servers that sync with head
-- office (docs/tiers.md).
--
-- At head office, a regional server is a device marked relay: it pushes
-- its reps' changes with their own device, author and clock, and the log
-- remembers which relay each change came through (fs_log.via), so that
-- the relay is not sent its own changes back.  At a regional server, the
-- changes pulled from head office are logged with via = '^' (they are not
-- pushed back up), a rep's write passed on to head office without being
-- merged here with via = '>' (it is not sent to this server's devices),
-- and every entry records the upstream cursor the server had pulled when
-- it was merged (fs_log.up): the head-office log position the change was
-- made on top of, which head office takes as its base.

ALTER TABLE fs_device ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;

ALTER TABLE fs_log ADD COLUMN via TEXT;
ALTER TABLE fs_log ADD COLUMN up INTEGER;

-- Authors of changes made on another tier, by device (conflicts name them).
CREATE TABLE fs_origin(
  device TEXT PRIMARY KEY,
  author TEXT NOT NULL
) WITHOUT ROWID;

-- A regional server's link to head office (one row, once started with
-- --upstream).
CREATE TABLE fs_upstream(
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  server       TEXT NOT NULL,            -- HOST:PORT of head office
  device       TEXT,                     -- this server's device id there
  mode         TEXT NOT NULL,            -- 'continuous', 'every N min', 'daily at HH:MM'
  cursor       INTEGER NOT NULL DEFAULT 0,   -- head-office log pulled
  bootstrapped INTEGER NOT NULL DEFAULT 0,
  snap_tbl     TEXT,                     -- snapshot position (resumable)
  snap_rid     TEXT,
  snap_seq     INTEGER NOT NULL DEFAULT 0,
  pushed       INTEGER NOT NULL DEFAULT 0,   -- local log relayed up to
  syncs        INTEGER NOT NULL DEFAULT 0,
  last_sync    TEXT,
  last_error   TEXT
);

-- At a regional server: records that left its holdings (their customer
-- moved to another region at head office) and the log position of the
-- 'X' that dropped them.  A rep's write to one, made before that, is
-- still passed on to head office (which takes writes made before a move).
CREATE TABLE fs_gone(
  tbl   TEXT NOT NULL,
  rid   TEXT NOT NULL,
  scope TEXT,
  seq   INTEGER NOT NULL,
  PRIMARY KEY (tbl, rid)
) WITHOUT ROWID;
