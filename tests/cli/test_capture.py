#!/usr/bin/env python3
"""Change capture as seen through `changes --json` and `status --json`:
one 'I' per insert, one 'U' per changed field, nothing for a no-op edit,
'D' per delete; HLCs strictly increasing (also across processes); a stable
device id.  Cross-checked against fs_change in the SQLite file."""
import os
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import BIN, FsTestCase, UUID_RE, main, loads  # noqa: E402


def is_money(v, text):
    """A money value in the log: integer minor units (as stored) or, if the
    CLI renders it, the decimal amount."""
    if isinstance(v, bool) or v is None:
        return False
    if isinstance(v, int):
        return v == int(Decimal(text) * 100)
    if isinstance(v, Decimal):
        return v == Decimal(text)
    return False


class Capture(FsTestCase):

    def setUp(self):
        super().setUp()
        self.r.ok("init", "--user", "alice")

    def new_changes(self, before):
        ch = self.r.changes()
        self.assertEqual(ch[:len(before)], before,
                         "earlier pending changes were altered")
        return ch[len(before):]

    def check_log_matches_db(self):
        """changes --json is the fs_change table, oldest first."""
        ch = self.r.changes()
        rows = self.r.sql("SELECT tbl, rid, op, col, hlc, device FROM fs_change ORDER BY seq")
        # A captured row's device '' is the replica's own (sync/capture.h).
        own = self.r.status()["device"]
        self.assertEqual([(c["table"], c["id"], c["op"], c["column"], c["hlc"], c["device"])
                          for c in ch], [r[:5] + (r[5] or own,) for r in rows])
        self.assertTrue(all(c["device"] == own for c in ch))
        self.assertEqual(self.r.pending(), len(rows))
        return ch

    def test_init_status(self):
        st = self.r.status()
        self.assertIsInstance(st, dict)
        self.assertEqual(st.get("user"), "alice")
        self.assertEqual(int(st["pending_changes"]), 0)
        self.assertEqual(int(st["schema_version"]),
                         self.r.sql("SELECT max(version) FROM schema_version")[0][0])
        self.assertRegex(st.get("device") or "", UUID_RE)
        self.assertEqual(self.r.changes(), [])

    def test_insert_edit_delete(self):
        r = self.r
        t0 = int(time.time() * 1000)
        cid = r.add("customer", name="Acme", city="Shanghai", credit_limit="5000")
        ch = self.check_log_matches_db()
        self.assertEqual(len(ch), 1, "one insert gives exactly one change: %r" % ch)
        c = ch[0]
        self.assertEqual((c["table"], c["id"], c["op"]), ("customer", cid, "I"))
        val = c["value"]
        self.assertIsInstance(val, dict, "'I' value is a JSON object of the fields")
        self.assertEqual(val.get("name"), "Acme")
        self.assertEqual(val.get("city"), "Shanghai")
        self.assertTrue(is_money(val.get("credit_limit"), "5000"), val.get("credit_limit"))
        self.assertEqual(val.get("status"), "prospect")
        self.assertIsNone(val.get("email"))

        # two fields changed: two 'U' changes
        before = r.changes()
        r.edit("customer", cid, city="Beijing", email="a@acme.example")
        new = self.new_changes(before)
        self.assertEqual(sorted((x["op"], x["column"], x["value"]) for x in new),
                         [("U", "city", "Beijing"), ("U", "email", "a@acme.example")])
        for x in new:
            self.assertEqual((x["table"], x["id"]), ("customer", cid))

        # the same values again: nothing
        before = r.changes()
        r.edit("customer", cid, city="Beijing", email="a@acme.example")
        self.assertEqual(self.new_changes(before), [], "an edit to the same value records nothing")
        r.edit("customer", cid, credit_limit="5000.00")
        self.assertEqual(self.new_changes(before), [], "5000.00 is the same money as 5000")

        # one same, one different: one change
        r.edit("customer", cid, city="Beijing", credit_limit="5000.01")
        new = self.new_changes(before)
        self.assertEqual([(x["op"], x["column"]) for x in new], [("U", "credit_limit")])
        self.assertTrue(is_money(new[0]["value"], "5000.01"), new[0]["value"])

        # clearing a field: one 'U' with null
        before = r.changes()
        r.edit("customer", cid, email="")
        new = self.new_changes(before)
        self.assertEqual([(x["op"], x["column"], x["value"]) for x in new],
                         [("U", "email", None)])
        # clearing it again: nothing
        before = r.changes()
        r.edit("customer", cid, email="")
        self.assertEqual(self.new_changes(before), [])

        # delete: one 'D'
        r.ok("customer", "delete", cid)
        new = self.new_changes(before)
        self.assertEqual([(x["table"], x["id"], x["op"]) for x in new],
                         [("customer", cid, "D")])
        self.assertIsNone(new[0]["value"], "a 'D' carries no value")

        ch = self.check_log_matches_db()
        # The creation is logged without its fields (sync/capture.h): the
        # listing, like the push, puts them together from the 'D' row and
        # the old values of the edits: what it was created with.
        self.assertIsNone(r.sql("SELECT val FROM fs_change WHERE op = 'I'")[0][0])
        self.assertEqual(ch[0]["value"], val)
        t1 = int(time.time() * 1000)
        for x in ch:
            ms = x["hlc"] >> 16
            self.assertTrue(t0 - 2000 <= ms <= t1 + 2000,
                            "HLC %d is not near the wall clock" % x["hlc"])

    def test_values_are_typed_in_the_log(self):
        r = self.r
        p = r.add("product", sku="S1", name="Thing", list_price="12.5", tax_rate="7.5",
                  active="true")
        before = r.changes()
        r.edit("product", p, list_price="13", active="false")
        new = {x["column"]: x["value"] for x in self.new_changes(before)}
        self.assertEqual(set(new), {"list_price", "active"})
        self.assertTrue(is_money(new["list_price"], "13"), new["list_price"])
        self.assertIn(new["active"], (0, False))
        # the database and the log agree with the stored integer
        self.assertEqual(r.sql("SELECT list_price, tax_rate, active FROM product"),
                         [(1300, 750, 0)])
        raw = r.sql("SELECT val FROM fs_change WHERE op='U' AND col='list_price'")
        self.assertEqual(loads(raw[0][0]), 1300)

    def test_creations_are_logged_as_they_were_made(self):
        """A creation is logged without its fields (sync/capture.h): the
        record, with each field edited since at the value its first edit
        replaced, or the fields its deletion kept.  The push sends what
        `changes` shows, so this is what the server gets.  Here the same
        id is created, edited, deleted and created again before a push."""
        r = self.r
        rid = "01900000-0000-7000-8000-00000000c0de"
        r.ok("customer", "add", "--id", rid, "--name", "First", "--city", "a1",
             "--phone", "p1")
        r.edit("customer", rid, city="a2")
        r.edit("customer", rid, city="a3", notes="n1")
        r.ok("customer", "delete", rid)
        r.ok("customer", "add", "--id", rid, "--name", "Second", "--city", "b1")
        r.edit("customer", rid, city="b2", phone="q2")
        other = r.add("customer", name="Untouched", city="u1")
        ch = r.changes()
        self.assertEqual([(x["id"], x["op"], x["column"]) for x in ch],
                         [(rid, "I", None), (rid, "U", "city"), (rid, "U", "city"),
                          (rid, "U", "notes"), (rid, "D", None), (rid, "I", None),
                          (rid, "U", "city"), (rid, "U", "phone"), (other, "I", None)])
        made = [x["value"] for x in ch if x["op"] == "I"]
        pick = [(v["name"], v["city"], v["phone"], v["notes"]) for v in made]
        self.assertEqual(pick, [("First", "a1", "p1", None), ("Second", "b1", None, None),
                                ("Untouched", "u1", None, None)])
        self.assertEqual([x["value"] for x in ch if x["op"] == "U"],
                         ["a2", "a3", "n1", "b2", "q2"])
        # the creations stay as they were, whatever comes after
        r.edit("customer", other, city="u2", name="Renamed")
        self.assertEqual(r.changes()[:len(ch)], ch)

    def test_hlc_increases_across_processes(self):
        r = self.r
        ids = [r.add("customer", name="C%d" % i) for i in range(6)]
        for i, cid in enumerate(ids):
            r.edit("customer", cid, city="X%d" % i, notes="n%d" % i)
        ch = self.check_log_matches_db()
        self.assertEqual(len(ch), 6 + 12)
        hlcs = [x["hlc"] for x in ch]
        for a, b in zip(hlcs, hlcs[1:]):
            self.assertLess(a, b, "HLC must strictly increase: %r" % hlcs)
        seqs = [x["seq"] for x in ch if x["seq"] is not None]
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_hlc_never_runs_backwards_after_restart(self):
        """A clock that was ahead (another device, or a wall clock set back)
        must not make later changes go backwards: the next process starts
        from the greatest HLC in the log."""
        r = self.r
        cid = r.add("customer", name="Acme")
        future = ((int(time.time() * 1000) + 3600 * 1000) << 16) | 5
        con = sqlite3.connect(r.path)
        con.execute("UPDATE fs_change SET hlc=? WHERE seq=(SELECT max(seq) FROM fs_change)",
                    (future,))
        con.commit()
        con.close()
        r.edit("customer", cid, city="Later")
        ch = r.changes()
        self.assertEqual(ch[-1]["column"], "city")
        self.assertGreater(ch[-1]["hlc"], future)
        r.edit("customer", cid, city="Later still")
        self.assertGreater(r.changes()[-1]["hlc"], ch[-1]["hlc"])

    def test_hlc_unique_with_concurrent_processes(self):
        """Several processes writing the same replica at once (the clock
        running on its logical counter, as after hearing from a device that
        is ahead) must still give every change its own, increasing HLC.
        A race shows only sometimes, so the experiment runs a few rounds."""
        r = self.r
        r.add("customer", name="Seed")
        script = ('for i in $(seq 1 30); do "$BIN" --db "$DB" customer add --name "w$W-$i" '
                  '>/dev/null || echo "add failed" >&2; done')
        for rnd in range(3):
            future = ((int(time.time() * 1000) + (rnd + 1) * 3600 * 1000) << 16) | 5
            con = sqlite3.connect(r.path)
            con.execute("UPDATE fs_change SET hlc=? WHERE seq=(SELECT max(seq) FROM fs_change)",
                        (future,))
            con.commit()
            con.close()
            n0 = r.count("fs_change")
            procs = [subprocess.Popen(["bash", "-c", script], stderr=subprocess.PIPE,
                                      env=dict(os.environ, BIN=BIN, DB=r.path, W=str(w)))
                     for w in range(4)]
            for p in procs:
                _, err = p.communicate(timeout=120)
                self.assertEqual(err, b"", "concurrent adds failed: %r" % err[:300])
            rows = r.sql("SELECT seq, hlc FROM fs_change ORDER BY seq")
            self.assertEqual(len(rows), n0 + 120)
            hlcs = [h for _, h in rows]
            self.assertEqual(len(set(hlcs)), len(hlcs),
                             "round %d: %d changes share an HLC with another"
                             % (rnd, len(hlcs) - len(set(hlcs))))
            bad = [(x, y) for x, y in zip(rows, rows[1:]) if y[1] <= x[1]]
            self.assertEqual(bad, [], "round %d: HLC does not increase with seq" % rnd)
            self.assertGreater(min(hlcs[n0:]), future)

    def test_device_stable(self):
        r = self.r
        d1 = r.status()["device"]
        r.add("customer", name="A")
        r.add("customer", name="B")
        d2 = r.status()["device"]
        self.assertEqual(d1, d2, "device id is stable across runs")
        self.assertRegex(d1, UUID_RE)
        for x in r.changes():
            self.assertEqual(x["device"], d1)
        other = self.replica("other.db")
        other.ok("init")
        self.assertNotEqual(other.status()["device"], d1, "each replica has its own device id")

    def test_multi_record_operation_logged(self):
        r = self.r
        c = r.add("customer", name="Acme")
        r.add("product", sku="A1", name="A", list_price="2")
        r.add("product", sku="B2", name="B", list_price="3")
        before = r.changes()
        q = r.json("quote", "new", "--customer", c, "--line", "A1:1", "--line", "B2:2")
        qid = q["id"]
        new = self.new_changes(before)
        self.assertEqual(sorted((x["table"], x["op"]) for x in new),
                         [("quote", "I"), ("quote_line", "I"), ("quote_line", "I")])
        self.assertIn(("quote", qid), [(x["table"], x["id"]) for x in new])
        lines = {x[0] for x in r.sql("SELECT id FROM quote_line WHERE quote=?", (qid,))}
        self.assertEqual({x["id"] for x in new if x["table"] == "quote_line"}, lines)
        # deleting the quote logs the lines' deletion too
        before = r.changes()
        r.ok("quote", "delete", qid)
        new = self.new_changes(before)
        self.assertEqual(sorted((x["table"], x["id"], x["op"]) for x in new),
                         sorted([("quote", qid, "D")] + [("quote_line", l, "D") for l in lines]))

    def test_status_counts_pending(self):
        r = self.r
        for i in range(3):
            r.add("customer", name="N%d" % i)
        self.assertEqual(r.pending(), 3)
        self.assertEqual(len(r.changes()), 3)
        self.check_log_matches_db()


if __name__ == "__main__":
    main()
