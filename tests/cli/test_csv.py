#!/usr/bin/env python3
"""CSV import and export: RFC 4180 quoting, BOM, all-or-nothing with the
failing line and column named, update by id, export/import round trips
(byte-identical dumps), and a 20k-row import."""
import csv
import io
import os
import sys
from decimal import Decimal

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FsTestCase, main, uuid7  # noqa: E402


def csv_text(header, rows, eol="\r\n"):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    for row in rows:
        w.writerow(row)
    return buf.getvalue()


TRICKY = [
    # name, city, notes, postcode
    ("Smith, Jones & Co", "Shanghai", 'He said "hi", then left', "00123"),
    ("Multi Line Ltd", "Beijing", "Line one\nLine two\n\nLine four", "100000"),
    ("上海贸易有限公司", "上海", "中文备注, with comma", "200000"),
    ('"Quoted" Name', "Wuhan", '""', "007"),
    ("Trailing Space ", " Leading", "tab\there", "=1+2"),
]


class Csv(FsTestCase):

    def customers(self):
        return self.r.sql_dicts("SELECT * FROM customer ORDER BY name")

    def test_import_quoting(self):
        for eol in ("\r\n", "\n"):
            sub = self.replica("r%d.db" % len(eol))
            sub.ok("init")
            path = self.write("q%d.csv" % len(eol), csv_text(
                ["name", "city", "notes", "postcode", "credit_limit", "level"],
                [list(t) + ["1234.5", "B"] for t in TRICKY], eol))
            rc, out, err = sub.run("customer", "import", path)
            self.assertEqual(rc, 0, err)
            got = {row["name"]: row for row in sub.sql_dicts("SELECT * FROM customer")}
            self.assertEqual(set(got), {t[0] for t in TRICKY})
            for name, city, notes, postcode in TRICKY:
                row = got[name]
                self.assertEqual((row["city"], row["notes"], row["postcode"]),
                                 (city, notes, postcode), "eol %r" % eol)
                self.assertEqual(row["credit_limit"], 123450)
                self.assertEqual(row["level"], "B")
                self.assertEqual(row["status"], "prospect")
                self.assertRegex(row["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(sub.pending(), len(TRICKY))

    def test_import_bom_and_empty_fields(self):
        r = self.r
        text = "\ufeff" + csv_text(["name", "email", "city"],
                                   [["Bom Co", "", "Xi'an"], ["Other", "o@x.example", ""]])
        path = self.write("bom.csv", text.encode("utf-8"))
        rc, out, err = r.run("customer", "import", path)
        self.assertEqual(rc, 0, err)
        rows = r.sql("SELECT name, email, city FROM customer ORDER BY name")
        self.assertEqual(rows, [("Bom Co", None, "Xi'an"), ("Other", "o@x.example", None)])

    def test_import_without_final_newline_and_quoted_header(self):
        r = self.r
        path = self.write("nf.csv", '"name","city"\r\nFirst,A\r\n"Last",B')
        rc, out, err = r.run("customer", "import", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(r.sql("SELECT name, city FROM customer ORDER BY name"),
                         [("First", "A"), ("Last", "B")])

    def test_partial_update_keeps_other_fields(self):
        r = self.r
        a = r.add("customer", name="Alpha", city="Shanghai", email="a@x.example",
                  credit_limit="10")
        path = self.write("p.csv", csv_text(["id", "city"], [[a, "Suzhou"]]))
        r.ok("customer", "import", path)
        self.assertEqual(r.sql("SELECT name, city, email, credit_limit FROM customer"),
                         [("Alpha", "Suzhou", "a@x.example", 1000)])

    def test_empty_export_round_trips(self):
        r = self.r
        r.ok("init")
        path = os.path.join(self.tmp, "empty.csv")
        r.ok("contact", "export", "--csv", "--out", path)
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(len(rows), 1, "just the header: %r" % rows)
        self.assertIn("customer", rows[0])
        r.ok("contact", "import", path)
        self.assertEqual(r.count("contact"), 0)

    def bad_import(self, header, rows, bad_line, column):
        r = self.r
        if not os.path.exists(r.path):
            r.ok("init")
        path = self.write("bad.csv", csv_text(header, rows))
        before = r.snapshot()
        err = self.assertFailed(r.run("customer", "import", path), code=1,
                                what="import with an error on line %d" % bad_line)
        self.assertRegex(err, r"(?<![0-9])%d(?![0-9])" % bad_line,
                         "the message must name line %d" % bad_line)
        self.assertIn(column, err, "the message must name the column")
        self.assertEqual(r.snapshot(), before, "a failed import wrote something")
        return err

    def test_all_or_nothing_bad_money(self):
        rows = [["Cust %03d" % i, "City", "%d.50" % i] for i in range(60)]
        rows[35][2] = "12.345"          # data row 36 = line 37
        self.bad_import(["name", "city", "credit_limit"], rows, 37, "credit_limit")

    def test_all_or_nothing_bad_enum_and_missing_name(self):
        rows = [["Cust %03d" % i, "A"] for i in range(30)]
        rows[20][1] = "Z"               # line 22
        self.bad_import(["name", "level"], rows, 22, "level")
        rows = [["Cust %03d" % i, "C"] for i in range(30)]
        rows[12][0] = ""                # line 14, required name missing
        self.bad_import(["name", "level"], rows, 14, "name")

    def test_all_or_nothing_rolls_back_updates(self):
        r = self.r
        cid = r.add("customer", name="Existing", city="Old")
        rows = [[cid, "Existing", "New"]] + [["", "N%d" % i, "C"] for i in range(10)]
        path = self.write("u.csv", csv_text(["id", "name", "city"], rows))
        r.ok("customer", "import", path)     # empty id: new records
        self.assertEqual(r.sql("SELECT city FROM customer WHERE id=?", (cid,)), [("New",)])
        self.assertEqual(r.count("customer"), 11)
        # line 2 updates, line 3 creates, line 4 is bad: none of it stays
        rows = [[cid, "Existing", "Newest", "A"], ["", "Fresh", "C", "A"],
                ["", "Broken", "C", "Q"]]
        self.bad_import(["id", "name", "city", "level"], rows, 4, "level")
        self.assertEqual(r.sql("SELECT city, level FROM customer WHERE id=?", (cid,)),
                         [("New", None)])
        self.assertEqual(r.count("customer"), 11)

    def test_unknown_column_and_missing_file(self):
        r = self.r
        r.add("customer", name="Keep")
        before = r.snapshot()
        path = self.write("u.csv", csv_text(["name", "no_such_column"], [["A", "b"]]))
        err = self.assertFailed(r.run("customer", "import", path), what="unknown column")
        self.assertIn("no_such_column", err)
        self.assertFailed(r.run("customer", "import", os.path.join(self.tmp, "missing.csv")),
                          code=1, what="missing file")
        path = self.write("q.csv", 'name,city\r\n"Unterminated,Shanghai\r\n')
        self.assertFailed(r.run("customer", "import", path), code=1,
                          what="unterminated quote")
        path = self.write("n.csv", "name,city\r\nA,B,C\r\n")
        self.assertFailed(r.run("customer", "import", path), code=1,
                          what="row with too many fields")
        self.assertEqual(r.snapshot(), before)

    def test_update_by_id_and_create_with_id(self):
        r = self.r
        a = r.add("customer", name="Alpha", city="Shanghai", email="a@x.example")
        b = r.add("customer", name="Beta", city="Beijing")
        new_id = uuid7()
        pending = r.pending()
        path = self.write("upd.csv", csv_text(
            ["id", "name", "city", "email"],
            [[a, "Alpha", "Suzhou", "a@x.example"],      # one field changes
             [new_id, "Gamma", "Wuhan", ""]]))
        r.ok("customer", "import", path)
        rows = r.sql("SELECT id, name, city, email FROM customer ORDER BY name")
        self.assertEqual(rows, [(a, "Alpha", "Suzhou", "a@x.example"),
                                (b, "Beta", "Beijing", None),
                                (new_id, "Gamma", "Wuhan", None)])
        log = r.sql("SELECT rid, op, col FROM fs_change ORDER BY seq")[pending:]
        self.assertEqual(sorted(log), sorted([(a, "U", "city"), (new_id, "I", None)]))

    def test_export_round_trip(self):
        r = self.r
        pl = r.add("price_list", name="Dealers", currency="USD")
        ids = []
        for i, (name, city, notes, postcode) in enumerate(TRICKY):
            ids.append(r.add("customer", name=name, city=city, notes=notes,
                             postcode=postcode, credit_limit="%d.05" % (i * 1000),
                             level="ABC"[i % 3], price_list=pl if i % 2 else ""))
        r.add("customer", name="Bare")
        r.edit("customer", ids[0], status="active")

        out = r.ok("customer", "export", "--csv")
        fpath = os.path.join(self.tmp, "cust.csv")
        r.ok("customer", "export", "--csv", "--out", fpath)
        with open(fpath, encoding="utf-8-sig", newline="") as f:
            ftext = f.read()
        self.assertEqual(ftext, out.lstrip("\ufeff"), "--out writes what stdout gets")

        # the export is valid CSV with the table's columns and the stored values
        rows = list(csv.DictReader(io.StringIO(ftext, newline="")))
        cols = [c[1] for c in r.sql("PRAGMA table_info(customer)")]
        self.assertEqual(set(rows[0].keys()), set(cols))
        db = {d["id"]: d for d in r.sql_dicts("SELECT * FROM customer")}
        self.assertEqual({row["id"] for row in rows}, set(db))
        for row in rows:
            d = db[row["id"]]
            for k in ("name", "city", "notes", "postcode", "status", "created_at",
                      "price_list", "level"):
                self.assertEqual(row[k], d[k] if d[k] is not None else "", k)
            if d["credit_limit"] is None:
                self.assertEqual(row["credit_limit"], "")
            else:
                self.assertEqual(Decimal(row["credit_limit"]) * 100, d["credit_limit"])

        # import into a second replica: same dump, byte for byte
        pfile = os.path.join(self.tmp, "pl.csv")
        r.ok("price_list", "export", "--csv", "--out", pfile)
        b = self.replica("b.db")
        b.ok("init")
        b.ok("price_list", "import", pfile)
        b.ok("customer", "import", fpath)
        self.assertEqual(b.dump(), r.dump())
        self.assertTrue(r.dump().strip())

        # re-importing the export into the source changes nothing at all
        pending = r.pending()
        dump = r.dump()
        r.ok("customer", "import", fpath)
        self.assertEqual(r.pending(), pending, "re-import of identical data logged changes")
        self.assertEqual(r.dump(), dump)

    def test_round_trip_other_entities(self):
        r = self.r
        p1 = r.add("product", sku="A-1", name="Alpha, the first", list_price="0.5",
                   tax_rate="7.25", active="false", unit="kg")
        p2 = r.add("product", sku="B-2", name='Beta "2"', list_price="1000000")
        c = r.add("customer", name="Acme")
        o = r.add("order", customer=c, due_date="2026-02-28")
        r.add("order_line", order=o, product=p1, quantity="2.125", unit_price="0.99",
              discount="2.5")
        r.add("order_line", order=o, product=p2, quantity="1", unit_price="3")
        r.add("visit", customer=c, planned_at="2026-03-01 08:00", latitude="-33.8688",
              longitude="151.209296")
        b = self.replica("b.db")
        b.ok("init")
        for noun in ("product", "customer", "order", "order_line", "visit"):
            path = os.path.join(self.tmp, noun + ".csv")
            r.ok(noun, "export", "--csv", "--out", path)
            rc, out, err = b.run(noun, "import", path)
            self.assertEqual(rc, 0, "%s import: %s" % (noun, err))
        self.assertEqual(b.dump(), r.dump())
        self.assertEqual(b.sql("SELECT sku, list_price, tax_rate, active, unit FROM product "
                               "ORDER BY sku"),
                         [("A-1", 50, 725, 0, "kg"), ("B-2", 100000000, 0, 1, "pcs")])

    def test_import_20k_rows(self):
        r = self.r
        r.ok("init")
        n = 20000
        rows = [["Bulk %05d" % i, "City %d" % (i % 97), "%d.%02d" % (i, i % 100),
                 "ABC"[i % 3], "bulk%d@example.com" % i] for i in range(n)]
        path = self.write("bulk.csv", csv_text(
            ["name", "city", "credit_limit", "level", "email"], rows))
        rc, out, err = r.run("customer", "import", path, timeout=240)
        self.assertEqual(rc, 0, err)
        self.assertEqual(r.count("customer"), n)
        self.assertEqual(r.sql("SELECT count(*), count(DISTINCT rid) FROM fs_change "
                               "WHERE op='I' AND tbl='customer'"), [(n, n)])
        self.assertEqual(r.sql("SELECT sum(credit_limit) FROM customer")[0][0],
                         sum(i * 100 + i % 100 for i in range(n)))
        self.assertEqual(r.sql("SELECT city, level, email FROM customer WHERE name='Bulk 12345'"),
                         [("City %d" % (12345 % 97), "ABC"[12345 % 3], "bulk12345@example.com")])
        self.assertEqual(r.pending(), n)


if __name__ == "__main__":
    main()
