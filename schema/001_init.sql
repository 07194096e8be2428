-- 001_init.sql -- the CRM schema shared by the client replica and the server.
--
-- This file is the one declarative description of a record.  The library
-- reads it back through PRAGMA table_info / foreign_key_list, so:
--   * the declared type of a column is its value kind:
--       TEXT, INTEGER, BOOLEAN (0/1), DATE ('YYYY-MM-DD'),
--       TIMESTAMP ('YYYY-MM-DDTHH:MM:SSZ'), MONEY (integer minor units),
--       QTY (integer thousandths), RATE (integer basis points of a percent),
--       COORD (integer micro-degrees);
--   * NOT NULL marks a required field; REFERENCES marks a link to a record;
--   * CHECK constraints hold the allowed values of enumerations, written
--     as OR-chains rather than IN lists (an IN list in a CHECK builds an
--     ephemeral index on every row written, which tripled insert cost) and
--     named "field: one of ..." so that a refusal says what is allowed.
-- Every synced table has "id TEXT PRIMARY KEY" (UUIDv7) and is listed in
-- fs_entity.  Foreign keys are declared for the metadata but not enforced by
-- SQLite: replicas receive records in any order during sync, so the library
-- checks references on local writes instead.
-- Money, quantities and rates are integers: no floating point anywhere.

CREATE TABLE schema_version(
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL
);

-- Local key/value settings (device id, user, clock); never synced.
CREATE TABLE fs_meta(
  k TEXT PRIMARY KEY,
  v
) WITHOUT ROWID;

-- The synced entities: table, the noun users type, the field that labels a
-- record in lists, and the owning parent for line tables (deleted with it).
CREATE TABLE fs_entity(
  tbl       TEXT PRIMARY KEY,
  noun      TEXT NOT NULL UNIQUE,
  label     TEXT NOT NULL,
  parent    TEXT,
  ord       INTEGER NOT NULL
);

-- Pending local changes, one row per field change, written by change
-- capture in the same transaction as the change itself (sync/capture.h:
-- since capture generation 2, by the library through SQLite's pre-update
-- hook and, for its own UPDATEs, their WHERE clause; a replica adds a
-- column 'old' of its own).  device '' is the replica's own device.
--   op 'I': insert, val = JSON object of the record's fields (NULL until
--           the push puts them together)
--   op 'U': update of field col, val = JSON-encoded new value
--   op 'D': delete (tombstone); val keeps the deleted fields locally, a
--           push sends none
--   op 'R': a conflict resolved here (rid = conflict id), val = resolution
-- base is the server-log position this replica had seen when the change
-- was made: the server uses it to tell a concurrent edit (a conflict) from
-- an edit made on top of the current value.
CREATE TABLE fs_change(
  seq    INTEGER PRIMARY KEY,
  tbl    TEXT NOT NULL,
  rid    TEXT NOT NULL,
  op     TEXT NOT NULL CONSTRAINT "op: one of I, U, D, R" CHECK (op = 'I' OR op = 'U' OR op = 'D' OR op = 'R'),
  col    TEXT,
  val    TEXT,
  hlc    INTEGER NOT NULL,
  device TEXT NOT NULL,
  base   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE customer(
  id              TEXT PRIMARY KEY,
  code            TEXT,
  name            TEXT NOT NULL CHECK (length(trim(name)) > 0),
  address         TEXT,
  city            TEXT,
  postcode        TEXT,
  phone           TEXT,
  email           TEXT,
  website         TEXT,
  industry        TEXT,
  level           TEXT CONSTRAINT "level: one of A, B, C" CHECK (level = 'A' OR level = 'B' OR level = 'C'),
  type            TEXT,
  status          TEXT NOT NULL DEFAULT 'prospect'
                  CONSTRAINT "status: one of prospect, active, dormant, lost" CHECK (status = 'prospect' OR status = 'active' OR status = 'dormant' OR status = 'lost'),
  credit_rating   TEXT,
  credit_limit    MONEY CHECK (credit_limit >= 0),
  price_list      TEXT REFERENCES price_list(id),
  parent_customer TEXT REFERENCES customer(id),
  finance_contact TEXT,
  department      TEXT,
  region          TEXT,
  owner           TEXT,
  notes           TEXT,
  created_at      TIMESTAMP NOT NULL
);
CREATE INDEX customer_name ON customer(name);
CREATE INDEX customer_code ON customer(code);
CREATE INDEX customer_region ON customer(region);

CREATE TABLE contact(
  id          TEXT PRIMARY KEY,
  customer    TEXT NOT NULL REFERENCES customer(id),
  name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
  gender      TEXT CONSTRAINT "gender: one of female, male, other" CHECK (gender = 'female' OR gender = 'male' OR gender = 'other'),
  title       TEXT,
  department  TEXT,
  supervisor  TEXT,
  phone       TEXT,
  mobile      TEXT,
  email       TEXT,
  home_phone  TEXT,
  birthday    DATE,
  hobbies     TEXT,
  notes       TEXT,
  owner       TEXT,
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX contact_customer ON contact(customer);

CREATE TABLE product(
  id          TEXT PRIMARY KEY,
  sku         TEXT NOT NULL CHECK (length(trim(sku)) > 0),
  name        TEXT NOT NULL,
  unit        TEXT NOT NULL DEFAULT 'pcs',
  list_price  MONEY NOT NULL CHECK (list_price >= 0),
  tax_rate    RATE NOT NULL DEFAULT 0 CHECK (tax_rate BETWEEN 0 AND 10000),
  active      BOOLEAN NOT NULL DEFAULT 1 CONSTRAINT "active: one of 0, 1" CHECK (active = 0 OR active = 1),
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX product_sku ON product(sku);

CREATE TABLE price_list(
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  currency    TEXT NOT NULL DEFAULT 'CNY',
  valid_from  DATE,
  valid_to    DATE,
  created_at  TIMESTAMP NOT NULL
);

CREATE TABLE price_list_item(
  id          TEXT PRIMARY KEY,
  price_list  TEXT NOT NULL REFERENCES price_list(id),
  product     TEXT NOT NULL REFERENCES product(id),
  price       MONEY NOT NULL CHECK (price >= 0),
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX price_list_item_list ON price_list_item(price_list, product);

CREATE TABLE visit(
  id            TEXT PRIMARY KEY,
  customer      TEXT NOT NULL REFERENCES customer(id),
  contact       TEXT REFERENCES contact(id),
  rep           TEXT,
  status        TEXT NOT NULL DEFAULT 'planned'
                CONSTRAINT "status: one of planned, in_progress, completed, abandoned" CHECK (status = 'planned' OR status = 'in_progress' OR status = 'completed' OR status = 'abandoned'),
  planned_at    TIMESTAMP,
  started_at    TIMESTAMP,
  ended_at      TIMESTAMP,
  latitude      COORD CHECK (latitude BETWEEN -90000000 AND 90000000),
  longitude     COORD CHECK (longitude BETWEEN -180000000 AND 180000000),
  purpose       TEXT,
  outcome       TEXT,
  notes         TEXT,
  next_step     TEXT,
  next_step_due DATE,
  created_at    TIMESTAMP NOT NULL
);
CREATE INDEX visit_customer ON visit(customer);

CREATE TABLE opportunity(
  id             TEXT PRIMARY KEY,
  customer       TEXT NOT NULL REFERENCES customer(id),
  title          TEXT NOT NULL CHECK (length(trim(title)) > 0),
  stage          TEXT NOT NULL DEFAULT 'lead'
                 CONSTRAINT "stage: one of lead, qualified, proposal, negotiation, won, lost" CHECK (stage = 'lead' OR stage = 'qualified' OR stage = 'proposal' OR stage = 'negotiation' OR stage = 'won' OR stage = 'lost'),
  amount         MONEY CHECK (amount >= 0),
  probability    INTEGER CHECK (probability BETWEEN 0 AND 100),
  expected_close DATE,
  owner          TEXT,
  notes          TEXT,
  created_at     TIMESTAMP NOT NULL
);
CREATE INDEX opportunity_customer ON opportunity(customer);

CREATE TABLE quote(
  id           TEXT PRIMARY KEY,
  customer     TEXT NOT NULL REFERENCES customer(id),
  contact      TEXT REFERENCES contact(id),
  opportunity  TEXT REFERENCES opportunity(id),
  status       TEXT NOT NULL DEFAULT 'draft'
               CONSTRAINT "status: one of draft, sent, accepted, rejected, expired" CHECK (status = 'draft' OR status = 'sent' OR status = 'accepted' OR status = 'rejected' OR status = 'expired'),
  valid_until  DATE,
  owner        TEXT,
  notes        TEXT,
  created_at   TIMESTAMP NOT NULL
);
CREATE INDEX quote_customer ON quote(customer);

CREATE TABLE quote_line(
  id          TEXT PRIMARY KEY,
  quote       TEXT NOT NULL REFERENCES quote(id),
  product     TEXT NOT NULL REFERENCES product(id),
  quantity    QTY NOT NULL CHECK (quantity > 0 AND quantity <= 1000000000),
  unit_price  MONEY NOT NULL CHECK (unit_price >= 0 AND unit_price <= 100000000000),
  discount    RATE NOT NULL DEFAULT 0 CHECK (discount BETWEEN 0 AND 10000),
  tax_rate    RATE NOT NULL DEFAULT 0 CHECK (tax_rate BETWEEN 0 AND 10000),
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX quote_line_quote ON quote_line(quote);

CREATE TABLE sales_order(
  id                 TEXT PRIMARY KEY,
  customer           TEXT NOT NULL REFERENCES customer(id),
  quote              TEXT REFERENCES quote(id),
  status             TEXT NOT NULL DEFAULT 'draft'
                     CONSTRAINT "status: one of draft, submitted, confirmed, shipped, invoiced, cancelled" CHECK (status = 'draft' OR status = 'submitted' OR status = 'confirmed' OR status = 'shipped' OR status = 'invoiced' OR status = 'cancelled'),
  ordered_at         TIMESTAMP,
  due_date           DATE,
  owner              TEXT,
  credit_override    BOOLEAN NOT NULL DEFAULT 0 CONSTRAINT "credit_override: one of 0, 1" CHECK (credit_override = 0 OR credit_override = 1),
  credit_override_by TEXT,
  credit_override_at TIMESTAMP,
  notes              TEXT,
  created_at         TIMESTAMP NOT NULL
);
CREATE INDEX sales_order_customer ON sales_order(customer);

CREATE TABLE order_line(
  id          TEXT PRIMARY KEY,
  "order"     TEXT NOT NULL REFERENCES sales_order(id),
  product     TEXT NOT NULL REFERENCES product(id),
  quantity    QTY NOT NULL CHECK (quantity > 0 AND quantity <= 1000000000),
  unit_price  MONEY NOT NULL CHECK (unit_price >= 0 AND unit_price <= 100000000000),
  discount    RATE NOT NULL DEFAULT 0 CHECK (discount BETWEEN 0 AND 10000),
  tax_rate    RATE NOT NULL DEFAULT 0 CHECK (tax_rate BETWEEN 0 AND 10000),
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX order_line_order ON order_line("order");

CREATE TABLE payment(
  id          TEXT PRIMARY KEY,
  "order"     TEXT NOT NULL REFERENCES sales_order(id),
  amount      MONEY NOT NULL CHECK (amount > 0),
  paid_at     TIMESTAMP NOT NULL,
  method      TEXT,
  reference   TEXT,
  notes       TEXT,
  created_at  TIMESTAMP NOT NULL
);
CREATE INDEX payment_order ON payment("order");

INSERT INTO fs_entity(tbl, noun, label, parent, ord) VALUES
  ('customer',        'customer',        'name',       NULL,          1),
  ('contact',         'contact',         'name',       NULL,          2),
  ('product',         'product',         'sku',        NULL,          3),
  ('price_list',      'price_list',      'name',       NULL,          4),
  ('price_list_item', 'price_list_item', 'created_at', 'price_list',  5),
  ('visit',           'visit',           'planned_at', NULL,          6),
  ('opportunity',     'opportunity',     'title',      NULL,          7),
  ('quote',           'quote',           'created_at', NULL,          8),
  ('quote_line',      'quote_line',      'created_at', 'quote',       9),
  ('sales_order',     'order',           'created_at', NULL,         10),
  ('order_line',      'order_line',      'created_at', 'sales_order', 11),
  ('payment',         'payment',         'paid_at',    NULL,         12);
