#!/usr/bin/env python3
"""customer copy and customer merge, checked in the database and in the
change log."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FsTestCase, UUID_RE, main, check_fields  # noqa: E402

CUSTOMER_COLS = ["code", "name", "address", "city", "postcode", "phone", "email",
                 "website", "industry", "level", "type", "status", "credit_rating",
                 "credit_limit", "price_list", "parent_customer", "finance_contact",
                 "department", "region", "owner", "notes"]


class CustomerOps(FsTestCase):

    def setUp(self):
        super().setUp()
        self.r.ok("init", "--user", "alice")

    def row(self, cid):
        rows = self.r.sql_dicts("SELECT * FROM customer WHERE id=?", (cid,))
        return rows[0] if rows else None

    def log_since(self, n):
        return self.r.sql("SELECT tbl, rid, op, col, val FROM fs_change ORDER BY seq")[n:]

    def log_len(self):
        return self.r.sql("SELECT count(*) FROM fs_change")[0][0]

    def test_copy(self):
        r = self.r
        pl = r.add("price_list", name="Dealers")
        cid = r.add("customer", name="Acme Ltd", code="AC-1", city="Shanghai",
                    credit_limit="1500.25", level="A", price_list=pl,
                    notes="multi\nline, \"quoted\"", status="active")
        r.add("contact", customer=cid, name="Li Wei")
        n = self.log_len()
        orig = self.row(cid)
        obj = r.json("customer", "copy", cid)
        self.assertIsInstance(obj, dict)
        new = obj["id"]
        self.assertRegex(new, UUID_RE)
        self.assertNotEqual(new, cid)
        copy = self.row(new)
        self.assertIsNotNone(copy, "the copy is in the database")
        self.assertEqual(copy["name"], "Acme Ltd (copy)")
        for c in CUSTOMER_COLS:
            if c != "name":
                self.assertEqual(copy[c], orig[c], "copy.%s" % c)
        self.assertRegex(copy["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(self.row(cid), orig, "copy changed the original")
        # contacts stay with the original
        self.assertEqual(r.sql("SELECT count(*) FROM contact WHERE customer=?", (new,)), [(0,)])
        log = self.log_since(n)
        self.assertEqual([(t, i, o) for t, i, o, _, _ in log], [("customer", new, "I")])
        # plain copy prints the id
        out = r.ok("customer", "copy", cid).strip()
        self.assertRegex(out, UUID_RE)
        self.assertEqual(self.row(out)["name"], "Acme Ltd (copy)")
        before = r.snapshot()
        self.assertFailed(r.run("customer", "copy", "0190a0a0-0000-7000-8000-000000000000"),
                          code=1, what="copy of an unknown customer")
        self.assertEqual(r.snapshot(), before)

    def test_merge(self):
        r = self.r
        pl = r.add("price_list", name="Dealers")
        keep = r.add("customer", name="Acme Ltd", city="Shanghai", credit_limit="1000",
                     code="K-1")
        dup = r.add("customer", name="ACME Limited", city="Beijing", phone="021-555",
                    email="x@acme.example", website="acme.example", credit_limit="2000",
                    notes="dup notes", status="active", price_list=pl, code="D-1",
                    region="East")
        other = r.add("customer", name="Bystander", city="Wuhan")
        child = r.add("customer", name="Acme Branch", parent_customer=dup)
        k_contact = r.add("contact", customer=keep, name="Kept Contact")
        d_contacts = [r.add("contact", customer=dup, name="Dup Contact %d" % i) for i in (1, 2)]
        o_contact = r.add("contact", customer=other, name="Other Contact")
        visit = r.add("visit", customer=dup, contact=d_contacts[0], planned_at="2026-03-01 10:00")
        opp = r.add("opportunity", customer=dup, title="Big deal")
        r.add("product", sku="S1", name="S", list_price="10")
        quote = r.json("quote", "new", "--customer", dup, "--line", "S1:1")["id"]
        order = r.json("order", "new", "--customer", dup, "--line", "S1:2")["id"]
        o_order = r.json("order", "new", "--customer", other, "--line", "S1:1")["id"]
        keep_before = self.row(keep)
        dup_before = self.row(dup)
        lines_before = r.sql('SELECT * FROM order_line ORDER BY id')
        n = self.log_len()

        r.ok("customer", "merge", keep, dup)

        self.assertIsNone(self.row(dup), "the duplicate is deleted")
        self.assertFailed(r.run("customer", "show", dup), code=1)
        k = self.row(keep)
        # keep's own values win; its empty fields are filled from the duplicate
        filled = {}
        for c in CUSTOMER_COLS:
            if keep_before[c] is not None:
                self.assertEqual(k[c], keep_before[c], "kept field %s overwritten" % c)
            else:
                self.assertEqual(k[c], dup_before[c], "empty field %s not filled" % c)
                if dup_before[c] is not None:
                    filled[c] = dup_before[c]
        self.assertEqual(set(filled), {"phone", "email", "website", "notes",
                                       "price_list", "region"})
        self.assertEqual(k["status"], "prospect")
        self.assertEqual(k["created_at"], keep_before["created_at"])
        # every reference moved to keep
        self.assertEqual(r.sql("SELECT id, customer FROM contact ORDER BY id"),
                         sorted([(k_contact, keep), (d_contacts[0], keep),
                                 (d_contacts[1], keep), (o_contact, other)]))
        self.assertEqual(r.sql("SELECT customer, contact FROM visit WHERE id=?", (visit,)),
                         [(keep, d_contacts[0])])
        self.assertEqual(r.sql("SELECT customer FROM opportunity WHERE id=?", (opp,)), [(keep,)])
        self.assertEqual(r.sql("SELECT customer FROM quote WHERE id=?", (quote,)), [(keep,)])
        self.assertEqual(r.sql("SELECT id, customer FROM sales_order ORDER BY id"),
                         sorted([(order, keep), (o_order, other)]))
        self.assertEqual(r.sql("SELECT parent_customer FROM customer WHERE id=?", (child,)),
                         [(keep,)])
        self.assertEqual(r.sql('SELECT * FROM order_line ORDER BY id'), lines_before)
        for tbl, col in [("contact", "customer"), ("visit", "customer"),
                         ("opportunity", "customer"), ("quote", "customer"),
                         ("sales_order", "customer"), ("customer", "parent_customer")]:
            self.assertEqual(r.sql('SELECT count(*) FROM "%s" WHERE "%s"=?' % (tbl, col), (dup,)),
                             [(0,)], "%s still points at the duplicate" % tbl)

        # all of it captured as ordinary changes, and nothing else
        log = self.log_since(n)
        got = sorted((t, i, o, c) for t, i, o, c, _ in log)
        want = sorted(
            [("contact", cid, "U", "customer") for cid in d_contacts] +
            [("visit", visit, "U", "customer"), ("opportunity", opp, "U", "customer"),
             ("quote", quote, "U", "customer"), ("sales_order", order, "U", "customer"),
             ("customer", child, "U", "parent_customer"), ("customer", dup, "D", None)] +
            [("customer", keep, "U", c) for c in filled])
        self.assertEqual(got, want)
        for t, i, o, c, v in log:
            if o == "U" and c in ("customer", "parent_customer"):
                self.assertEqual(v, '"%s"' % keep)
        # the delete comes after the moves
        self.assertEqual(log[-1][2], "D")
        self.assertEqual(r.pending(), n + len(want))

    def test_merge_errors_change_nothing(self):
        r = self.r
        a = r.add("customer", name="A", city="X")
        b = r.add("customer", name="B", phone="1")
        r.add("contact", customer=b, name="C")
        before = r.snapshot()
        ghost = "0190a0a0-0000-7000-8000-000000000000"
        self.assertFailed(r.run("customer", "merge", a, a), code=1, what="merge into itself")
        self.assertFailed(r.run("customer", "merge", a, ghost), code=1, what="unknown duplicate")
        self.assertFailed(r.run("customer", "merge", ghost, b), code=1, what="unknown keep")
        self.assertFailed(r.run("customer", "merge", a), code=2, what="merge with one id")
        self.assertEqual(r.snapshot(), before)
        check_fields(self, r, "customer", b, {"phone": ("text", "1")})


if __name__ == "__main__":
    main()
