-- 004_scope.sql -- the organisation, who sees what, and who may write what.
--
-- Departments form a tree (head office -> regions -> branches).  A
-- customer belongs to the department named by its region field; every
-- record that hangs off a customer (contacts, visits, opportunities,
-- quotes, orders, their lines, payments) belongs with it.  Products and
-- price lists are reference data that everyone receives.
--
-- A user's scope is one or more departments, each with its whole subtree,
-- or '*' for the whole company.  The server replicates to a device only
-- the records in its user's scope and refuses writes outside it
-- (docs/scopes.md).  These tables live on servers; replicas carry them
-- empty, as they carry the other server tables of 002_sync.sql.

-- How a record hangs off a customer: the column that links it to the
-- record it belongs with (a contact: its customer; an order line: its
-- order).  For customer itself it is the scope key, the region field.
-- NULL: reference data, replicated to everyone.
ALTER TABLE fs_entity ADD COLUMN scope_via TEXT;
UPDATE fs_entity SET scope_via = CASE tbl
  WHEN 'customer'    THEN 'region'
  WHEN 'contact'     THEN 'customer'
  WHEN 'visit'       THEN 'customer'
  WHEN 'opportunity' THEN 'customer'
  WHEN 'quote'       THEN 'customer'
  WHEN 'sales_order' THEN 'customer'
  WHEN 'quote_line'  THEN 'quote'
  WHEN 'order_line'  THEN 'order'
  WHEN 'payment'     THEN 'order'
  ELSE NULL END;

CREATE TABLE fs_dept(
  code       TEXT PRIMARY KEY
             CONSTRAINT "department code: letters, digits, '-', '_' or '.'"
             CHECK (length(code) BETWEEN 1 AND 64 AND code NOT GLOB '*[^A-Za-z0-9._-]*'),
  name       TEXT NOT NULL,
  parent     TEXT REFERENCES fs_dept(code),
  created_at TEXT NOT NULL
);
CREATE INDEX fs_dept_parent ON fs_dept(parent);

CREATE TABLE fs_user_scope(
  user TEXT NOT NULL REFERENCES fs_user(name),
  dept TEXT NOT NULL,                    -- fs_dept code, or '*'
  PRIMARY KEY (user, dept)
) WITHOUT ROWID;

-- Users from before scopes keep what they saw: their region, or everything.
INSERT OR IGNORE INTO fs_dept(code, name, parent, created_at)
  SELECT DISTINCT region, region, NULL, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
  FROM fs_user WHERE coalesce(region, '') <> '';
INSERT INTO fs_user_scope(user, dept)
  SELECT name, coalesce(nullif(region, ''), '*') FROM fs_user;

-- A device whose user's scope changed (fieldsync-admin user set --region)
-- is told at its next pull to drop its records and take a new snapshot.
ALTER TABLE fs_device ADD COLUMN rescope INTEGER NOT NULL DEFAULT 0;
-- The log position a device had pulled at its last connection (HELLO):
-- compaction never purges what an active device has not pulled.
ALTER TABLE fs_device ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;

-- The department a logged change belongs to, written with it: a scoped
-- pull reads only its departments' entries through the index.  '' marks
-- reference data (everyone's); NULL a customer without a known region
-- (whole-company users only), and entries logged before this migration.
ALTER TABLE fs_log ADD COLUMN scope TEXT;
CREATE INDEX fs_log_scope ON fs_log(scope, seq);
-- A conflict belongs with its record: only replicas that see the record
-- receive it, and only they may resolve it.
ALTER TABLE fs_conflict ADD COLUMN scope TEXT;

-- Customers that changed department.  The log gets an 'X' entry in the
-- old department (replicas that no longer see the customer drop it) and an
-- 'M' entry in the new one (the server sends such replicas the customer
-- with everything hanging off it).  A write made before the move by a
-- device that saw the old department is still accepted.
CREATE TABLE fs_move(
  seq        INTEGER PRIMARY KEY,        -- log position of the 'M' entry
  customer   TEXT NOT NULL,
  from_scope TEXT,
  to_scope   TEXT
);
CREATE INDEX fs_move_customer ON fs_move(customer, seq);

-- Field and state ownership, the one place these rules live.  A rule
-- covers a change to table tbl, field col ('*': any change of the record,
-- creating and deleting it included; a creation changes every field it
-- sets) when
--   state_col is NULL, or the record's current state_col is one of
--   state_in ('link.field': the field of the record its link column
--   points to, as an order line's order's status), and
--   value_in is NULL, or the new value is one of value_in.
-- A covered change is accepted only from the roles listed; any other is
-- refused with why, and the writer sees it in `fieldsync rejections`.
CREATE TABLE fs_rule(
  id        INTEGER PRIMARY KEY,
  tbl       TEXT NOT NULL,
  col       TEXT NOT NULL,
  state_col TEXT,
  state_in  TEXT,                        -- comma-separated values
  value_in  TEXT,                        -- comma-separated values
  roles     TEXT NOT NULL,               -- comma-separated roles
  why       TEXT NOT NULL                -- told to a refused writer
);
INSERT INTO fs_rule(tbl, col, state_col, state_in, value_in, roles, why) VALUES
  ('customer', 'credit_limit', NULL, NULL, NULL, 'manager,office,admin',
   'a credit limit is set by a manager or the office'),
  ('customer', 'credit_rating', NULL, NULL, NULL, 'manager,office,admin',
   'a credit rating is set by a manager or the office'),
  ('customer', 'level', NULL, NULL, NULL, 'manager,office,admin',
   'a customer''s level is set by a manager or the office'),
  ('sales_order', '*', 'status', 'confirmed,shipped,invoiced', NULL,
   'office,admin', 'an order past confirmation is changed by the office only'),
  ('sales_order', 'status', NULL, NULL, 'confirmed,shipped,invoiced',
   'office,admin', 'the office confirms, ships and invoices orders'),
  ('order_line', '*', 'order.status', 'confirmed,shipped,invoiced', NULL,
   'office,admin', 'the lines of an order past confirmation are changed by the office only');
