#!/usr/bin/env python3
"""Bad input: non-zero exit with the documented code, exactly one line on
stderr ("fieldsync: ..."), and nothing changed in the replica."""
import os
import sqlite3
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FsTestCase, main  # noqa: E402

GHOST = "0190a0a0-0000-7000-8000-000000000000"


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class Errors(FsTestCase):

    def setUp(self):
        super().setUp()
        r = self.r
        r.ok("init", "--user", "alice")
        self.c = r.add("customer", name="Acme", city="Shanghai", credit_limit="100")
        self.ct = r.add("contact", customer=self.c, name="Li Wei")
        self.p = r.add("product", sku="S1", name="Thing", list_price="10")
        self.o = r.json("order", "new", "--customer", self.c, "--line", "S1:1")["id"]

    def bad(self, code, *args):
        r = self.r
        with self.subTest(cmd=" ".join(args)):
            before = r.snapshot()
            res = r.run(*args)
            self.assertEqual(r.snapshot(), before, "`%s` changed the replica" % " ".join(args))
            self.assertFailed(res, code=code, what="`%s`" % " ".join(args))

    def test_unknown_id(self):
        for verb in ("show", "delete"):
            self.bad(1, "customer", verb, GHOST)
        self.bad(1, "customer", "edit", GHOST, "--city", "X")
        self.bad(1, "contact", "show", self.c)           # a customer id is no contact
        self.bad(1, "order", "show", "not-an-id")
        self.bad(1, "customer", "copy", GHOST)

    def test_unknown_field_flag(self):
        self.bad(2, "customer", "add", "--name", "X", "--no_such_field", "1")
        self.bad(2, "customer", "edit", self.c, "--colour", "red")
        self.bad(2, "customer", "list", "--colour", "red")
        self.bad(2, "contact", "add", "--customer", self.c, "--name", "X", "--sku", "S")

    def test_bad_money(self):
        for v in ("12.345", "12,50", "abc", "1e3", "12.3.4", "-1"):
            self.bad(1, "customer", "add", "--name", "X", "--credit_limit", v)
        self.bad(1, "customer", "edit", self.c, "--credit_limit", "12.345")
        self.bad(1, "product", "add", "--sku", "S2", "--name", "N", "--list_price", "0.001")
        self.bad(1, "order_line", "add", "--order", self.o, "--product", self.p,
                 "--quantity", "1.0001", "--unit_price", "1")

    def test_bad_dates_and_timestamps(self):
        for d in ("2026-02-30", "2026-13-01", "2025-02-29", "2026-1-5", "yesterday"):
            self.bad(1, "contact", "add", "--customer", self.c, "--name", "X", "--birthday", d)
        self.bad(1, "contact", "edit", self.ct, "--birthday", "2026-02-30")
        for ts in ("2026-02-30 10:00", "2026-03-01 25:00", "soon"):
            self.bad(1, "visit", "add", "--customer", self.c, "--planned_at", ts)

    def test_bad_enum_and_checks(self):
        self.bad(1, "customer", "add", "--name", "X", "--level", "D")
        self.bad(1, "customer", "add", "--name", "X", "--level", "a")
        self.bad(1, "customer", "edit", self.c, "--status", "gone")
        self.bad(1, "contact", "add", "--customer", self.c, "--name", "X", "--gender", "robot")
        self.bad(1, "product", "add", "--sku", "S2", "--name", "N", "--list_price", "1",
                 "--tax_rate", "100.01")
        self.bad(1, "product", "edit", self.p, "--active", "maybe")
        self.bad(1, "opportunity", "add", "--customer", self.c, "--title", "T",
                 "--probability", "101")
        self.bad(1, "visit", "add", "--customer", self.c, "--latitude", "90.000001",
                 "--longitude", "0")

    def test_missing_required(self):
        self.bad(1, "customer", "add", "--city", "Nowhere")
        self.bad(1, "customer", "add", "--name", "   ")
        self.bad(1, "customer", "edit", self.c, "--name", "")
        self.bad(1, "contact", "add", "--name", "Orphan")
        self.bad(1, "product", "add", "--sku", "S9", "--name", "No price")
        self.bad(1, "payment", "add", "--order", self.o, "--amount", "1")

    def test_bad_references(self):
        self.bad(1, "contact", "add", "--customer", GHOST, "--name", "X")
        self.bad(1, "contact", "add", "--customer_id", GHOST, "--name", "X")
        self.bad(1, "contact", "edit", self.ct, "--customer", GHOST)
        self.bad(1, "customer", "edit", self.c, "--price_list", GHOST)
        self.bad(1, "visit", "add", "--customer", self.c, "--contact", GHOST)
        self.bad(1, "quote", "new", "--customer", GHOST, "--line", "S1:1")
        self.bad(1, "order", "new", "--customer", GHOST, "--line", "S1:1")
        self.bad(1, "order", "from-quote", GHOST)

    def test_ids(self):
        self.bad(1, "customer", "add", "--id", self.c, "--name", "Same id")
        self.bad(1, "customer", "add", "--id", "not-a-uuid", "--name", "Bad id")
        before = self.r.snapshot()
        rc, out, err = self.r.run("customer", "edit", self.c, "--id", GHOST)
        self.assertFailed((rc, out, err), what="changing an id")
        self.assertIn(rc, (1, 2))
        self.assertEqual(self.r.snapshot(), before)

    def test_delete_referenced(self):
        self.bad(1, "customer", "delete", self.c)       # has contacts and an order
        self.bad(1, "product", "delete", self.p)        # on an order line

    def test_usage(self):
        self.bad(2, "frobnicate")
        self.bad(2, "customer", "frobnicate")
        self.bad(2, "widget", "list")
        self.bad(2, "customer")
        self.bad(2, "order", "teleport", self.o)
        self.bad(2, "customer", "list", "--limit")      # flag without its value

    def test_no_arguments_is_usage(self):
        rc, out, err = self.r.run(db=False)
        self.assertEqual(rc, 2, "no command at all: %r" % err)

    def test_corrupt_database(self):
        garbage = bytes((i * 37 + 11) % 256 for i in range(16384))
        path = self.write("garbage.db", garbage)
        bad = self.replica("garbage.db")
        for args in (("status",), ("customer", "list"), ("customer", "add", "--name", "X"),
                     ("dump",), ("init",)):
            self.assertFailed(bad.run(*args), code=1, what="%s on garbage" % " ".join(args))
            self.assertEqual(read_bytes(path), garbage, "the garbage file was modified")
        self.assertFalse(os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 0)

    def test_truncated_database(self):
        r = self.r
        for i in range(30):
            r.add("customer", name="Filler %d" % i, notes="x" * 400)
        data = read_bytes(r.path)
        self.assertGreater(len(data), 8192)
        path = self.write("half.db", data[:len(data) // 2] + b"\xff" * 100)
        bad = self.replica("half.db")
        before = read_bytes(path)
        rc, out, err = bad.run("dump")
        self.assertGreaterEqual(rc, 0, "crashed on a damaged file")
        if rc != 0:
            self.assertFailed((rc, out, err), code=1, what="dump of a damaged file")
        self.assertEqual(read_bytes(path), before)

    def test_not_a_fieldsync_database(self):
        path = os.path.join(self.tmp, "other.db")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE foo(x)")
        con.execute("INSERT INTO foo VALUES (1)")
        con.commit()
        con.close()
        before = read_bytes(path)
        bad = self.replica("other.db")
        for args in (("status",), ("customer", "add", "--name", "X")):
            self.assertFailed(bad.run(*args), code=1, what="%s on a foreign db" % args[0])
        self.assertEqual(read_bytes(path), before, "a foreign database was modified")

    def test_newer_schema(self):
        r = self.r
        con = sqlite3.connect(r.path)
        con.execute("INSERT INTO schema_version VALUES(999,'future','x')")
        con.commit()
        con.close()
        before = read_bytes(r.path)
        for args in (("status",), ("customer", "list"), ("customer", "add", "--name", "X"),
                     ("customer", "edit", self.c, "--city", "Y"), ("dump",), ("changes",)):
            self.assertFailed(r.run(*args), code=4, what="%s on a newer schema" % args[0])
        self.assertEqual(read_bytes(r.path), before, "a newer database was modified")
        self.assertEqual(r.sql("SELECT count(*) FROM customer"), [(1,)])

    def test_credit_refusal_is_one_line(self):
        self.bad(3, "order", "new", "--customer", self.c, "--line", "S1:11")


if __name__ == "__main__":
    main()
