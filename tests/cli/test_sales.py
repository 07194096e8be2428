#!/usr/bin/env python3
"""Quotes, orders, totals, the credit limit, status flow and payments.

Expected totals are computed here with exact integer arithmetic from the
rule in docs/cli.md: line net = quantity x unit price - discount, rounded
half up to the cent; tax = net x tax rate, rounded half up per line;
totals are sums of lines."""
import datetime
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import (FsTestCase, TS_RE, line_amounts, main, check_fields)  # noqa: E402


def expected_totals(lines):
    """lines: [(qty, price, discount, tax_rate)] as text; cents."""
    net = tax = 0
    for q, p, d, t in lines:
        n, x = line_amounts(q, p, d, t)
        net += n
        tax += x
    return net, tax, net + tax


class SalesBase(FsTestCase):

    def setUp(self):
        super().setUp()
        r = self.r
        r.ok("init", "--user", "alice")
        self.p = {}
        for sku, price, tax in [("WID-1", "19.99", "13"), ("GAD-2", "0.03", "10"),
                                ("SRV-3", "1234.56", "6"), ("GAD-4", "0.05", "10"),
                                ("ZERO", "100", "0"), ("BIG", "999999999.99", "13")]:
            self.p[sku] = r.add("product", sku=sku, name="Product " + sku,
                                list_price=price, tax_rate=tax)

    def add_price(self, pl, sku, price):
        """A price list entry.  Made through CSV import so that the pricing
        tests do not hinge on `price_list_item add` (test_crud covers it)."""
        path = self.write("pli-%s.csv" % sku,
                          "price_list,product,price\r\n%s,%s,%s\r\n" % (pl, self.p[sku], price))
        self.r.ok("price_list_item", "import", path)

    def check_totals(self, noun, rid, lines, paid=None):
        net, tax, gross = expected_totals(lines)
        obj = self.r.show(noun, rid)
        self.assertIn("totals", obj, "%s show --json must have totals" % noun)
        self.assertIn("lines", obj, "%s show --json must have lines" % noun)
        self.assertIsInstance(obj["lines"], list)
        self.assertEqual(len(obj["lines"]), len(lines))
        t = obj["totals"]
        self.assertMoney(t.get("net"), net, "%s totals.net" % noun)
        self.assertMoney(t.get("tax"), tax, "%s totals.tax" % noun)
        self.assertMoney(t.get("gross"), gross, "%s totals.gross" % noun)
        if noun == "order":
            self.assertMoney(t.get("paid"), paid or 0, "order totals.paid")
        return obj

    def line_of(self, obj, sku):
        found = [l for l in obj["lines"] if l.get("product") == self.p[sku]]
        self.assertEqual(len(found), 1, "one line for %s in %r" % (sku, obj["lines"]))
        return found[0]


class Quotes(SalesBase):

    def test_quote_prices_from_price_list_then_list_price(self):
        r = self.r
        pl = r.add("price_list", name="Dealers")
        self.add_price(pl, "WID-1", "17.50")
        c = r.add("customer", name="Dealer Co", price_list=pl)
        q = r.json("quote", "new", "--customer", c, "--line", "WID-1:2.5",
                   "--line", "GAD-2:1.5", "--line", "SRV-3:3:99.95")
        qid = q["id"]
        lines = [("2.5", "17.50", "0", "13"),    # price list price
                 ("1.5", "0.03", "0", "10"),     # list price (not on the list)
                 ("3", "99.95", "0", "6")]       # typed price
        obj = self.check_totals("quote", qid, lines)
        # 43.75 + 0.05 (0.045 half up) + 299.85 ; 5.69 + 0.01 + 17.99
        self.assertEqual(expected_totals(lines), (34365, 2369, 36734))
        self.assertEqual(obj["status"], "draft")
        self.assertEqual(obj["customer"], c)
        l1 = self.line_of(obj, "WID-1")
        self.assertMoney(l1["unit_price"], "17.50")
        self.assertEqual(l1["quantity"], 2.5)
        self.assertEqual(l1["tax_rate"], 13)
        self.assertMoney(self.line_of(obj, "GAD-2")["unit_price"], "0.03")
        self.assertMoney(self.line_of(obj, "SRV-3")["unit_price"], "99.95")
        self.assertEqual(self.line_of(obj, "SRV-3")["tax_rate"], 6)
        # the stored lines, read directly
        rows = r.sql("SELECT product, quantity, unit_price, discount, tax_rate "
                     "FROM quote_line WHERE quote=? ORDER BY unit_price", (qid,))
        self.assertEqual(rows, [(self.p["GAD-2"], 1500, 3, 0, 1000),
                                (self.p["WID-1"], 2500, 1750, 0, 1300),
                                (self.p["SRV-3"], 3000, 9995, 0, 600)])

        # without a price list: list price; half-up on net and on tax
        c2 = r.add("customer", name="Walk-in")
        q2 = r.json("quote", "new", "--customer", c2, "--line", "WID-1:2.5")["id"]
        self.check_totals("quote", q2, [("2.5", "19.99", "0", "13")])
        self.assertEqual(expected_totals([("2.5", "19.99", "0", "13")]),
                         (4998, 650, 5648))

    def test_tax_rounded_per_line(self):
        r = self.r
        c = r.add("customer", name="Acme")
        # 3 x 0.05 = 0.15, tax 10% = 0.015 -> 0.02 per line, 0.04 in all
        # (0.03 if taxed on the sum)
        q = r.json("quote", "new", "--customer", c, "--line", "GAD-4:3",
                   "--line", "GAD-2:5")["id"]
        lines = [("3", "0.05", "0", "10"), ("5", "0.03", "0", "10")]
        self.assertEqual(expected_totals(lines), (30, 4, 34))
        self.check_totals("quote", q, lines)

    def test_half_up_on_tax(self):
        r = self.r
        c = r.add("customer", name="Acme")
        # 10.50 x 13% = 1.365 -> 1.37 (half up; half-even or binary floats give 1.36)
        q = r.json("quote", "new", "--customer", c, "--line", "WID-1:1:10.50")["id"]
        self.assertEqual(expected_totals([("1", "10.50", "0", "13")]), (1050, 137, 1187))
        self.check_totals("quote", q, [("1", "10.50", "0", "13")])
        # 0.5 x 0.01 = 0.005 -> 0.01
        q = r.json("quote", "new", "--customer", c, "--line", "ZERO:0.5:0.01")["id"]
        self.check_totals("quote", q, [("0.5", "0.01", "0", "0")])

    def test_discount(self):
        r = self.r
        c = r.add("customer", name="Acme")
        qid = r.json("quote", "new", "--customer", c, "--line", "SRV-3:3:99.95",
                     "--line", "WID-1:7:3.33")["id"]
        lid = r.sql("SELECT id FROM quote_line WHERE quote=? AND product=?",
                    (qid, self.p["SRV-3"]))[0][0]
        r.edit("quote_line", lid, discount="12.5")
        lines = [("3", "99.95", "12.5", "6"), ("7", "3.33", "0", "13")]
        # 299.85 x 0.875 = 262.36875 -> 262.37 ; tax 15.7422 -> 15.74
        self.assertEqual(line_amounts("3", "99.95", "12.5", "6"), (26237, 1574))
        self.check_totals("quote", qid, lines)

    def test_large_amounts_exact(self):
        """999999.999 x 999999999.99 with 13% tax: far beyond a double's
        exact range and beyond 64-bit intermediate products."""
        r = self.r
        c = r.add("customer", name="Mega")
        qid = r.json("quote", "new", "--customer", c, "--line", "BIG:999999.999")["id"]
        lines = [("999999.999", "999999999.99", "0", "13")]
        self.check_totals("quote", qid, lines)
        lid = r.sql("SELECT id FROM quote_line WHERE quote=?", (qid,))[0][0]
        r.edit("quote_line", lid, discount="33.33")
        self.check_totals("quote", qid, [("999999.999", "999999999.99", "33.33", "13")])

    def test_quote_new_with_extra_fields_and_unknown_sku(self):
        r = self.r
        c = r.add("customer", name="Acme")
        q = r.json("quote", "new", "--customer", c, "--line", "ZERO:1",
                   "--valid_until", "2026-12-31", "--notes", "Year end")
        check_fields(self, r, "quote", q["id"], {"valid_until": ("date", "2026-12-31"),
                                                  "notes": ("text", "Year end")})
        before = r.snapshot()
        self.assertFailed(r.run("quote", "new", "--customer", c, "--line", "ZERO:1",
                                "--line", "NO-SUCH-SKU:1"), what="unknown sku")
        self.assertFailed(r.run("quote", "new", "--customer", c, "--line", "ZERO:0"),
                          what="zero quantity")
        self.assertFailed(r.run("quote", "new", "--customer", c, "--line", "ZERO:1:1.001"),
                          what="price with three decimals")
        self.assertEqual(r.snapshot(), before, "failed quote new wrote something")


class Orders(SalesBase):

    def test_order_from_quote(self):
        r = self.r
        c = r.add("customer", name="Acme")
        qid = r.json("quote", "new", "--customer", c, "--line", "WID-1:2.5",
                     "--line", "SRV-3:1:1000.01")["id"]
        lid = r.sql("SELECT id FROM quote_line WHERE quote=? AND product=?",
                    (qid, self.p["SRV-3"]))[0][0]
        r.edit("quote_line", lid, discount="5")
        lines = [("2.5", "19.99", "0", "13"), ("1", "1000.01", "5", "6")]
        o = r.json("order", "from-quote", qid)
        oid = o["id"]
        obj = self.check_totals("order", oid, lines, paid=0)
        self.assertEqual(obj["status"], "draft")
        self.assertEqual(obj["quote"], qid)
        self.assertEqual(obj["customer"], c)
        self.assertIs(obj["credit_override"], False)
        self.assertEqual(r.sql("SELECT status FROM quote WHERE id=?", (qid,)), [("accepted",)])
        q_lines = sorted(r.sql("SELECT product, quantity, unit_price, discount, tax_rate "
                               "FROM quote_line WHERE quote=?", (qid,)))
        o_lines = sorted(r.sql('SELECT product, quantity, unit_price, discount, tax_rate '
                               'FROM order_line WHERE "order"=?', (oid,)))
        self.assertEqual(q_lines, o_lines)

    def test_order_new(self):
        r = self.r
        pl = r.add("price_list", name="Dealers")
        self.add_price(pl, "GAD-4", "0.04")
        c = r.add("customer", name="Acme", price_list=pl)
        oid = r.json("order", "new", "--customer", c, "--line", "GAD-4:1000",
                     "--line", "WID-1:0.333")["id"]
        self.check_totals("order", oid, [("1000", "0.04", "0", "10"),
                                         ("0.333", "19.99", "0", "13")])

    def test_status_flow(self):
        r = self.r
        c = r.add("customer", name="Acme")
        oid = r.json("order", "new", "--customer", c, "--line", "ZERO:1")["id"]

        def status():
            return r.sql("SELECT status FROM sales_order WHERE id=?", (oid,))[0][0]

        def refused(verb):
            before = r.snapshot()
            self.assertFailed(r.run("order", verb, oid), code=1,
                              what="order %s from %s" % (verb, status()))
            self.assertEqual(r.snapshot(), before)

        refused("confirm")
        refused("ship")
        refused("invoice")
        # skipping a step or going back is refused; asking for the status
        # the order already has may be refused or a no-op, but writes nothing
        wrong_next = {"submitted": ["ship", "invoice"],
                      "confirmed": ["submit", "invoice"],
                      "shipped": ["submit", "confirm"],
                      "invoiced": ["submit", "confirm", "ship", "cancel"]}
        same = {"submitted": "submit", "confirmed": "confirm", "shipped": "ship",
                "invoiced": "invoice"}
        for verb, st in [("submit", "submitted"), ("confirm", "confirmed"),
                         ("ship", "shipped"), ("invoice", "invoiced")]:
            r.ok("order", verb, oid)
            self.assertEqual(status(), st)
            for bad in wrong_next[st]:
                refused(bad)
            before = r.snapshot()
            rc, out, err = r.run("order", same[st], oid)
            self.assertIn(rc, (0, 1), err)
            self.assertEqual(r.snapshot(), before, "order %s of a %s order wrote something"
                             % (same[st], st))
        self.assertEqual(status(), "invoiced")

        # every other status may be cancelled; cancelled is final
        for steps in ([], ["submit"], ["submit", "confirm"],
                      ["submit", "confirm", "ship"]):
            o2 = r.json("order", "new", "--customer", c, "--line", "ZERO:1")["id"]
            for v in steps:
                r.ok("order", v, o2)
            r.ok("order", "cancel", o2)
            self.assertEqual(r.sql("SELECT status FROM sales_order WHERE id=?", (o2,)),
                             [("cancelled",)])
            for v in ("submit", "confirm", "ship", "invoice"):
                self.assertFailed(r.run("order", v, o2), code=1,
                                  what="order %s after cancel" % v)
        self.assertFailed(r.run("order", "submit", "0190a0a0-0000-7000-8000-000000000000"),
                          code=1, what="submit unknown order")

    def test_order_lines_locked_after_draft(self):
        r = self.r
        c = r.add("customer", name="Acme")
        oid = r.json("order", "new", "--customer", c, "--line", "ZERO:1")["id"]
        lid = r.sql('SELECT id FROM order_line WHERE "order"=?', (oid,))[0][0]
        r.edit("order_line", lid, quantity="2")           # draft: fine
        r.ok("order", "submit", oid)
        before = r.snapshot()
        self.assertFailed(r.run("order_line", "edit", lid, "--quantity", "3"), code=1,
                          what="editing a line of a submitted order")
        self.assertFailed(r.run("order_line", "add", "--order", oid, "--product",
                                self.p["ZERO"], "--quantity", "1", "--unit_price", "1"),
                          code=1, what="adding a line to a submitted order")
        self.assertEqual(r.snapshot(), before)

    def test_payments(self):
        r = self.r
        c = r.add("customer", name="Acme")
        oid = r.json("order", "new", "--customer", c, "--line", "WID-1:3")["id"]
        lines = [("3", "19.99", "0", "13")]
        r.ok("order", "submit", oid)
        r.add("payment", order=oid, amount="10.01", paid_at="2026-03-01 10:00")
        r.add("payment", order=oid, amount="20", paid_at="2026-03-02 10:00", method="cash")
        self.check_totals("order", oid, lines, paid=3001)
        before = r.snapshot()
        for bad in ("0", "-5", "1.234", "abc"):
            self.assertFailed(r.run("payment", "add", "--order", oid, "--amount", bad,
                                    "--paid_at", "2026-03-03 10:00"), code=1,
                              what="payment amount %r" % bad)
        self.assertFailed(r.run("payment", "add", "--order", oid, "--amount", "5"),
                          code=1, what="payment without paid_at")
        self.assertFailed(r.run("payment", "add", "--order",
                                "0190a0a0-0000-7000-8000-000000000000",
                                "--amount", "5", "--paid_at", "2026-03-03 10:00"),
                          code=1, what="payment for unknown order")
        self.assertEqual(r.snapshot(), before)


def r_count(r, c):
    return r.sql("SELECT count(*) FROM sales_order WHERE customer=?", (c,))[0][0]


class Credit(SalesBase):

    def setUp(self):
        super().setUp()
        # ZERO: 100.00, no tax.  Limit 500.00.
        self.c = self.r.add("customer", name="Careful Co", credit_limit="500")

    def refused(self, *args):
        r = self.r
        pending = r.pending()
        before = r.snapshot()
        res = r.run(*args)
        self.assertFailed(res, code=3, what=" ".join(args[:2]) + " over the credit limit")
        self.assertTrue(res[2].strip(), "credit refusal needs a message")
        self.assertEqual(r.pending(), pending, "a refused order changed the log")
        self.assertEqual(r.snapshot(), before, "a refused order wrote something")

    def new_order(self, qty, *extra):
        return self.r.json("order", "new", "--customer", self.c, "--line",
                           "ZERO:%s" % qty, *extra)["id"]

    def test_limit_refuses_new_order(self):
        r = self.r
        o1 = self.new_order(3)                       # 300
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:2.01")  # 501
        self.assertEqual(r_count(r, self.c), 1)
        ids = [o["id"] for o in r.list("order", "--customer", self.c)]
        self.assertEqual(ids, [o1])
        self.new_order(2)                            # exactly 500: allowed
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:0.01:1")
        self.assertEqual(r_count(r, self.c), 2)

    def test_limit_counts_gross(self):
        """The balance is what the customer owes: totals with tax."""
        r = self.r
        # WID-1 at 400.00 + 13% = 452.00 gross (400.00 net)
        r.ok("order", "new", "--customer", self.c, "--line", "WID-1:1:400")
        # 49.00 more: 501.00 gross (449.00 net) passes the limit
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:0.49")
        r.ok("order", "new", "--customer", self.c, "--line", "ZERO:0.48")   # 500.00
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:0.01:1")

    def test_override(self):
        r = self.r
        self.new_order(4)
        t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        o = r.json("order", "new", "--customer", self.c, "--line", "ZERO:2",
                   "--override-credit")
        t1 = datetime.datetime.now(datetime.timezone.utc)
        obj = check_fields(self, r, "order", o["id"], {
            "credit_override": ("bool", True), "credit_override_by": ("text", "alice")})
        at = obj["credit_override_at"]
        self.assertRegex(at or "", TS_RE)
        when = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertTrue(t0 - datetime.timedelta(seconds=2) <= when <= t1 + datetime.timedelta(seconds=2),
                        "credit_override_at %s is not the time of the override" % at)
        self.check_totals("order", o["id"], [("2", "100", "0", "0")], paid=0)
        # within the limit: no override recorded, even with the flag absent
        c2 = r.add("customer", name="Rich", credit_limit="100000")
        o2 = r.json("order", "new", "--customer", c2, "--line", "ZERO:1")["id"]
        check_fields(self, r, "order", o2, {"credit_override": ("bool", False),
                                            "credit_override_by": ("text", None),
                                            "credit_override_at": ("ts", None)})

    def test_from_quote_refused_then_override(self):
        r = self.r
        self.new_order(4)
        qid = r.json("quote", "new", "--customer", self.c, "--line", "ZERO:2")["id"]
        self.refused("order", "from-quote", qid)
        self.assertEqual(r.sql("SELECT status FROM quote WHERE id=?", (qid,)), [("draft",)])
        o = r.json("order", "from-quote", qid, "--override-credit")
        check_fields(self, r, "order", o["id"], {"credit_override": ("bool", True),
                                                 "credit_override_by": ("text", "alice"),
                                                 "quote": ("text", qid)})
        self.assertEqual(r.sql("SELECT status FROM quote WHERE id=?", (qid,)), [("accepted",)])

    def test_submit_checks_limit(self):
        r = self.r
        o1 = self.new_order(4)                       # 400
        r.ok("order", "submit", o1)                  # its own amount is not counted twice
        o2 = self.new_order(1)                       # 500 in all
        r.edit("customer", self.c, credit_limit="450")
        self.refused("order", "submit", o2)
        self.assertEqual(r.sql("SELECT status FROM sales_order WHERE id=?", (o2,)), [("draft",)])
        r.ok("order", "submit", o2, "--override-credit")
        check_fields(self, r, "order", o2, {"status": ("text", "submitted"),
                                            "credit_override": ("bool", True),
                                            "credit_override_by": ("text", "alice")})

    def test_cancelled_and_paid_orders(self):
        r = self.r
        o1 = self.new_order(4)                       # 400 open
        r.ok("order", "submit", o1)
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:1.5")  # 550
        r.add("payment", order=o1, amount="50", paid_at="2026-03-01 10:00")   # 350 open
        o2 = self.new_order("1.5")                   # 500: allowed
        self.refused("order", "new", "--customer", self.c, "--line", "ZERO:0.01")
        r.ok("order", "cancel", o2)                  # 350 open
        self.new_order("1.5")
        # other customers' orders do not count
        c2 = r.add("customer", name="Other", credit_limit="150")
        r.ok("order", "new", "--customer", c2, "--line", "ZERO:1.5")

    def test_no_limit_means_no_limit(self):
        r = self.r
        c = r.add("customer", name="Unlimited")
        r.ok("order", "new", "--customer", c, "--line", "BIG:1000")
        r.ok("order", "new", "--customer", c, "--line", "BIG:1000")
        self.assertEqual(r_count(r, c), 2)

    def test_zero_limit(self):
        r = self.r
        c = r.add("customer", name="Cash only", credit_limit="0")
        self.c = c
        self.refused("order", "new", "--customer", c, "--line", "ZERO:0.01:1")


if __name__ == "__main__":
    main()
