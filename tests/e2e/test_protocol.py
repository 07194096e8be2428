#!/usr/bin/env python3
"""A second implementation of the client side of docs/protocol.md, in
Python, talking to the real fieldsyncd: it checks that the document is
enough to sync, and plays a client one schema version behind the server
(a rep who has not updated the app), and one two versions behind."""
import json
import os
import socket
import sqlite3
import ssl
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2eutil  # noqa: E402

from fswire import (ACK, BYE, CHANGES, ERROR, HELLO, PULL, PUSH,  # noqa: E402
                    WELCOME, Reader, entry, frame, st, uv)


class Conn:
    def __init__(self, case, port, enroll_dir):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(os.path.join(enroll_dir, "ca.crt"))
        ctx.load_cert_chain(os.path.join(enroll_dir, "device.crt"),
                            os.path.join(enroll_dir, "device.key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def send(self, typ, payload):
        self.s.sendall(frame(typ, payload, compress=None))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    def recv(self):
        typ, flags, res, ln = struct.unpack(">BBHI", self._exact(8))
        assert res == 0 and ln <= 8 << 20 and flags in (0, 1), (typ, flags, res, ln)
        p = self._exact(ln)
        if flags & 1:
            (u,) = struct.unpack(">I", p[:4])
            p = zlib.decompress(p[4:])
            assert len(p) == u
        return typ, Reader(p)

    def close(self):
        try:
            self.send(BYE, b"")
            self.s.close()
        except OSError:
            pass


class ProtocolTest(e2eutil.E2ECase):

    def setUp(self):
        super().setUp()
        self.start_server()
        self.A = self.new_client("A", "alice")
        self.latest = int(self.A.status()["schema_version"])
        self.add_rep("olga")
        self.olga = self.enroll("olga", "EN_OLGA")

    def hello(self, schema, cursor=0):
        c = Conn(self, self.server.port, self.olga)
        self.addCleanup(c.close)
        c.send(HELLO, uv(1) + uv(schema) + st("protocol-test/1") + uv(cursor))
        return c, c.recv()

    def test_a_client_one_schema_version_behind_syncs(self):
        cid = self.A.add("customer", name="Shared", city="Lyon", website="https://s.example")
        self.A.sync()
        c, (typ, r) = self.hello(self.latest - 1)
        self.assertEqual(typ, WELCOME, "a client one version behind was refused")
        self.assertEqual(r.uv(), 1)
        self.assertEqual(r.uv(), self.latest)
        self.assertEqual((r.str(), r.str()), ("olga", "rep"))
        r.str()
        hlc = max(r.uv(), 1) + (1 << 16)
        # Bootstrap with a snapshot, as the document says.
        c.send(PULL, uv(0) + uv(5000) + uv(1) + st(None) + st(None) + uv(0))
        typ, r = c.recv()
        self.assertEqual(typ, CHANGES)
        nxt, more, snap, stbl, srid, sseq, n = (r.uv(), r.uv(), r.uv(), r.str(),
                                               r.str(), r.uv(), r.uv())
        got = [r.entry() for _ in range(n)]
        self.assertEqual(snap, 1)
        [mine] = [e for e in got if e["rid"] == cid]
        self.assertEqual(mine["op"], "I")
        self.assertEqual(json.loads(mine["val"])["city"], "Lyon")
        # Push as an old app would: a new record without the fields it does
        # not know, and an edit of one field of the shared record.
        new = "01900000-0000-7000-8000-00000000abcd"
        batch = (entry("I", "customer", new, None, json.dumps({"name": "From olga",
                                                            "created_at": "2026-11-20T10:00:00Z"}),
                       hlc, sseq)
                 + entry("U", "customer", cid, "phone", json.dumps("+33 4 00"),
                         hlc + 1, sseq))
        c.send(PUSH, st("olga-test-1") + uv(2) + batch)
        typ, r = c.recv()
        self.assertEqual(typ, ACK)
        self.assertEqual(r.str(), "olga-test-1")
        applied, conflicts, nrej = r.uv(), r.uv(), r.uv()
        rejections = [(r.uv(), r.str()) for _ in range(nrej)]
        self.assertEqual((applied, conflicts, rejections), (2, 0, []))
        # The same batch again: nothing applied, nothing recorded.
        c.send(PUSH, st("olga-test-1") + uv(2) + batch)
        typ, r = c.recv()
        self.assertEqual(typ, ACK)
        r.str()
        self.assertEqual((r.uv(), r.uv(), r.uv()), (0, 0, 0))
        recs = {x["id"]: x for x in map(json.loads, self.server_dump().splitlines())}
        self.assertEqual(recs[new]["name"], "From olga")
        # The fields olga's edit did not carry are untouched.
        self.assertEqual((recs[cid]["phone"], recs[cid]["city"], recs[cid]["website"]),
                         ("+33 4 00", "Lyon", "https://s.example"))
        # And the author is the certificate's user.
        self.assertIn(("olga",), self.server.sql(
            "SELECT author FROM fs_log WHERE rid = ? AND col = 'phone'", (cid,)))
        self.A.sync()
        a = {x["id"]: x for x in self.A.records("customer")}
        self.assertEqual(a[cid]["phone"], "+33 4 00")
        self.assertIn(new, a)

    def session(self):
        """A connection of olga's at the latest schema: (connection, a clock
        ahead of the server's, the server's log end as the base)."""
        c, (typ, r) = self.hello(self.latest)
        self.assertEqual(typ, WELCOME)
        r.uv(), r.uv(), r.str(), r.str()
        self.device = r.str()
        hlc = max(r.uv(), 1) + (1 << 16)
        return c, hlc, int(self.server.sql("SELECT max(seq) FROM fs_log")[0][0])

    def push(self, c, batch_id, entries):
        c.send(PUSH, st(batch_id) + uv(len(entries)) + b"".join(entries))
        typ, r = c.recv()
        self.assertEqual(typ, ACK)
        self.assertEqual(r.str(), batch_id)
        applied, conflicts, nrej = r.uv(), r.uv(), r.uv()
        return applied, conflicts, dict((r.uv(), r.str()) for _ in range(nrej))

    def test_values_not_of_their_fields_kind_are_refused(self):
        """A forged or faulty client cannot store a value of the wrong kind
        (a date that is no date, a number in a text field) or a record that
        is its own parent: the server refuses it, winning or losing, names
        the field, and keeps the value it had, which every replica keeps
        too."""
        cid = self.A.add("customer", name="Kinds", phone="+33 1 00",
                         created_at="2026-11-01T08:00:00Z")
        kid = self.A.add("contact", customer=cid, name="Ann", birthday="1990-02-28")
        vid = self.A.add("visit", customer=cid, planned_at="2026-11-02T09:00:00Z",
                         latitude="45.75")
        self.A.sync()
        c, hlc, cur = self.session()
        new = "01900000-0000-7000-8000-00000000beef"
        new2 = "01900000-0000-7000-8000-00000000bee2"
        bad = [entry("U", "customer", cid, "created_at", json.dumps("yesterday"), hlc + 1, cur),
               entry("U", "customer", cid, "created_at", json.dumps("2026-11-02 08:00"), hlc + 2, cur),
               entry("U", "customer", cid, "phone", json.dumps(12), hlc + 3, cur),
               entry("U", "customer", cid, "phone", json.dumps({"n": 1}), hlc + 4, cur),
               entry("U", "contact", kid, "birthday", json.dumps("1990-02-30"), hlc + 5, cur),
               # A losing value (an older clock, concurrent) is refused too:
               # it would be kept as a conflict and could be chosen.
               entry("U", "customer", cid, "phone", json.dumps(7), 1 << 16, 0),
               entry("I", "customer", new, None,
                     json.dumps({"name": "Forged", "created_at": 20261101}), hlc + 6, cur),
               # Numbers: micro-degrees, not degrees; true is no number.
               entry("U", "visit", vid, "latitude", "45.76", hlc + 8, cur),
               entry("U", "visit", vid, "latitude", "true", hlc + 9, cur),
               # A link to the record itself (the library refuses it too).
               entry("U", "customer", cid, "parent_customer", json.dumps(cid),
                     hlc + 10, cur),
               entry("I", "customer", new2, None,
                     json.dumps({"name": "Own parent", "parent_customer": new2,
                                 "created_at": "2026-11-01T08:00:00Z"}), hlc + 11, cur),
               # A good change in the same batch goes through.
               entry("U", "customer", cid, "city", json.dumps("Nantes"), hlc + 7, cur)]
        applied, conflicts, rej = self.push(c, "kinds-1", bad)
        self.assertEqual((applied, conflicts), (1, 0), rej)
        self.assertEqual(sorted(rej), list(range(11)), rej)
        for i in (7, 8):
            self.assertIn("field latitude must be an integer number of micro-degrees",
                          rej[i])
        for i in (9, 10):
            self.assertIn("field parent_customer cannot point at the record itself",
                          rej[i])
        for i, field, wants in ((0, "created_at", "'YYYY-MM-DDTHH:MM:SSZ'"),
                                (1, "created_at", "'YYYY-MM-DDTHH:MM:SSZ'"),
                                (2, "phone", "text"), (3, "phone", "text"),
                                (4, "birthday", "'YYYY-MM-DD'"), (5, "phone", "text"),
                                (6, "created_at", "'YYYY-MM-DDTHH:MM:SSZ'")):
            self.assertIn("field %s must be" % field, rej[i])
            self.assertIn(wants, rej[i])
        recs = {x["id"]: x for x in map(json.loads, self.server_dump().splitlines())}
        self.assertNotIn(new, recs)
        self.assertNotIn(new2, recs)
        self.assertNotIn("parent_customer", recs[cid])
        self.assertEqual((recs[cid]["created_at"], recs[cid]["phone"], recs[cid]["city"]),
                         ("2026-11-01T08:00:00Z", "+33 1 00", "Nantes"))
        self.assertEqual(recs[kid]["birthday"], "1990-02-28")
        self.assertEqual(recs[vid]["latitude"], 45.75)   # the dump shows degrees
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_conflict")[0][0], 0)
        self.A.sync()
        self.assertEqual(self.A.dump(), self.server_dump())
        # A batch applied before the server checked kinds, resent (its ACK
        # was lost): the same version again is no news, not a refusal.
        con = sqlite3.connect(os.path.join(self.server.dir, "server.db"), timeout=30)
        try:
            con.execute("UPDATE customer SET phone = 99 WHERE id = ?", (cid,))
            con.execute("INSERT OR REPLACE INTO fs_clock(tbl, rid, col, hlc, device, seq) "
                        "VALUES ('customer', ?, 'phone', ?, ?, "
                        "(SELECT max(seq) FROM fs_log))", (cid, hlc + 20, self.device))
            con.commit()
        finally:
            con.close()
        applied, conflicts, rej = self.push(c, "kinds-old", [
            entry("U", "customer", cid, "phone", "99", hlc + 20, cur)])
        self.assertEqual((applied, conflicts, rej), (0, 0, {}))

    def test_links_to_records_the_server_never_held_are_refused(self):
        """A link must name a record head office holds, or held (a delete
        meanwhile is a concurrent edit, merged as ever): a forged id would
        reach every replica as a contact of no customer, a line of no
        quote."""
        cid = self.A.add("customer", name="Real")
        gone = self.A.add("customer", name="Deleted soon")
        kid = self.A.add("contact", customer=cid, name="Ann")
        pid = self.A.add("product", sku="P1", name="Widget", list_price="2")
        self.A.sync()
        c, hlc, cur = self.session()
        self.A.ok("customer", "delete", gone)
        self.A.sync()
        ghost = "01900000-0000-7000-8000-00000000dead"
        orphan = "01900000-0000-7000-8000-00000000c001"
        line = "01900000-0000-7000-8000-00000000c002"
        late = "01900000-0000-7000-8000-00000000c003"
        ts = "2026-11-01T08:00:00Z"
        applied, conflicts, rej = self.push(c, "links-1", [
            entry("I", "contact", orphan, None,
                  json.dumps({"name": "Orphan", "customer": ghost, "created_at": ts}),
                  hlc + 1, cur),
            entry("U", "contact", kid, "customer", json.dumps(ghost), hlc + 2, cur),
            entry("U", "customer", cid, "parent_customer", json.dumps(ghost), hlc + 3, cur),
            entry("I", "quote_line", line, None,
                  json.dumps({"quote": ghost, "product": pid, "quantity": 1000,
                              "unit_price": 200, "created_at": ts}), hlc + 4, cur),
            # A link to a record deleted meanwhile is taken as before.
            entry("U", "customer", cid, "parent_customer", json.dumps(gone), hlc + 5, cur),
            entry("I", "contact", late, None,
                  json.dumps({"name": "Late", "customer": cid, "created_at": ts}),
                  hlc + 6, cur)])
        self.assertEqual(sorted(rej), [0, 1, 2, 3], rej)
        for i, field, noun in ((0, "customer", "customer"), (1, "customer", "customer"),
                               (2, "parent_customer", "customer"), (3, "quote", "quote")):
            self.assertIn("field %s names %s %s, which the server does not hold"
                          % (field, noun, ghost), rej[i])
        self.assertEqual(applied, 2)
        recs = {x["id"]: x for x in map(json.loads, self.server_dump().splitlines())}
        self.assertNotIn(orphan, recs)
        self.assertNotIn(line, recs)
        self.assertEqual(recs[kid]["customer"], cid)
        self.assertEqual(recs[cid]["parent_customer"], gone)
        self.assertEqual(recs[late]["customer"], cid)

    def test_two_versions_behind_and_a_newer_client_are_refused_clearly(self):
        for schema in (self.latest - 2, self.latest + 1):
            c, (typ, r) = self.hello(schema)
            self.assertEqual(typ, ERROR, "schema %d was not refused" % schema)
            r.uv()
            msg = r.str()
            self.assertIn("schema", msg)
            self.assertIn(str(schema), msg)


if __name__ == "__main__":
    e2eutil.main()
