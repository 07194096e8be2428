#!/usr/bin/env python3
"""add / edit / delete / show / list (--json, --search, filters, --limit)
for every noun of docs/cli.md, checked against the JSON output contract and
against the SQLite file itself."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import (FsTestCase, NOUN_TABLE, TS_RE, UUID_RE, check_fields,  # noqa: E402
                    main, Replica)


class Crud(FsTestCase):

    # -------------------------------------------------------------- helpers
    def ids(self, noun, *args, **filters):
        recs = self.r.list(noun, *args, **filters)
        for rec in recs:
            self.assertIsInstance(rec, dict)
        return [rec["id"] for rec in recs]

    def db_ids(self, noun):
        return {row[0] for row in self.r.sql('SELECT id FROM "%s"' % NOUN_TABLE[noun])}

    def cycle(self, noun, add, expect, other, edit, edit_expect,
              search=None, filters=(), edit_filters=(), other_expect=None):
        """The whole life of one record of `noun`.
        search: (text, ) that matches only the first record;
        filters / edit_filters: [(field, value, {'a','o'})] expected matches
        before / after the edit ('a' = the record, 'o' = the other)."""
        r = self.r
        rid = r.add(noun, **add)
        self.assertRegex(rid, UUID_RE)
        obj = check_fields(self, r, noun, rid, expect)
        self.assertIn("created_at", obj)
        self.assertRegex(obj["created_at"] or "", TS_RE, "created_at is set by add")

        # add --json prints the record
        orec = r.add_json(noun, **other)
        self.assertIsInstance(orec, dict, "%s add --json must print the record" % noun)
        oid = orec.get("id")
        self.assertRegex(oid or "", UUID_RE)
        self.assertNotEqual(oid, rid)
        if other_expect:
            check_fields(self, r, noun, oid, other_expect)
        names = {"a": rid, "o": oid}

        # list --json: exactly the records in the table
        listed = self.ids(noun)
        self.assertEqual(len(listed), len(set(listed)), "list repeats records")
        self.assertEqual(set(listed), self.db_ids(noun))
        self.assertTrue({rid, oid} <= set(listed))
        # list entries carry the fields, like show
        rec = [x for x in r.list(noun) if x["id"] == rid][0]
        for f in expect:
            self.assertIn(f, rec, "%s list --json lacks field %s" % (noun, f))
        # --limit
        self.assertEqual(len(self.ids(noun, "--limit", "1")), 1)

        if search:
            self.assertEqual(set(self.ids(noun, "--search", search)), {rid},
                             "%s list --search %r" % (noun, search))
            self.assertEqual(self.ids(noun, "--search", "no-such-text-qq"), [])
        for field, value, want in filters:
            got = set(self.ids(noun, "--" + field, value))
            self.assertEqual(got, {names[w] for w in want},
                             "%s list --%s %r" % (noun, field, value))

        # edit
        r.edit(noun, rid, **edit)
        merged = dict(expect)
        merged.update(edit_expect)
        check_fields(self, r, noun, rid, merged)
        for field, value, want in edit_filters:
            got = set(self.ids(noun, "--" + field, value))
            self.assertEqual(got, {names[w] for w in want},
                             "%s list --%s %r after edit" % (noun, field, value))
        # edit --json prints the record
        v = r.json(noun, "edit", rid, *sum([["--" + k, str(val)] for k, val in edit.items()], []))
        self.assertIsInstance(v, dict)
        self.assertEqual(v.get("id"), rid)

        # delete
        r.ok(noun, "delete", rid)
        self.assertFailed(r.run(noun, "show", rid), code=1, what="show after delete")
        self.assertNotIn(rid, self.ids(noun))
        self.assertNotIn(rid, self.db_ids(noun))
        self.assertIn(oid, self.db_ids(noun), "delete removed another record")
        self.assertFailed(r.run(noun, "delete", rid), code=1, what="second delete")
        return rid, oid

    def world(self):
        r = self.r
        w = {}
        w["c"] = r.add("customer", name="Acme Trading", city="Shanghai")
        w["c2"] = r.add("customer", name="Zenith Works", city="Beijing")
        w["p1"] = r.add("product", sku="WID-100", name="Widget", list_price="12.5", tax_rate="13")
        w["p2"] = r.add("product", sku="GAD-200", name="Gadget", list_price="0.99")
        w["pl"] = r.add("price_list", name="Wholesale")
        w["q"] = r.add("quote", customer=w["c"])
        w["o"] = r.add("order", customer=w["c"])
        return w

    # --------------------------------------------------------------- nouns
    def test_customer(self):
        self.cycle(
            "customer",
            add={"name": "Acme Trading", "code": "C-001", "city": "Shanghai",
                 "email": "buyer@acme.example", "level": "A",
                 "credit_limit": "5000", "phone": "+86 21 5555 0101",
                 "postcode": "00123"},
            expect={"name": ("text", "Acme Trading"), "code": ("text", "C-001"),
                    "city": ("text", "Shanghai"),
                    "email": ("text", "buyer@acme.example"),
                    "level": ("text", "A"), "credit_limit": ("money", "5000"),
                    "phone": ("text", "+86 21 5555 0101"),
                    "postcode": ("text", "00123"),
                    "status": ("text", "prospect"), "notes": ("text", None),
                    "website": ("text", None)},
            other={"name": "Zenith Works", "city": "Beijing", "level": "B"},
            other_expect={"credit_limit": ("money", None), "level": ("text", "B")},
            search="aCmE tRAD",
            filters=[("level", "A", "a"), ("city", "Beijing", "o"),
                     ("status", "prospect", "ao")],
            edit={"city": "Hangzhou", "email": "", "credit_limit": "1234.5",
                  "status": "active", "notes": "Key account"},
            edit_expect={"city": ("text", "Hangzhou"), "email": ("text", None),
                         "credit_limit": ("money", "1234.50"),
                         "status": ("text", "active"),
                         "notes": ("text", "Key account")},
            edit_filters=[("status", "active", "a"), ("city", "Hangzhou", "a"),
                          ("credit_limit", "1234.50", "a")])

    def test_customer_search_any_text_field(self):
        r = self.r
        a = r.add("customer", name="Alpha", notes="met at the Canton Fair")
        b = r.add("customer", name="Beta", email="SALES@canton-goods.example")
        r.add("customer", name="Gamma", city="Wuhan")
        self.assertEqual(set(self.ids("customer", "--search", "CANTON")), {a, b})
        self.assertEqual(set(self.ids("customer", "--search", "wuh")),
                         set(self.ids("customer", "--city", "Wuhan")))
        # search and a filter together
        self.assertEqual(set(self.ids("customer", "--search", "canton", "--name", "Beta")), {b})

    def test_search_is_literal(self):
        r = self.r
        a = r.add("customer", name="Half price", notes="50% off")
        b = r.add("customer", name="Snake", notes="under_score")
        r.add("customer", name="Plain", notes="5000 off, underXscore")
        self.assertEqual(set(self.ids("customer", "--search", "50%")), {a})
        self.assertEqual(set(self.ids("customer", "--search", "r_s")), {b})
        self.assertEqual(set(self.ids("customer", "--search", "%")), {a})
        self.assertEqual(self.ids("customer", "--search", "'"), [])

    def test_list_order_by_label(self):
        r = self.r
        for n in ["Delta", "Alpha", "Charlie", "Bravo"]:
            r.add("customer", name=n)
        names = [c["name"] for c in r.list("customer")]
        self.assertEqual(names, ["Alpha", "Bravo", "Charlie", "Delta"])
        for s in ["SKU-3", "SKU-1", "SKU-2"]:
            r.add("product", sku=s, name="n" + s, list_price="1")
        self.assertEqual([p["sku"] for p in r.list("product")], ["SKU-1", "SKU-2", "SKU-3"])
        self.assertEqual(r.list("contact"), [])

    def test_contact(self):
        w = self.world()
        self.cycle(
            "contact",
            add={"customer": w["c"], "name": "Li Wei", "gender": "male",
                 "birthday": "1990-05-17", "title": "Buyer",
                 "email": "li.wei@acme.example"},
            expect={"customer": ("text", w["c"]), "name": ("text", "Li Wei"),
                    "gender": ("text", "male"), "birthday": ("date", "1990-05-17"),
                    "title": ("text", "Buyer"), "mobile": ("text", None)},
            other={"customer_id": w["c2"], "name": "Zhang Min", "gender": "female"},
            other_expect={"customer": ("text", w["c2"])},
            search="LI.WEI",
            filters=[("customer", w["c"], "a"), ("customer_id", w["c2"], "o"),
                     ("gender", "female", "o")],
            edit={"title": "Chief Buyer", "mobile": "13800000000",
                  "birthday": "1990-05-18"},
            edit_expect={"title": ("text", "Chief Buyer"),
                         "mobile": ("text", "13800000000"),
                         "birthday": ("date", "1990-05-18")},
            edit_filters=[("title", "Chief Buyer", "a")])

    def test_product(self):
        self.cycle(
            "product",
            add={"sku": "WID-100", "name": "Widget Deluxe", "list_price": "12.5",
                 "tax_rate": "13", "unit": "box"},
            expect={"sku": ("text", "WID-100"), "name": ("text", "Widget Deluxe"),
                    "list_price": ("money", "12.50"), "tax_rate": ("rate", "13"),
                    "unit": ("text", "box"), "active": ("bool", True)},
            other={"sku": "GAD-200", "name": "Gadget", "list_price": "0.99"},
            other_expect={"unit": ("text", "pcs"), "tax_rate": ("rate", "0"),
                          "list_price": ("money", "0.99")},
            search="DELUXE",
            filters=[("unit", "box", "a"), ("active", "true", "ao"),
                     ("list_price", "0.99", "o")],
            edit={"list_price": "13", "tax_rate": "7.5", "active": "false"},
            edit_expect={"list_price": ("money", "13.00"), "tax_rate": ("rate", "7.5"),
                         "active": ("bool", False)},
            edit_filters=[("active", "false", "a"), ("active", "1", "o"),
                          ("tax_rate", "7.50", "a")])

    def test_price_list(self):
        self.cycle(
            "price_list",
            add={"name": "Wholesale 2026", "currency": "USD",
                 "valid_from": "2026-01-01", "valid_to": "2026-12-31"},
            expect={"name": ("text", "Wholesale 2026"), "currency": ("text", "USD"),
                    "valid_from": ("date", "2026-01-01"),
                    "valid_to": ("date", "2026-12-31")},
            other={"name": "Retail"},
            other_expect={"currency": ("text", "CNY"), "valid_from": ("date", None)},
            search="WHOLESALE",
            filters=[("currency", "USD", "a"), ("currency", "CNY", "o")],
            edit={"valid_to": "2027-06-30", "name": "Wholesale 2026/27"},
            edit_expect={"valid_to": ("date", "2027-06-30"),
                         "name": ("text", "Wholesale 2026/27")},
            edit_filters=[("valid_to", "2027-06-30", "a")])

    def test_price_list_item(self):
        w = self.world()
        self.cycle(
            "price_list_item",
            add={"price_list": w["pl"], "product": w["p1"], "price": "9.99"},
            expect={"price_list": ("text", w["pl"]), "product": ("text", w["p1"]),
                    "price": ("money", "9.99")},
            other={"price_list_id": w["pl"], "product_id": w["p2"], "price": "0.5"},
            other_expect={"price": ("money", "0.50"), "product": ("text", w["p2"])},
            filters=[("product", w["p1"], "a"), ("price_list", w["pl"], "ao")],
            edit={"price": "8.75"},
            edit_expect={"price": ("money", "8.75")},
            edit_filters=[("price", "8.75", "a")])

    def test_visit(self):
        w = self.world()
        self.cycle(
            "visit",
            add={"customer": w["c"], "planned_at": "2026-03-02 09:30",
                 "purpose": "Quarterly review"},
            expect={"customer": ("text", w["c"]),
                    "planned_at": ("ts", "2026-03-02T09:30:00Z"),
                    "status": ("text", "planned"),
                    "purpose": ("text", "Quarterly review"),
                    "latitude": ("coord", None)},
            other={"customer": w["c2"], "planned_at": "2026-03-03T10:00:00Z",
                   "purpose": "Demo"},
            other_expect={"planned_at": ("ts", "2026-03-03T10:00:00Z")},
            search="QUARTERLY",
            filters=[("status", "planned", "ao"),
                     ("planned_at", "2026-03-02 09:30", "a")],
            edit={"status": "completed", "outcome": "Signed framework",
                  "latitude": "31.230416", "longitude": "-121.473701",
                  "next_step_due": "2026-04-01"},
            edit_expect={"status": ("text", "completed"),
                         "outcome": ("text", "Signed framework"),
                         "latitude": ("coord", "31.230416"),
                         "longitude": ("coord", "-121.473701"),
                         "next_step_due": ("date", "2026-04-01")},
            edit_filters=[("status", "completed", "a"), ("status", "planned", "o")])

    def test_opportunity(self):
        w = self.world()
        self.cycle(
            "opportunity",
            add={"customer": w["c"], "title": "Factory expansion",
                 "amount": "25000", "probability": "40",
                 "expected_close": "2026-09-30"},
            expect={"title": ("text", "Factory expansion"),
                    "stage": ("text", "lead"), "amount": ("money", "25000.00"),
                    "probability": ("int", 40),
                    "expected_close": ("date", "2026-09-30")},
            other={"customer": w["c"], "title": "Spare parts"},
            other_expect={"amount": ("money", None), "probability": ("int", None)},
            search="EXPANSION",
            filters=[("stage", "lead", "ao"), ("probability", "40", "a")],
            edit={"stage": "proposal", "probability": "60", "amount": ""},
            edit_expect={"stage": ("text", "proposal"), "probability": ("int", 60),
                         "amount": ("money", None)},
            edit_filters=[("stage", "proposal", "a")])

    def test_quote(self):
        w = self.world()
        self.cycle(
            "quote",
            add={"customer": w["c"], "valid_until": "2026-04-30",
                 "notes": "First offer"},
            expect={"customer": ("text", w["c"]), "status": ("text", "draft"),
                    "valid_until": ("date", "2026-04-30"),
                    "notes": ("text", "First offer")},
            other={"customer": w["c2"], "notes": "Second"},
            search="FIRST OFFER",
            filters=[("customer", w["c2"], "o")],
            edit={"status": "sent", "notes": "First offer, revised"},
            edit_expect={"status": ("text", "sent"),
                         "notes": ("text", "First offer, revised")},
            edit_filters=[("status", "sent", "a")])

    def test_quote_line(self):
        w = self.world()
        self.cycle(
            "quote_line",
            add={"quote": w["q"], "product": w["p1"], "quantity": "2.5",
                 "unit_price": "10", "discount": "5", "tax_rate": "13"},
            expect={"quote": ("text", w["q"]), "product": ("text", w["p1"]),
                    "quantity": ("qty", "2.5"), "unit_price": ("money", "10.00"),
                    "discount": ("rate", "5"), "tax_rate": ("rate", "13")},
            other={"quote": w["q"], "product": w["p2"], "quantity": "1",
                   "unit_price": "3"},
            other_expect={"discount": ("rate", "0"), "quantity": ("qty", "1")},
            filters=[("product", w["p1"], "a"), ("quote", w["q"], "ao")],
            edit={"quantity": "3", "discount": "12.5"},
            edit_expect={"quantity": ("qty", "3"), "discount": ("rate", "12.5")},
            edit_filters=[("quantity", "3", "a")])

    def test_order(self):
        w = self.world()
        self.cycle(
            "order",
            add={"customer": w["c"], "due_date": "2026-05-01", "notes": "Rush"},
            expect={"customer": ("text", w["c"]), "status": ("text", "draft"),
                    "due_date": ("date", "2026-05-01"), "notes": ("text", "Rush"),
                    "credit_override": ("bool", False),
                    "credit_override_by": ("text", None)},
            other={"customer": w["c2"]},
            search="RUSH",
            filters=[("customer", w["c2"], "o")],
            edit={"notes": "Rush delivery", "due_date": "2026-05-15"},
            edit_expect={"notes": ("text", "Rush delivery"),
                         "due_date": ("date", "2026-05-15")},
            edit_filters=[("due_date", "2026-05-15", "a")])

    def test_order_line(self):
        w = self.world()
        self.cycle(
            "order_line",
            add={"order": w["o"], "product": w["p1"], "quantity": "4",
                 "unit_price": "2.25"},
            expect={"order": ("text", w["o"]), "product": ("text", w["p1"]),
                    "quantity": ("qty", "4"), "unit_price": ("money", "2.25")},
            other={"order_id": w["o"], "product": w["p2"], "quantity": "1.5",
                   "unit_price": "1"},
            other_expect={"quantity": ("qty", "1.5")},
            filters=[("product", w["p1"], "a"), ("order", w["o"], "ao")],
            edit={"quantity": "5", "discount": "10"},
            edit_expect={"quantity": ("qty", "5"), "discount": ("rate", "10")},
            edit_filters=[("quantity", "5", "a")])

    def test_payment(self):
        w = self.world()
        # (whether a draft order or an overpayment is accepted is not specified)
        self.r.add("order_line", order=w["o"], product=w["p1"], quantity="10",
                   unit_price="100")
        self.r.ok("order", "submit", w["o"])
        self.cycle(
            "payment",
            add={"order": w["o"], "amount": "100.5", "paid_at": "2026-03-05 10:00",
                 "method": "transfer", "reference": "TX-991"},
            expect={"order": ("text", w["o"]), "amount": ("money", "100.50"),
                    "paid_at": ("ts", "2026-03-05T10:00:00Z"),
                    "method": ("text", "transfer"), "reference": ("text", "TX-991")},
            other={"order": w["o"], "amount": "20", "paid_at": "2026-03-06T08:00:00Z",
                   "method": "cash"},
            search="tx-99",
            filters=[("method", "transfer", "a"), ("order", w["o"], "ao")],
            edit={"amount": "99.99", "reference": "TX-992"},
            edit_expect={"amount": ("money", "99.99"), "reference": ("text", "TX-992")},
            edit_filters=[("amount", "99.99", "a")])

    # ------------------------------------------------------------ deletes
    def test_delete_quote_deletes_lines(self):
        w = self.world()
        r = self.r
        l1 = r.add("quote_line", quote=w["q"], product=w["p1"], quantity="1", unit_price="1")
        l2 = r.add("quote_line", quote=w["q"], product=w["p2"], quantity="2", unit_price="1")
        q2 = r.add("quote", customer=w["c"])
        l3 = r.add("quote_line", quote=q2, product=w["p1"], quantity="1", unit_price="1")
        r.ok("quote", "delete", w["q"])
        self.assertEqual(self.db_ids("quote_line"), {l3})
        self.assertEqual(set(self.ids("quote_line")), {l3})
        for lid in (l1, l2):
            self.assertFailed(r.run("quote_line", "show", lid), code=1)
        self.assertEqual(self.db_ids("quote"), {q2})

    def test_delete_order_deletes_lines(self):
        w = self.world()
        r = self.r
        l1 = r.add("order_line", order=w["o"], product=w["p1"], quantity="1", unit_price="1")
        l2 = r.add("order_line", order=w["o"], product=w["p2"], quantity="3", unit_price="2")
        r.ok("order", "delete", w["o"])
        self.assertEqual(self.db_ids("order_line"), set())
        self.assertEqual(self.db_ids("order"), set())
        for lid in (l1, l2):
            self.assertFailed(r.run("order_line", "show", lid), code=1)

    def test_delete_referenced_is_refused(self):
        w = self.world()
        r = self.r
        r.add("quote_line", quote=w["q"], product=w["p1"], quantity="1", unit_price="1")
        r.edit("customer", w["c2"], price_list=w["pl"])
        r.add("order_line", order=w["o"], product=w["p1"], quantity="1", unit_price="50")
        r.ok("order", "submit", w["o"])
        r.add("payment", order=w["o"], amount="5", paid_at="2026-01-01T00:00:00Z")
        before = r.snapshot()
        for noun, rid in [("product", w["p1"]), ("price_list", w["pl"]),
                          ("customer", w["c"]), ("order", w["o"])]:
            self.assertFailed(r.run(noun, "delete", rid), code=1,
                              what="deleting referenced %s" % noun)
        self.assertEqual(r.snapshot(), before)

    # ------------------------------------------------------------- others
    def test_visit_log(self):
        r = self.r
        c = r.add("customer", name="Acme")
        ct = r.add("contact", customer=c, name="Li Wei")
        v = r.json("visit", "log", "--customer", c, "--contact", ct,
                   "--purpose", "Demo", "--outcome", "Interested",
                   "--next_step", "Send quote", "--next_step_due", "2026-06-01",
                   "--latitude", "31.230416", "--longitude", "121.473701")
        self.assertIsInstance(v, dict)
        vid = v["id"]
        obj = check_fields(self, r, "visit", vid, {
            "customer": ("text", c), "contact": ("text", ct),
            "status": ("text", "completed"), "purpose": ("text", "Demo"),
            "outcome": ("text", "Interested"), "next_step": ("text", "Send quote"),
            "next_step_due": ("date", "2026-06-01"),
            "latitude": ("coord", "31.230416"), "longitude": ("coord", "121.473701")})
        self.assertRegex(obj["started_at"] or "", TS_RE)
        self.assertRegex(obj["ended_at"] or "", TS_RE)
        v2 = r.json("visit", "log", "--customer", c, "--started_at", "2026-02-01 09:00",
                    "--ended_at", "2026-02-01T10:15:00Z")
        check_fields(self, r, "visit", v2["id"], {
            "started_at": ("ts", "2026-02-01T09:00:00Z"),
            "ended_at": ("ts", "2026-02-01T10:15:00Z"),
            "status": ("text", "completed")})

    def test_db_from_environment(self):
        r = self.r
        env = {"FIELDSYNC_DB": r.path}
        rc, out, err = r.run("customer", "add", "--name", "EnvCo", db=False, env=env)
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(r.path), "FIELDSYNC_DB names the replica")
        self.assertEqual(r.sql("SELECT id, name FROM customer"), [(out.strip(), "EnvCo")])
        # --db wins over the environment
        other = Replica(self.tmp, "other.db")
        rc, out, err = other.run("customer", "add", "--name", "DbFlag", env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(other.sql("SELECT name FROM customer"), [("DbFlag",)])
        self.assertEqual(r.sql("SELECT name FROM customer"), [("EnvCo",)])


if __name__ == "__main__":
    main()
