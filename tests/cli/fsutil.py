"""fsutil.py -- helpers for the black-box tests of the `fieldsync` CLI.

Stdlib only.  The binary is taken from $FIELDSYNC_BIN (default
/work/main/build/bin/fieldsync).  Every test gets a fresh temporary
directory; the replica lives there and is passed with --db.

Expected values in the tests must come from an independent source (the
test's own arithmetic, or the SQLite file read directly through
Replica.sql), never from the program's own output.
"""
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time
import unittest
import uuid
from decimal import Decimal, ROUND_HALF_UP

BIN = os.environ.get("FIELDSYNC_BIN", "/work/main/build/bin/fieldsync")

UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# Every synced table, by the noun users type.
NOUN_TABLE = {
    "customer": "customer", "contact": "contact", "product": "product",
    "price_list": "price_list", "price_list_item": "price_list_item",
    "visit": "visit", "opportunity": "opportunity", "quote": "quote",
    "quote_line": "quote_line", "order": "sales_order",
    "order_line": "order_line", "payment": "payment",
}
TABLES = sorted(NOUN_TABLE.values())


# ------------------------------------------------------------------ json

def loads(text):
    """JSON with exact decimals (floats become Decimal)."""
    return json.loads(text, parse_float=Decimal)


def loads_pairs(text):
    """JSON object as a list of (key, value) pairs, keeping key order."""
    return json.loads(text, parse_float=Decimal, object_pairs_hook=list)


def money(s):
    """'12.5' -> 1250 (cents), exactly."""
    return int((Decimal(str(s)) * 100).to_integral_value())


def dec(v):
    """A JSON number (int or Decimal) or numeric string as Decimal."""
    if isinstance(v, bool):
        raise TypeError("boolean where a number was expected: %r" % (v,))
    return Decimal(str(v))


def round_half_up_div(num, den):
    """round_half_up(num / den) for non-negative integers, exactly."""
    assert num >= 0 and den > 0
    return (num * 2 + den) // (den * 2)


def line_amounts(qty, price, discount="0", tax_rate="0"):
    """Independent line arithmetic from docs/cli.md.

    qty '2.5' (thousandths), price '19.99' (cents), discount and tax rate in
    percent ('12.5' -> 1250 basis points).
    net = qty x price - discount, rounded half up to the cent;
    tax = net x rate, rounded half up to the cent.  Returns (net, tax) in
    cents."""
    q = int(Decimal(qty) * 1000)
    p = int(Decimal(price) * 100)
    d = int(Decimal(discount) * 100)
    t = int(Decimal(tax_rate) * 100)
    assert Decimal(q) == Decimal(qty) * 1000 and Decimal(p) == Decimal(price) * 100
    net = round_half_up_div(q * p * (10000 - d), 1000 * 10000)
    tax = round_half_up_div(net * t, 10000)
    return net, tax


def cents_to_dec(c):
    return (Decimal(c) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def uuid7():
    """A fresh UUIDv7 (ms timestamp + random), canonical text."""
    ms = int(time.time() * 1000)
    r = int.from_bytes(os.urandom(10), "big")
    val = (ms & ((1 << 48) - 1)) << 80
    val |= 0x7 << 76
    val |= (r >> 68 & 0xfff) << 64
    val |= 0b10 << 62
    val |= r & ((1 << 62) - 1)
    return str(uuid.UUID(int=val))


def parse_hlc(v):
    """An HLC as an integer (ms << 16 | counter); accepts the integer or its
    text form '2026-11-22T09:30:00.123Z#0007'."""
    if isinstance(v, bool):
        raise TypeError("bad hlc %r" % (v,))
    if isinstance(v, int):
        return v
    if isinstance(v, Decimal):
        return int(v)
    if isinstance(v, str):
        if v.isdigit():
            return int(v)
        m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{3})Z#([0-9a-fA-F]+)$", v)
        if m:
            import calendar
            secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
            ms = secs * 1000 + int(m.group(2))
            return ms << 16 | int(m.group(3), 16)
    raise ValueError("cannot read hlc %r" % (v,))


def _first(d, *keys, default=None):
    for k in keys:
        if k in d:
            return d[k]
    return default


def _maybe_json(v):
    """Change values may be given as embedded JSON or as JSON text."""
    if isinstance(v, str):
        try:
            return loads(v)
        except ValueError:
            return v
    return v


def norm_change(c):
    """Normalises one entry of `changes --json` (key names are not fixed
    by the contract) to seq, table, id, op, column, value, hlc, device."""
    return {
        "seq": _first(c, "seq"),
        "table": _first(c, "table", "tbl"),
        "id": _first(c, "id", "rid", "record"),
        "op": _first(c, "op"),
        "column": _first(c, "column", "col", "field"),
        "value": _maybe_json(_first(c, "value", "val")),
        "hlc": parse_hlc(_first(c, "hlc")),
        "device": _first(c, "device"),
    }


# ------------------------------------------------------------------ running

def fields_args(fields):
    args = []
    for k, v in fields.items():
        args += ["--" + k, str(v)]
    return args


class CliError(AssertionError):
    pass


class Replica:
    """One replica file; run() executes the binary against it."""

    def __init__(self, directory, name="replica.db"):
        self.dir = directory
        self.path = os.path.join(directory, name)

    def run(self, *args, env=None, timeout=120, db=True, input=None):
        cmd = [BIN]
        if db:
            cmd += ["--db", self.path]
        cmd += [str(a) for a in args]
        e = dict(os.environ)
        e.pop("FIELDSYNC_DB", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e, timeout=timeout, input=input, cwd=self.dir)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        if rc != 0:
            raise CliError("`fieldsync %s` exited %d: %s" % (
                " ".join(str(a) for a in args), rc, err.strip()))
        return out

    def json(self, *args):
        out = self.ok(*(list(args) + ["--json"]))
        try:
            return loads(out)
        except ValueError as ex:
            raise CliError("`fieldsync %s --json` printed invalid JSON (%s): %r"
                           % (" ".join(map(str, args)), ex, out[:300]))

    def add(self, noun, **fields):
        out = self.ok(noun, "add", *fields_args(fields)).strip()
        if not UUID_RE.match(out):
            raise CliError("%s add printed %r, not an id" % (noun, out))
        return out

    def add_json(self, noun, **fields):
        return self.json(noun, "add", *fields_args(fields))

    def edit(self, noun, rid, **fields):
        return self.ok(noun, "edit", rid, *fields_args(fields))

    def show(self, noun, rid):
        return self.json(noun, "show", rid)

    def list(self, noun, *args, **filters):
        v = self.json(noun, "list", *args, *fields_args(filters))
        if not isinstance(v, list):
            raise CliError("%s list --json did not print an array" % noun)
        return v

    def changes(self):
        v = self.json("changes")
        if not isinstance(v, list):
            raise CliError("changes --json did not print an array")
        return [norm_change(c) for c in v]

    def status(self):
        return self.json("status")

    def dump(self):
        return self.ok("dump")

    # Independent view: the SQLite file itself, read-only.
    def connect_ro(self):
        uri = "file:%s?mode=ro" % self.path
        con = sqlite3.connect(uri, uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        return con

    def sql(self, query, params=()):
        con = self.connect_ro()
        try:
            return [tuple(r) for r in con.execute(query, params).fetchall()]
        finally:
            con.close()

    def sql_dicts(self, query, params=()):
        con = self.connect_ro()
        try:
            return [dict(r) for r in con.execute(query, params).fetchall()]
        finally:
            con.close()

    def snapshot(self):
        """Every table but fs_meta (local clock/settings), as sorted rows."""
        con = self.connect_ro()
        try:
            names = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT IN ('fs_meta') AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name")]
            snap = {}
            for n in names:
                rows = con.execute('SELECT * FROM "%s"' % n).fetchall()
                snap[n] = sorted((tuple(r) for r in rows), key=repr)
            schema = sorted(tuple(r) for r in con.execute(
                "SELECT type, name, sql FROM sqlite_master"))
            snap["<schema>"] = schema
            return snap
        finally:
            con.close()

    def count(self, table):
        return self.sql('SELECT count(*) FROM "%s"' % table)[0][0]

    def pending(self):
        st = self.status()
        return int(st["pending_changes"])


class FsTestCase(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fs-cli-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.r = Replica(self.tmp)

    def replica(self, name):
        return Replica(self.tmp, name)

    def write(self, name, data, mode="w"):
        path = os.path.join(self.tmp, name)
        if isinstance(data, str):
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(data)
        else:
            with open(path, "wb") as f:
                f.write(data)
        return path

    def assertFailed(self, res, code=None, what=""):
        """A failed command: non-zero exit (code if given), exactly one line
        on stderr, starting with 'fieldsync:'."""
        rc, out, err = res
        label = what or "command"
        self.assertGreaterEqual(rc, 0, "%s died from signal %d; stderr=%r"
                                % (label, -rc, err[-500:]))
        self.assertNotEqual(rc, 0, "%s succeeded but should fail; stdout=%r"
                            % (label, out[:300]))
        if code is not None:
            self.assertEqual(rc, code, "%s: exit %d, want %d; stderr=%r"
                             % (label, rc, code, err))
        body = err[:-1] if err.endswith("\n") else err
        self.assertTrue(body.strip(), "%s: nothing on stderr" % label)
        self.assertNotIn("\n", body,
                         "%s: stderr is not exactly one line: %r" % (label, err))
        self.assertTrue(body.startswith("fieldsync:"),
                        "%s: stderr does not start with 'fieldsync:': %r"
                        % (label, err))
        return err

    def assertMoney(self, value, expected, what=""):
        """value is a JSON money number; expected '12.50' or cents int."""
        exp = Decimal(expected) if isinstance(expected, str) else cents_to_dec(expected)
        self.assertNotIsInstance(value, (str, bool), "%s: money %r is not a number" % (what, value))
        self.assertIsNotNone(value, "%s: money is null" % what)
        self.assertEqual(dec(value), exp, "%s: money %r != %s" % (what, value, exp))


def main():
    if not os.path.exists(BIN):
        print("fieldsync binary not found at %s (set FIELDSYNC_BIN)" % BIN)
    unittest.main(verbosity=2)


# ------------------------------------------------------------ field checks

SCALE = {"money": 2, "qty": 3, "rate": 2, "coord": 6}


def raw_number(raw, field):
    m = re.search(r'"%s"\s*:\s*(-?[0-9][0-9.eE+-]*)' % re.escape(field), raw)
    return m.group(1) if m else None


def check_fields(tc, rep, noun, rid, expected, raw=None):
    """Checks a record against expected {field: (kind, value)}, both in the
    CLI's `show --json` (typed as docs/cli.md says) and in the SQLite row
    (stored as docs/cli.md says).  kind: text, date, ts, int, bool, money,
    qty, rate, coord; value None means the field is NULL."""
    if raw is None:
        raw = rep.ok(noun, "show", rid, "--json")
    obj = loads(raw)
    tc.assertIsInstance(obj, dict, "%s show --json is not an object" % noun)
    tc.assertEqual(obj.get("id"), rid)
    rows = rep.sql_dicts('SELECT * FROM "%s" WHERE id=?' % NOUN_TABLE[noun], (rid,))
    tc.assertEqual(len(rows), 1, "%s %s not in the database" % (noun, rid))
    row = rows[0]
    for field, (kind, val) in expected.items():
        what = "%s.%s" % (noun, field)
        tc.assertIn(field, obj, "%s missing from show --json" % what)
        j, d = obj[field], row[field]
        if val is None:
            tc.assertIsNone(j, "%s should be null in JSON" % what)
            tc.assertIsNone(d, "%s should be NULL in the database" % what)
            continue
        if kind in SCALE:
            tc.assertFalse(isinstance(j, (str, bool)) or j is None,
                           "%s: JSON %r is not a number" % (what, j))
            tc.assertEqual(dec(j), Decimal(val), "%s JSON value" % what)
            tc.assertIsInstance(d, int, "%s stored as %r, not an integer" % (what, d))
            tc.assertEqual(d, int(Decimal(val) * 10 ** SCALE[kind]),
                           "%s stored value" % what)
            rn = raw_number(raw, field)
            if kind == "money":
                tc.assertRegex(rn or "", r"^-?\d+\.\d\d$",
                               "%s: money must print with two decimals" % what)
            elif kind in ("qty", "rate"):
                tc.assertTrue(rn and "e" not in rn.lower() and not rn.endswith(".")
                              and not ("." in rn and rn.endswith("0")),
                              "%s: %r has trailing zeros" % (what, rn))
        elif kind == "bool":
            tc.assertIs(j, val, "%s JSON boolean" % what)
            tc.assertEqual(d, 1 if val else 0, "%s stored boolean" % what)
        elif kind == "int":
            tc.assertFalse(isinstance(j, bool))
            tc.assertEqual(j, val, "%s JSON" % what)
            tc.assertEqual(d, val, "%s stored" % what)
        else:
            tc.assertEqual(j, val, "%s JSON" % what)
            tc.assertEqual(d, val, "%s stored" % what)
    return obj
