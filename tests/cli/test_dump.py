#!/usr/bin/env python3
"""`dump`: canonical JSON lines (keys sorted, one object per line, lines
sorted by table then id, NULLs omitted, "table" and "id" present), the
values checked against the SQLite file, and byte-identical output for two
replicas holding the same data."""
import csv
import io
import os
import random
import sys
from decimal import Decimal

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FsTestCase, TABLES, main, loads, loads_pairs, uuid7  # noqa: E402

SCALE = {"MONEY": 2, "QTY": 3, "RATE": 2, "COORD": 6}


def csv_text(header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


class Dump(FsTestCase):

    def populate(self, r):
        pl = r.add("price_list", name="Dealers", valid_from="2026-01-01")
        p1 = r.add("product", sku="P-1", name="One", list_price="10.10", tax_rate="13")
        p2 = r.add("product", sku="P-2", name="Two", list_price="0.5", active="false")
        path = self.write("pli.csv", "price_list,product,price\r\n%s,%s,9.5\r\n" % (pl, p1))
        r.ok("price_list_item", "import", path)
        c1 = r.add("customer", name="Acme \"Q\" \u4e0a\u6d77", credit_limit="100000",
                   notes="tab\tnew\nline\\", price_list=pl)
        c2 = r.add("customer", name="Zed", level="C")
        gone = r.add("customer", name="Gone")
        r.add("contact", customer=c1, name="Li", birthday="1990-01-02")
        r.add("visit", customer=c1, planned_at="2026-03-01 09:00", latitude="-33.8688",
              longitude="151.209296")
        r.add("opportunity", customer=c2, title="Deal", amount="12.3", probability="50")
        q = r.json("quote", "new", "--customer", c1, "--line", "P-1:2.5",
                   "--line", "P-2:1:0.07")["id"]
        o = r.json("order", "from-quote", q)["id"]
        r.ok("order", "submit", o)
        r.add("payment", order=o, amount="1.01", paid_at="2026-03-02 10:00")
        r.ok("customer", "delete", gone)
        return gone, p2

    def db_records(self, r):
        """(table, id) -> {column: stored value} straight from SQLite, and
        table -> {column: declared type}."""
        recs, types = {}, {}
        for t in TABLES:
            info = r.sql('PRAGMA table_info("%s")' % t)
            types[t] = {row[1]: row[2].upper() for row in info}
            for d in r.sql_dicts('SELECT * FROM "%s"' % t):
                recs[(t, d["id"])] = d
        return recs, types

    def test_canonical_form(self):
        r = self.r
        r.ok("init")
        self.assertEqual(r.dump(), "", "an empty replica dumps nothing")
        gone, p2 = self.populate(r)
        out = r.dump()
        self.assertTrue(out.endswith("\n"))
        lines = out[:-1].split("\n")
        recs, types = self.db_records(r)
        self.assertEqual(len(lines), len(recs), "one line per live record")
        keys_seen = []
        for line in lines:
            pairs = loads_pairs(line)
            self.assertIsInstance(pairs, list, "each line is one JSON object: %r" % line)
            keys = [k for k, _ in pairs]
            self.assertEqual(keys, sorted(keys), "keys not sorted: %r" % line)
            self.assertEqual(len(keys), len(set(keys)))
            obj = dict(pairs)
            self.assertIn("table", obj)
            self.assertIn("id", obj)
            for k, v in pairs:
                self.assertIsNotNone(v, "null field %s in dump: %r" % (k, line))
            keys_seen.append((obj["table"], obj["id"]))
            self.assertIn((obj["table"], obj["id"]), recs, "dumped record not in the database")
            row = recs[(obj["table"], obj["id"])]
            tt = types[obj["table"]]
            self.assertEqual(set(obj) - {"table"},
                             {c for c, v in row.items() if v is not None},
                             "dump fields = the non-NULL columns")
            for c, v in obj.items():
                if c in ("table", "id"):
                    continue
                kind, stored = tt[c], row[c]
                if kind in SCALE:
                    self.assertFalse(isinstance(v, (str, bool)), "%s.%s" % (obj["table"], c))
                    self.assertEqual(Decimal(str(v)) * 10 ** SCALE[kind], stored,
                                     "%s.%s" % (obj["table"], c))
                elif kind == "BOOLEAN":
                    self.assertIs(v, bool(stored), "%s.%s" % (obj["table"], c))
                else:
                    self.assertEqual(v, stored, "%s.%s" % (obj["table"], c))
        self.assertEqual(keys_seen, sorted(keys_seen), "lines not sorted by table then id")
        self.assertEqual(set(keys_seen), set(recs))
        self.assertNotIn(("customer", gone), keys_seen)
        self.assertEqual({t for t, _ in keys_seen}, set(TABLES),
                         "the populated replica has every table")
        # money as two decimals in the text
        prod = [l for l in lines if '"id":"%s"' % p2 in l.replace(" ", "")]
        self.assertEqual(len(prod), 1)
        self.assertRegex(prod[0].replace(" ", ""), r'"list_price":0\.50[,}]')
        self.assertRegex(prod[0].replace(" ", ""), r'"active":false[,}]')

    def test_same_data_same_bytes(self):
        """Two replicas fed the same records (same ids) by CSV import, in a
        different row order and with a different edit history, dump the
        same bytes."""
        a, b = self.replica("a.db"), self.replica("b.db")
        for rep in (a, b):
            rep.ok("init")
        created = "2026-01-15T08:00:00Z"
        pls = [[uuid7(), "List %d" % i, "USD" if i else "CNY", created] for i in range(3)]
        custs = []
        for i in range(40):
            custs.append([uuid7(), "Customer %02d" % i, "City \u00e9 %d" % (i % 5),
                          "%d.%02d" % (i * 7, i), "ABC"[i % 3] if i % 4 else "",
                          pls[i % 3][0] if i % 2 else "", 'note, "%d"\nmore' % i, created])
        cust_hdr = ["id", "name", "city", "credit_limit", "level", "price_list",
                    "notes", "created_at"]
        contacts = [[uuid7(), custs[i][0], "Contact %d" % i, "1980-02-%02d" % (i + 1), created]
                    for i in range(20)]
        files = {}
        for rep, order in ((a, False), (b, True)):
            rows_pl, rows_c, rows_ct = list(pls), list(custs), list(contacts)
            if order:
                rnd = random.Random(7)
                rnd.shuffle(rows_pl)
                rnd.shuffle(rows_c)
                rnd.shuffle(rows_ct)
            tag = "b" if order else "a"
            files[tag] = [
                ("price_list", self.write("pl-%s.csv" % tag, csv_text(
                    ["id", "name", "currency", "created_at"], rows_pl))),
                ("customer", self.write("c-%s.csv" % tag, csv_text(cust_hdr, rows_c))),
                ("contact", self.write("ct-%s.csv" % tag, csv_text(
                    ["id", "customer", "name", "birthday", "created_at"], rows_ct)))]
            for noun, path in files[tag]:
                rep.ok(noun, "import", path)
        # a different history in b: edit and edit back
        b.edit("customer", custs[3][0], city="Elsewhere", level="")
        b.edit("customer", custs[3][0], city=custs[3][2], level=custs[3][4])
        da, db_ = a.dump(), b.dump()
        self.assertTrue(da)
        self.assertEqual(da, db_)
        self.assertEqual(len(da.splitlines()), 3 + 40 + 20)
        for line in da.splitlines():
            obj = loads(line)
            if obj["table"] == "customer" and obj["id"] == custs[4][0]:
                self.assertEqual(obj["name"], "Customer 04")
                self.assertEqual(obj["created_at"], created)
                self.assertNotIn("price_list", obj)   # empty -> NULL -> omitted
                self.assertNotIn("level", obj)
        # and a real difference shows
        b.edit("customer", custs[0][0], notes="changed")
        self.assertNotEqual(a.dump(), b.dump())


if __name__ == "__main__":
    main()
