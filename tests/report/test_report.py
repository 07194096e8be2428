#!/usr/bin/env python3
"""`fieldsync-admin report`: the head-office reports (docs/reports.md).

Every test starts from a copy of a server directory made once with
`fieldsync-admin init` and writes its CRM rows straight into server.db with
Python's sqlite3 (the reports only read records).  The expected figures are
worked out by hand in the comments beside the data, or, for order totals,
by the integer rule of docs/cli.md computed here; never taken from the
program's own output.  The optional cross-check against `fieldsync order
show` runs when $FIELDSYNC_BIN names the client binary.

Binaries: $FIELDSYNC_ADMIN_BIN (default build/bin/fieldsync-admin) and
$FIELDSYNC_BIN.  Stdlib only.
"""
import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
import unittest
import xml.etree.ElementTree as ET
from decimal import Decimal

ADMIN = os.environ.get("FIELDSYNC_ADMIN_BIN",
                       "/work/main/build/bin/fieldsync-admin")
CLIENT = os.environ.get("FIELDSYNC_BIN", "")
SVG_NS = "{http://www.w3.org/2000/svg}"
TS = "2025-01-01T08:00:00Z"
STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]

_template = {}


def setUpModule():
    root = tempfile.mkdtemp(prefix="fs-report-tpl-")
    _template["root"] = root
    path = os.path.join(root, "srv")
    p = subprocess.run([ADMIN, "--dir", path, "init"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("fieldsync-admin init failed: %s" % p.stderr)
    _template["dir"] = path


def tearDownModule():
    shutil.rmtree(_template.get("root", ""), ignore_errors=True)


def rhu(num, den):
    """round_half_up(num / den) for non-negative integers."""
    return (num * 2 + den) // (den * 2)


def line_amounts(qty, price, disc=0, tax=0):
    """docs/cli.md: net = qty x price x (1 - discount), rounded half up to
    the cent; tax = net x rate, rounded half up per line.  qty in
    thousandths, price in cents, discount and tax in basis points."""
    net = rhu(qty * price * (10000 - disc), 1000 * 10000)
    return net, rhu(net * tax, 10000)


def cents(v):
    """A money value of a JSON report (Decimal with exactly two decimals)."""
    assert isinstance(v, Decimal), "money %r is not a decimal number" % (v,)
    assert re.match(r"^-?\d+\.\d\d$", str(v)), "money %r: not 2 decimals" % v
    return int(v * 100)


def pct(v):
    """A percentage of a JSON report, in hundredths of a percent."""
    if v is None:
        return None
    assert isinstance(v, Decimal) and re.match(r"^\d+\.\d\d$", str(v)), v
    return int(v * 100)


def display_width(s):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


class Server:
    """A server directory with its database open for writing rows."""

    def __init__(self, path):
        self.dir = path
        self.db = sqlite3.connect(os.path.join(path, "server.db"))
        self.db.execute("INSERT INTO product(id, sku, name, list_price, "
                        "created_at) VALUES ('p1', 'P1', 'Part', 100, ?)",
                        (TS,))
        self.n = 0

    def close(self):
        self.db.close()

    def _id(self, prefix):
        self.n += 1
        return "%s-%04d" % (prefix, self.n)

    def dept(self, code, parent=None):
        self.db.execute("INSERT INTO fs_dept(code, name, parent, created_at) "
                        "VALUES (?, ?, ?, ?)", (code, code.title(), parent, TS))

    def customer(self, cid, name, region=None, credit_limit=None, code=None):
        self.db.execute("INSERT INTO customer(id, name, region, credit_limit, "
                        "code, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (cid, name, region, credit_limit, code, TS))
        return cid

    def opp(self, cust, stage, amount, prob, created="2025-02-10", oid=None):
        oid = oid or self._id("opp")
        self.db.execute("INSERT INTO opportunity(id, customer, title, stage, "
                        "amount, probability, created_at) "
                        "VALUES (?, ?, 'deal', ?, ?, ?, ?)",
                        (oid, cust, stage, amount, prob,
                         created + "T10:00:00Z"))
        return oid

    def order(self, cust, status, day, lines, due=None, owner=None,
              oid=None, ordered_at=None, created_at=None):
        """lines: [(qty thousandths, price cents, discount bp, tax bp)].
        day: the order date (ordered_at), or None to leave ordered_at NULL
        (the date is then created_at)."""
        oid = oid or self._id("ord")
        if ordered_at is None and day is not None:
            ordered_at = day + "T09:30:00Z"
        self.db.execute("INSERT INTO sales_order(id, customer, status, "
                        "ordered_at, due_date, owner, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (oid, cust, status, ordered_at, due, owner,
                         created_at or TS))
        for q, p, d, t in lines:
            self.db.execute('INSERT INTO order_line(id, "order", product, '
                            'quantity, unit_price, discount, tax_rate, '
                            'created_at) VALUES (?, ?, \'p1\', ?, ?, ?, ?, ?)',
                            (self._id("line"), oid, q, p, d, t, TS))
        return oid

    def pay(self, order, amount):
        self.db.execute('INSERT INTO payment(id, "order", amount, paid_at, '
                        'created_at) VALUES (?, ?, ?, ?, ?)',
                        (self._id("pay"), order, amount, TS, TS))

    def contact(self, cust, name, birthday, phone=None, mobile=None,
                kid=None):
        kid = kid or self._id("k")
        self.db.execute("INSERT INTO contact(id, customer, name, birthday, "
                        "phone, mobile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (kid, cust, name, birthday, phone, mobile, TS))
        return kid

    def commit(self):
        self.db.commit()


class ReportTest(unittest.TestCase):
    maxDiff = 6000

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fs-report-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        path = os.path.join(self.tmp, "srv")
        shutil.copytree(_template["dir"], path)
        self.s = Server(path)
        self.addCleanup(self.s.close)
        # HQ -> EAST -> EAST-SH -> EAST-SH-PD; HQ -> WEST -> WEST-CD
        for code, parent in [("HQ", None), ("EAST", "HQ"), ("EAST-SH", "EAST"),
                             ("EAST-SH-PD", "EAST-SH"), ("WEST", "HQ"),
                             ("WEST-CD", "WEST")]:
            self.s.dept(code, parent)

    # ------------------------------------------------------------ running

    def run_admin(self, *args, dir=None):
        self.s.commit()
        p = subprocess.run([ADMIN, "--dir", dir or self.s.dir, "report"] +
                           [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120, cwd=self.tmp)
        return (p.returncode, p.stdout.decode("utf-8"),
                p.stderr.decode("utf-8", "replace"))

    def ok(self, *args):
        rc, out, err = self.run_admin(*args)
        self.assertEqual(rc, 0, "report %s exited %d: %s" % (args, rc, err))
        self.assertEqual(err, "", "report %s wrote to stderr: %s" % (args, err))
        return out

    def json(self, *args):
        out = self.ok(*(list(args) + ["--json"]))
        rows = json.loads(out, parse_float=Decimal)
        self.assertIsInstance(rows, list)
        return rows

    def csv(self, *args):
        out = self.ok(*(list(args) + ["--csv"]))
        self.assertTrue(out.endswith("\r\n"), "CSV lines end in CRLF")
        self.last_csv = out
        return list(csv.reader(io.StringIO(out, newline="")))

    def fails(self, code, *args, dir=None):
        rc, out, err = self.run_admin(*args, dir=dir)
        self.assertEqual(rc, code, "report %s: exit %d, want %d; stderr=%r"
                         % (args, rc, code, err))
        self.assertEqual(out, "", "a failed report prints nothing on stdout")
        self.assertTrue(err.endswith("\n") and err.count("\n") == 1,
                        "stderr is exactly one line: %r" % err)
        self.assertTrue(err.startswith("fieldsync-admin: "), err)
        return err

    def svg(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        root = ET.fromstring(text)     # well-formed XML, or this raises
        self.assertEqual(root.tag, SVG_NS + "svg")
        bars = [e for e in root.iter(SVG_NS + "rect")
                if e.get("class") == "bar"]
        labels = [e.text for e in root.iter(SVG_NS + "text")
                  if e.get("class") == "label"]
        values = [e.text for e in root.iter(SVG_NS + "text")
                  if e.get("class") == "value"]
        self.assertIsNotNone(root.find(SVG_NS + "title"))
        return bars, labels, values

    # ------------------------------------------------------------ fixtures

    def funnel_data(self):
        s = self.s
        e1 = s.customer("e1", "East One", "EAST-SH")
        w1 = s.customer("w1", "West One", "WEST-CD")
        s.opp(e1, "lead", 100000, 10)            # weighted 100.00
        s.opp(e1, "lead", 5, 10)                 # 0.5 cent -> 0.01
        s.opp(e1, "qualified", 33333, 50)        # 166.665 -> 166.67
        s.opp(e1, "proposal", 200000, 40)        # 800.00
        s.opp(e1, "negotiation", None, 70)       # no amount: 0
        s.opp(w1, "won", 500000, 100)            # 5000.00
        s.opp(w1, "won", 120000, 90)             # 1080.00
        s.opp(w1, "lost", 90000, 0)              # 0
        s.opp(e1, "lead", 40000, 5, created="2024-12-31")   # 20.00

    # --------------------------------------------------------------- funnel

    def test_funnel(self):
        self.funnel_data()
        rows = self.json("funnel")
        self.assertEqual([r["stage"] for r in rows], STAGES)
        got = [(r["stage"], r["count"], cents(r["amount"]),
                cents(r["weighted"]), r["reached"], pct(r["conversion"]))
               for r in rows]
        # reached: lead 9 (all), qualified 1+1+1+2 = 5, proposal 4,
        # negotiation 3, won 2; conversion 5/9, 4/5, 3/4, 2/3.
        self.assertEqual(got, [
            ("lead", 3, 140005, 12001, 9, 5556),
            ("qualified", 1, 33333, 16667, 5, 8000),
            ("proposal", 1, 200000, 80000, 4, 7500),
            ("negotiation", 1, 0, 0, 3, 6667),
            ("won", 2, 620000, 608000, 2, None),
            ("lost", 1, 90000, 0, None, None),
        ])
        text = self.ok("funnel")
        self.assertRegex(text, r"(?m)^lead +3 +1400\.05 +120\.01 +9 +55\.56%$")
        self.assertRegex(text, r"(?m)^total +9 +10833\.38 +7166\.68$")

    def test_funnel_period_and_region(self):
        self.funnel_data()
        # created_at in 2025: the 2024-12-31 lead drops out; reached(lead) 8.
        rows = self.json("funnel", "--from", "2025-01-01", "--to", "2025-12-31")
        self.assertEqual((rows[0]["count"], cents(rows[0]["amount"]),
                          cents(rows[0]["weighted"]), rows[0]["reached"],
                          pct(rows[0]["conversion"])),
                         (2, 100005, 10001, 8, 6250))
        self.assertEqual(sum(r["count"] for r in rows), 8)
        # The day itself is inside: --from/--to 2024-12-31 keeps only it.
        rows = self.json("funnel", "--from", "2024-12-31", "--to", "2024-12-31")
        self.assertEqual([r["count"] for r in rows], [1, 0, 0, 0, 0, 0])
        # EAST and its subtree: the e1 opportunities only (EAST-SH).
        rows = self.json("funnel", "--region", "EAST")
        self.assertEqual([(r["count"], r["reached"], pct(r["conversion"]))
                          for r in rows],
                         [(3, 6, 5000), (1, 3, 6667), (1, 2, 5000),
                          (1, 1, 0), (0, 0, None), (0, None, None)])
        rows = self.json("funnel", "--region", "WEST-CD")
        self.assertEqual([r["count"] for r in rows], [0, 0, 0, 0, 2, 1])

    def test_funnel_svg(self):
        self.funnel_data()
        path = os.path.join(self.tmp, "funnel.svg")
        out = self.ok("funnel", "--svg", path)
        self.assertIn("lead", out)          # the table still goes to stdout
        bars, labels, values = self.svg(path)
        self.assertEqual(len(bars), 6)
        self.assertEqual(labels, STAGES)
        self.assertEqual(values, ["3", "1", "1", "1", "2", "1"])
        heights = [int(b.get("height")) for b in bars]
        # The y axis tops at 3 (step 1): the lead bar is the full plot.
        self.assertEqual(heights[0], max(heights))
        self.assertEqual(heights[1] * 3, heights[0])
        self.assertEqual(heights[4] * 3, heights[0] * 2)

    # --------------------------------------------------------------- orders

    def orders_data(self):
        s = self.s
        e1 = s.customer("e1", "East One", "EAST-SH")
        e2 = s.customer("e2", "East Two", "EAST")
        w1 = s.customer("w1", "West One", "WEST-CD")
        n1 = s.customer("n1", "Nowhere")
        s.order(e1, "submitted", "2025-01-15", [(2500, 1999, 1000, 1300)],
                owner="alice")
        s.order(e1, "invoiced", "2025-01-20", [(1000, 5, 0, 1000),
                                               (1000, 5, 0, 1000)],
                owner="alice")
        s.order(w1, "confirmed", None, [(1000, 100000, 0, 600)],
                owner="bob", ordered_at="2025-01-31T23:59:59Z")
        s.order(e1, "shipped", "2025-03-01", [(333, 7, 0, 1300)], owner="alice")
        s.order(e1, "draft", "2025-01-10", [(1000, 99900, 0, 0)], owner="alice")
        s.order(w1, "cancelled", "2025-03-05", [(1000, 99900, 0, 0)],
                owner="bob")
        s.order(n1, "submitted", None, [(1000, 1000, 0, 0)],
                created_at="2025-03-09T12:00:00Z")
        s.order(e2, "confirmed", "2025-04-02", [(2000, 2500, 500, 0)],
                owner="carol")

    def test_line_arithmetic(self):
        # The rule of docs/cli.md by hand, for the lines used below.
        self.assertEqual(line_amounts(2500, 1999, 1000, 1300), (4498, 585))
        self.assertEqual(line_amounts(1000, 5, 0, 1000), (5, 1))
        self.assertEqual(line_amounts(333, 7, 0, 1300), (2, 0))
        self.assertEqual(line_amounts(2000, 2500, 500, 0), (4750, 0))

    def test_orders(self):
        self.orders_data()
        rows = self.json("orders")
        got = [(r["month"], r["region"], r["rep"], r["orders"],
                cents(r["net"]), cents(r["tax"]), cents(r["gross"]))
               for r in rows]
        # Draft and cancelled left out; tax per line (0.05 x 10% twice is
        # 0.01 + 0.01, not 0.01 on the 0.10 total); the 23:59:59 order is in
        # January; the order without ordered_at counts in its created month.
        self.assertEqual(got, [
            ("2025-01", "EAST-SH", "alice", 2, 4508, 587, 5095),
            ("2025-01", "WEST-CD", "bob", 1, 100000, 6000, 106000),
            ("2025-03", None, None, 1, 1000, 0, 1000),
            ("2025-03", "EAST-SH", "alice", 1, 2, 0, 2),
            ("2025-04", "EAST", "carol", 1, 4750, 0, 4750),
        ])
        text = self.ok("orders")
        self.assertRegex(text, r"(?m)^2025-01 +EAST-SH +alice +2 +45\.08 +5\.87 "
                               r"+50\.95$")
        self.assertRegex(text, r"(?m)^total +6 +1102\.60 +65\.87 +1168\.47$")

    def test_orders_filters(self):
        self.orders_data()
        rows = self.json("orders", "--region", "EAST")
        self.assertEqual([(r["month"], r["region"], r["rep"]) for r in rows],
                         [("2025-01", "EAST-SH", "alice"),
                          ("2025-03", "EAST-SH", "alice"),
                          ("2025-04", "EAST", "carol")])
        rows = self.json("orders", "--from", "2025-01-31", "--to", "2025-03-01")
        self.assertEqual([(r["month"], r["region"], cents(r["gross"]))
                          for r in rows],
                         [("2025-01", "WEST-CD", 106000),
                          ("2025-03", "EAST-SH", 2)])
        rows = self.json("orders", "--from", "2025-04-01")
        self.assertEqual([r["month"] for r in rows], ["2025-04"])
        rows = self.json("orders", "--to", "2025-01-20")
        self.assertEqual([(r["month"], r["orders"]) for r in rows],
                         [("2025-01", 2)])

    def test_orders_svg(self):
        self.orders_data()
        path = os.path.join(self.tmp, "orders.svg")
        self.ok("orders", "--csv", "--svg", path)
        bars, labels, values = self.svg(path)
        # One bar per month, February (no orders) as a zero bar.
        self.assertEqual(labels, ["2025-01", "2025-02", "2025-03", "2025-04"])
        self.assertEqual(len(bars), 4)
        self.assertEqual(values, ["1110.95", "0.00", "10.02", "47.50"])
        self.assertEqual(int(bars[1].get("height")), 0)
        self.assertEqual(int(bars[0].get("height")), max(
            int(b.get("height")) for b in bars))

    @unittest.skipUnless(CLIENT and os.path.exists(CLIENT),
                         "FIELDSYNC_BIN not set: no client to compare with")
    def test_orders_match_client(self):
        """The report's totals are those of `fieldsync order show`."""
        rep = os.path.join(self.tmp, "replica.db")

        def cli(*args):
            p = subprocess.run([CLIENT, "--db", rep] + list(args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.decode()

        cli("init", "--user", "alice")
        cli("product", "add", "--sku", "W", "--name", "W", "--list_price",
            "19.99", "--tax_rate", "13")
        cli("product", "add", "--sku", "G", "--name", "G", "--list_price",
            "0.05", "--tax_rate", "10")
        cust = cli("customer", "add", "--name", "Client Co").strip()
        order = json.loads(cli("order", "new", "--customer", cust,
                               "--line", "W:2.5", "--line", "G:1",
                               "--line", "G:1", "--line", "W:0.333:0.07",
                               "--json"), parse_float=Decimal)
        cli("order_line", "edit", order["lines"][0]["id"], "--discount", "12.5")
        cli("order", "submit", order["id"])
        shown = json.loads(cli("order", "show", order["id"], "--json"),
                           parse_float=Decimal)["totals"]
        self.s.commit()                 # ATTACH needs no open transaction
        self.s.db.execute("ATTACH DATABASE ? AS rep", (rep,))
        for t in ["customer", "sales_order", "order_line"]:
            self.s.db.execute('INSERT INTO main."%s" SELECT * FROM rep."%s"'
                              % (t, t))
        self.s.db.execute("INSERT INTO main.product SELECT * FROM rep.product")
        self.s.commit()
        self.s.db.execute("DETACH DATABASE rep")
        rows = self.json("orders")
        self.assertEqual(len(rows), 1)
        for k in ["net", "tax", "gross"]:
            self.assertEqual(cents(rows[0][k]), cents(shown[k]), k)
        self.assertEqual(rows[0]["rep"], "alice")

    # ------------------------------------------------------------------ abc

    def abc_data(self):
        s = self.s

        def sale(cid, status, day, cents_, tax=0):
            s.order(cid, status, day, [(1000, cents_, 0, tax)])

        # EAST: a tie straddling 80%, and 95% exactly.
        for cid, name in [("P", "Pine"), ("Q", "Quay"), ("R", "Reed"),
                          ("S", "Sand"), ("T", "Teal"), ("U", "Umber")]:
            s.customer(cid, name, "EAST-SH", code="K" + cid)
        s.customer("Z", "Zinc", "EAST")
        sale("P", "invoiced", "2024-07-01", 500000, tax=1300)  # first day
        sale("P", "confirmed", "2025-06-30", 200000)           # last day
        sale("P", "confirmed", "2024-06-30", 50000)            # before
        sale("P", "confirmed", "2025-07-01", 50000)            # after
        sale("P", "submitted", "2025-01-01", 99900)            # not revenue
        sale("P", "cancelled", "2025-01-02", 99900)
        sale("Q", "confirmed", "2025-01-05", 100000)
        sale("R", "shipped", "2025-02-05", 40000)
        sale("R", "invoiced", "2025-02-06", 60000)
        sale("S", "confirmed", "2025-03-01", 50000)
        sale("T", "confirmed", "2025-03-01", 30000)
        sale("U", "confirmed", "2025-03-01", 20000)
        sale("Z", "draft", "2025-03-01", 20000)
        # WEST: 80% and 95% exactly.
        for cid, name in [("X", "Xeno"), ("Y", "Yarrow"), ("W", "Wren")]:
            s.customer(cid, name, "WEST-CD")
        sale("X", "invoiced", "2025-05-01", 800000)
        sale("Y", "invoiced", "2025-05-01", 150000)
        sale("W", "invoiced", "2025-05-01", 50000)

    def abc_rows(self, *args):
        return [(r["rank"], r["customer"], cents(r["revenue"]), pct(r["share"]),
                 pct(r["cumulative"]), r["class"])
                for r in self.json("abc", "--as-of", "2025-06-30", *args)]

    def test_abc_tie_and_boundaries(self):
        self.abc_data()
        # Total 10000.00.  Quay and Reed tie at 1000.00: the revenue before
        # both is Pine's 70% (< 80%), so both are A although Reed takes the
        # cumulative share to 90%.  Teal: 95% before it exactly -> C.
        self.assertEqual(self.abc_rows("--region", "EAST"), [
            (1, "Pine", 700000, 7000, 7000, "A"),
            (2, "Quay", 100000, 1000, 8000, "A"),
            (3, "Reed", 100000, 1000, 9000, "A"),
            (4, "Sand", 50000, 500, 9500, "B"),
            (5, "Teal", 30000, 300, 9800, "C"),
            (6, "Umber", 20000, 200, 10000, "C"),
        ])
        # Yarrow: exactly 80% before it -> B; Wren: exactly 95% -> C.
        self.assertEqual(self.abc_rows("--region", "WEST"), [
            (1, "Xeno", 800000, 8000, 8000, "A"),
            (2, "Yarrow", 150000, 1500, 9500, "B"),
            (3, "Wren", 50000, 500, 10000, "C"),
        ])

    def test_abc_all_and_period(self):
        self.abc_data()
        # Both regions: total 20000.00.  Before each: Xeno 0, Pine 40%,
        # Yarrow 75% (A); Quay and Reed 82.5% (B); Sand and Wren, tied at
        # 500.00, 92.5% (B); Teal 97.5%, Umber 99% (C).
        rows = self.abc_rows()
        self.assertEqual([(r[1], r[5]) for r in rows],
                         [("Xeno", "A"), ("Pine", "A"), ("Yarrow", "A"),
                          ("Quay", "B"), ("Reed", "B"), ("Sand", "B"),
                          ("Wren", "B"), ("Teal", "C"), ("Umber", "C")])
        self.assertEqual(rows[2][3], 750)       # 1500 / 20000 = 7.50%
        # The default period is the 12 months to --as-of: from 2024-07-01.
        text = self.ok("abc", "--as-of", "2025-06-30")
        self.assertIn("2024-07-01 to 2025-06-30", text)
        # An explicit period: only Pine's 2024-06-30 order.
        self.assertEqual(self.abc_rows("--from", "2024-06-30", "--to",
                                       "2024-06-30"),
                         [(1, "Pine", 50000, 10000, 10000, "A")])
        # The code and the customer id are in the JSON.
        r = self.json("abc", "--as-of", "2025-06-30", "--region", "EAST-SH")[0]
        self.assertEqual((r["code"], r["customer_id"]), ("KP", "P"))

    # ---------------------------------------------------------- receivables

    def receivables_data(self):
        s = self.s
        a = s.customer("a", "Acme", "EAST-SH")
        w = s.customer("w", "Wolf", "WEST-CD")
        r1 = s.order(a, "invoiced", "2025-03-01", [(1000, 10000, 0, 0)],
                     oid="r1")
        s.pay(r1, 3000)
        s.pay(r1, 1000)
        s.order(a, "invoiced", "2025-02-28", [(1000, 5000, 0, 0)], oid="r2")
        s.order(w, "invoiced", "2025-01-01", [(1000, 20000, 0, 0)],
                due="2025-04-15", oid="r3")
        s.order(w, "invoiced", "2025-01-01", [(1000, 8000, 0, 0)],
                due="2025-03-01", oid="r4")
        r5 = s.order(a, "invoiced", "2025-01-01", [(1000, 10000, 0, 0)],
                     oid="r5")
        s.pay(r5, 10000)                         # paid in full: not listed
        s.order(a, "shipped", "2025-01-01", [(1000, 10000, 0, 0)], oid="r6")

    def recv_rows(self, *args):
        return [(r["customer"], r["order"], r["ordered"], r["due"],
                 cents(r["invoiced"]), cents(r["paid"]), cents(r["balance"]),
                 r["days_overdue"], r["overdue"])
                for r in self.json("receivables", "--as-of", "2025-03-31",
                                   *args)]

    def test_receivables(self):
        self.receivables_data()
        # --days 30: r1 is 30 days old (due 03-31, not overdue), r2 31 days
        # (due 03-30, 1 day over); r3's due date wins over its age; r4 is
        # 30 days past its due date.
        self.assertEqual(self.recv_rows(), [
            ("Acme", "r2", "2025-02-28", "2025-03-30", 5000, 0, 5000, 1, True),
            ("Acme", "r1", "2025-03-01", "2025-03-31", 10000, 4000, 6000, 0,
             False),
            ("Wolf", "r3", "2025-01-01", "2025-04-15", 20000, 0, 20000, 0,
             False),
            ("Wolf", "r4", "2025-01-01", "2025-03-01", 8000, 0, 8000, 30,
             True),
        ])
        got = self.recv_rows("--days", "29")
        self.assertEqual([(r[1], r[3], r[7], r[8]) for r in got[:2]],
                         [("r2", "2025-03-29", 2, True),
                          ("r1", "2025-03-30", 1, True)])
        got = self.recv_rows("--days", "60")
        self.assertEqual([r[8] for r in got], [False, False, False, True])
        got = self.recv_rows("--region", "WEST")
        self.assertEqual([r[1] for r in got], ["r3", "r4"])
        text = self.ok("receivables", "--as-of", "2025-03-31")
        self.assertRegex(text, r"(?m)^total +430\.00 +40\.00 +390\.00$")

    # ------------------------------------------------------------ birthdays

    def birthday_data(self):
        s = self.s
        e = s.customer("e", "East Co", "EAST-SH")
        w = s.customer("w", "West Co", "WEST")
        s.contact(e, "Ann", "1980-12-25", phone="021-1")
        s.contact(w, "Bob", "1990-01-10", mobile="139")
        s.contact(e, "Cai", "1985-01-19")
        s.contact(e, "Dan", "1985-01-20")
        s.contact(e, "Eve", "1970-12-20")
        s.contact(e, "Fay", "1970-12-19")
        s.contact(e, "Gus", "1992-02-29", phone="021-9", mobile="138")
        s.contact(w, "Hal", None)

    def bday_rows(self, asof, *args):
        return [(r["date"], r["in_days"], r["contact"], r["turns"])
                for r in self.json("birthdays", "--as-of", asof, *args)]

    def test_birthdays_year_end(self):
        self.birthday_data()
        # 2025-12-20 + 30 days = 2026-01-19, both ends included.
        self.assertEqual(self.bday_rows("2025-12-20"), [
            ("2025-12-20", 0, "Eve", 55),
            ("2025-12-25", 5, "Ann", 45),
            ("2026-01-10", 21, "Bob", 36),
            ("2026-01-19", 30, "Cai", 41),
        ])
        self.assertEqual([r[2] for r in self.bday_rows("2025-12-20",
                                                       "--region", "EAST")],
                         ["Eve", "Ann", "Cai"])
        rows = self.json("birthdays", "--as-of", "2025-12-20", "--days", "5")
        self.assertEqual([(r["contact"], r["customer"], r["phone"],
                           r["mobile"]) for r in rows],
                         [("Eve", "East Co", None, None),
                          ("Ann", "East Co", "021-1", None)])

    def test_birthdays_feb29(self):
        self.birthday_data()
        # In a common year a Feb 29 birthday falls on Feb 28.
        self.assertEqual(self.bday_rows("2025-02-20", "--days", "10"),
                         [("2025-02-28", 8, "Gus", 33)])
        self.assertEqual(self.bday_rows("2025-02-28", "--days", "0"),
                         [("2025-02-28", 0, "Gus", 33)])
        self.assertEqual(self.bday_rows("2028-02-20", "--days", "9"),
                         [("2028-02-29", 9, "Gus", 36)])
        self.assertEqual(self.bday_rows("2024-02-29", "--days", "0"),
                         [("2024-02-29", 0, "Gus", 32)])
        self.assertEqual(self.bday_rows("2025-03-01"), [])
        self.assertIn(("2026-02-28", 364, "Gus", 34),
                      self.bday_rows("2025-03-01", "--days", "365"))
        text = self.ok("birthdays", "--as-of", "2025-02-20", "--days", "10")
        self.assertRegex(text, r"(?m)^2025-02-28 +8 +Gus +1992-02-29 +33 +"
                               r"East Co +EAST-SH +021-9 +138$")

    # --------------------------------------------------------------- credit

    def credit_data(self):
        s = self.s
        s.customer("c1", "Alpha", "EAST-SH", credit_limit=100000)
        s.customer("c2", "Beta", "WEST-CD", credit_limit=50000)
        s.customer("c3", "Gamma", "EAST", credit_limit=100000)
        s.customer("c4", "Delta", "EAST")
        s.customer("c5", "Eps", "EAST")
        s.customer("c6", "Zeta", "EAST", credit_limit=0)
        s.customer("c7", "Eta", "EAST", credit_limit=0)
        s.order("c1", "submitted", "2025-01-01", [(1000, 60000, 0, 0)])
        o = s.order("c1", "invoiced", "2025-01-02", [(1000, 50000, 0, 0)])
        s.pay(o, 10000)                          # c1 owes 600 + 400
        s.order("c2", "confirmed", "2025-01-01", [(1000, 60000, 0, 0)])
        s.order("c3", "draft", "2025-01-01", [(1000, 30000, 0, 0)])
        s.order("c3", "cancelled", "2025-01-01", [(1000, 500000, 0, 0)])
        o = s.order("c3", "invoiced", "2025-01-01", [(1000, 10000, 0, 0)])
        s.pay(o, 15000)                          # overpaid: counts 0
        s.order("c5", "submitted", "2025-01-01", [(1000, 20000, 0, 0)])
        s.order("c7", "submitted", "2025-01-01", [(1000, 1, 0, 0)])

    def test_credit(self):
        self.credit_data()
        rows = self.json("credit")
        got = [(r["customer"], None if r["credit_limit"] is None
                else cents(r["credit_limit"]), cents(r["open"]),
                None if r["available"] is None else cents(r["available"]),
                pct(r["used"]), r["over_limit"]) for r in rows]
        # Over the limit first; Alpha at exactly its limit is not over;
        # Gamma's draft counts (as in the client's credit check), its
        # cancelled order does not, its overpaid order counts 0.
        self.assertEqual(got, [
            ("Beta", 50000, 60000, -10000, 12000, True),
            ("Eta", 0, 1, -1, None, True),
            ("Alpha", 100000, 100000, 0, 10000, False),
            ("Gamma", 100000, 30000, 70000, 3000, False),
            ("Eps", None, 20000, None, None, False),
            ("Zeta", 0, 0, 0, None, False),
        ])
        self.assertEqual([r["customer"] for r in
                          self.json("credit", "--region", "WEST")], ["Beta"])
        text = self.ok("credit")
        self.assertRegex(text, r"(?m)^Beta +WEST-CD +500\.00 +600\.00 +-100\.00 "
                               r"+120\.00% +yes$")
        self.assertRegex(text, r"(?m)^Eps +EAST +- +200\.00 +- +- +no$")

    # --------------------------------------------------------------- region

    def test_region_subtree(self):
        s = self.s
        for cid, region in [("a", "EAST"), ("b", "EAST-SH"),
                            ("c", "EAST-SH-PD"), ("d", "WEST"),
                            ("e", "WEST-CD"), ("f", None), ("g", "HQ")]:
            s.customer(cid, "Cust " + cid, region, credit_limit=1000)

        def names(*args):
            return sorted(r["customer_id"] for r in self.json("credit", *args))

        self.assertEqual(names(), ["a", "b", "c", "d", "e", "f", "g"])
        self.assertEqual(names("--region", "HQ"), ["a", "b", "c", "d", "e", "g"])
        self.assertEqual(names("--region", "EAST"), ["a", "b", "c"])
        self.assertEqual(names("--region", "EAST-SH"), ["b", "c"])
        self.assertEqual(names("--region", "EAST-SH-PD"), ["c"])
        self.assertEqual(names("--region", "WEST"), ["d", "e"])
        err = self.fails(1, "credit", "--region", "NORTH")
        self.assertIn("NORTH", err)
        # A cycle in the tree (written behind the tool's back) still ends.
        s.db.execute("UPDATE fs_dept SET parent = 'EAST-SH-PD' "
                     "WHERE code = 'EAST'")
        self.assertEqual(names("--region", "EAST-SH"), ["a", "b", "c"])

    # -------------------------------------------------------------- formats

    def test_csv_json_text_agree(self):
        s = self.s
        s.customer("q", 'Smith, "Big" Co', "EAST", credit_limit=100000)
        s.customer("z", "华东机械制造", "WEST", credit_limit=250)
        s.customer("n", "Line\nBreak", "WEST", credit_limit=1000)
        s.order("q", "submitted", "2025-01-01", [(1000, 12345, 0, 0)])
        s.order("z", "submitted", "2025-01-01", [(1000, 12345, 0, 0)])
        rows = self.json("credit")
        table = self.csv("credit")
        self.assertEqual(table[0], ["customer", "region", "credit_limit",
                                    "open", "available", "used",
                                    "over_limit", "customer_id"])
        self.assertEqual(len(table), len(rows) + 1)
        # Records end in CRLF; the LF inside the quoted name is data.
        self.assertEqual(self.last_csv.count("\r\n"), len(rows) + 1)
        self.assertEqual(self.last_csv.replace("\r\n", "").count("\n"), 1)
        for rec, obj in zip(table[1:], rows):
            as_text = []
            for k in table[0]:
                v = obj[k]
                as_text.append("" if v is None else
                               ("true" if v else "false") if v is True or
                               v is False else str(v))
            self.assertEqual(rec, as_text)
        self.assertEqual(table[1][0], "华东机械制造")
        self.assertIn('Smith, "Big" Co', [r[0] for r in table])
        self.assertIn("Line\nBreak", [r[0] for r in table])
        self.assertEqual(table[1][3], "123.45")
        self.assertEqual(table[1][5], "4938.00")   # 123.45 / 2.50
        # The text table: every numeric cell ends where its column's rule
        # ends, counting a CJK character as two cells.
        text = self.ok("credit").splitlines()
        rule = next(l for l in text if l.startswith("---"))
        ends = [m.end() for m in re.finditer(r"-+", rule)]
        rows_text = [l for l in text if "123.45" in l]
        self.assertEqual(len(rows_text), 2)
        for line in rows_text:
            i = line.index("123.45") + len("123.45")
            self.assertEqual(display_width(line[:i]), ends[3], line)
        self.assertTrue(any("Line Break" in l for l in text))

    def test_empty(self):
        self.assertEqual(self.json("credit"), [])
        self.assertEqual(self.csv("orders"),
                         [["month", "region", "rep", "orders", "net", "tax",
                           "gross"]])
        self.assertIn("(none)", self.ok("receivables"))
        path = os.path.join(self.tmp, "empty.svg")
        self.ok("orders", "--svg", path)
        bars, _, _ = self.svg(path)
        self.assertEqual(bars, [])

    # --------------------------------------------------------------- errors

    def test_errors(self):
        bad = os.path.join(self.tmp, "no-such-dir", "x.svg")
        cases = [
            (2, []),
            (2, ["pipeline"]),
            (2, ["funnel", "extra"]),
            (2, ["funnel", "--bogus"]),
            (2, ["funnel", "--from", "2025-02-30"]),
            (2, ["funnel", "--to", "yesterday"]),
            (2, ["funnel", "--from", "2025-03-01", "--to", "2025-02-01"]),
            (2, ["funnel", "--region"]),
            (2, ["funnel", "--region", "--csv"]),
            (2, ["funnel", "--svg"]),
            (2, ["funnel", "--csv", "--json"]),
            (2, ["funnel", "--region", "EAST", "--region", "WEST"]),
            (2, ["funnel", "--days", "5"]),
            (2, ["funnel", "--as-of", "2025-01-01"]),
            (2, ["credit", "--from", "2025-01-01"]),
            (2, ["birthdays", "--days", "-1"]),
            (2, ["birthdays", "--days", "367"]),
            (2, ["receivables", "--days", "ten"]),
            (2, ["birthdays", "--as-of", "2025-13-01"]),
            (2, ["abc", "--svg", os.path.join(self.tmp, "a.svg")]),
            (2, ["credit", "--svg", os.path.join(self.tmp, "c.svg")]),
            (1, ["orders", "--region", "NOWHERE"]),
            (1, ["funnel", "--svg", bad]),
            (1, ["funnel", "--svg", self.tmp]),
        ]
        for code, args in cases:
            with self.subTest(args=args):
                self.fails(code, *args)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "a.svg")))
        self.fails(1, "funnel", dir=os.path.join(self.tmp, "not-a-server"))

    def test_today_is_the_default(self):
        import datetime
        for _ in range(3):
            today = datetime.datetime.now(datetime.timezone.utc).date()
            e = self.s.customer("t%s" % today, "Today Co", "EAST")
            self.s.contact(e, "Tia", "1990-%02d-%02d" % (today.month, today.day)
                           if (today.month, today.day) != (2, 29)
                           else "1992-02-29")
            rows = self.json("birthdays", "--days", "0")
            if datetime.datetime.now(datetime.timezone.utc).date() == today:
                self.assertEqual([(r["contact"], r["in_days"]) for r in rows],
                                 [("Tia", 0)])
                return
        self.fail("the date kept changing")


if __name__ == "__main__":
    unittest.main(verbosity=2)
