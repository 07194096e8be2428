#!/usr/bin/env python3
"""End-to-end roles, scopes and field ownership (schema/004_scope.sql):
the department tree and users' scopes set with fieldsync-admin; replicas
that receive only the customers of their user's departments (and what
hangs off them) plus all reference data, on a first sync and afterwards;
writes outside a scope and writes of fields another role owns refused per
change and listed in `fieldsync rejections`; customers moving between
departments; conflicts delivered within scope only; roles read from the
server, never from the device.

The tree used throughout (setUp):

    HQ (head office)
    +-- north
    |   +-- north-a   (a branch)
    +-- south

Every test ends with each replica's dump equal to
`fieldsync-admin dump --user USER` of its user (after syncing until quiet),
on top of assertions of which ids each replica holds, computed from what the
test typed.
"""
import json
import os
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2eutil  # noqa: E402

# fs_rule's reasons (schema/004_scope.sql), told to a refused writer
WHY_LIMIT = "a credit limit is set by a manager or the office"
WHY_RATING = "a credit rating is set by a manager or the office"
WHY_LEVEL = "a customer's level is set by a manager or the office"
WHY_PAST = "an order past confirmation is changed by the office only"
WHY_STATUS = "the office confirms, ships and invoices orders"
WHY_LINES = "the lines of an order past confirmation are changed by the office only"

PAID_AT = "2026-01-01T00:00:00Z"


def recs(dump):
    return [json.loads(l, parse_float=Decimal) for l in dump.splitlines()]


def keys(dump):
    """{(table, id)} of a dump."""
    return {(r["table"], r["id"]) for r in recs(dump)}


def by_id(dump):
    return {r["id"]: r for r in recs(dump)}


def tick():
    time.sleep(0.005)


class ScopeTest(e2eutil.E2ECase):

    def setUp(self):
        super().setUp()
        self.start_server()
        self.admin("dept", "add", "HQ", "--name", "Head office")
        self.admin("dept", "add", "north", "--name", "North", "--parent", "HQ")
        self.admin("dept", "add", "north-a", "--name", "North A", "--parent", "north")
        self.admin("dept", "add", "south", "--name", "South", "--parent", "HQ")

    # ------------------------------------------------------------ helpers

    def admin_rc(self, *args):
        """fieldsync-admin that may fail: (rc, out, err)."""
        rc, out, err = e2eutil.run([e2eutil.ADMIN, "--dir", self.srvdir] + list(args),
                                   cwd=self.tmp)
        rep = e2eutil.sanitizer_report(err)
        if rep:
            raise AssertionError("sanitizer report from fieldsync-admin %s:\n%s"
                                 % (" ".join(args), rep))
        return rc, out, err

    def admin_fails(self, rc_want, args, says=None):
        rc, out, err = self.admin_rc(*args)
        self.assertEqual(rc, rc_want, "`fieldsync-admin %s` exited %d (want %d): "
                         "out=%r err=%r" % (" ".join(args), rc, rc_want, out, err))
        self.assertTrue(err.strip(), "`fieldsync-admin %s` failed silently"
                        % " ".join(args))
        if says:
            self.assertIn(says, err, "`fieldsync-admin %s`: message %r does not "
                          "name %r" % (" ".join(args), err, says))
        return err

    def person(self, name, role="rep", region=None, device=None):
        """A user `name` (role, region: None = no --region) with one device
        whose replica is named device (default: the user's name)."""
        args = ["user", "add", name, "--role", role]
        if region is not None:
            args += ["--region", region]
        self.admin(*args)
        return self.device(name, device or name)

    def device(self, user, dev):
        en = self.enroll(user, "EN_" + dev)
        c = e2eutil.Client(self, dev, user, en)
        c.init(self.server.addr)
        return c

    def user_dump(self, user):
        return self.admin("dump", "--user", user)

    def rejections(self, c):
        v = c.json("rejections")
        self.assertIsInstance(v, list)
        return v

    def settle(self, clients, rounds=2):
        for _ in range(rounds):
            for c in clients:
                self.sync(c)
        self.assertScoped(clients)

    def assertScoped(self, clients, ignore=()):
        """Each replica holds exactly what the server shows its user
        (records whose id is in ignore left out of the replica's side),
        with nothing pending."""
        for c in clients:
            want = self.user_dump(c.user)
            got = c.dump()
            if ignore:
                got = "".join(l + "\n" for l in got.splitlines()
                              if json.loads(l)["id"] not in ignore)
            if got != want:
                self.fail(self.msg("dump of %s (%s) differs from `fieldsync-admin dump "
                                   "--user %s`:\n%s" % (c.name, c.user, c.user,
                                                        e2eutil._diff(want, got, "server",
                                                                      c.name))))
            self.assertEqual(c.pending(), 0, "%s still has pending changes" % c.name)

    def assertHolds(self, c, want, what=""):
        got = keys(c.dump())
        missing = sorted(want - got)
        extra = sorted(got - want)
        if missing or extra:
            self.fail(self.msg("%s (%s)%s: missing %r; unexpected %r"
                               % (c.name, c.user, " " + what if what else "",
                                  missing, extra)))

    # the data: reference data and customers with what hangs off them

    def reference(self, O):
        before = keys(O.dump())
        p1 = O.add("product", sku="W1", name="Widget", list_price="10", tax_rate="10")
        O.add("product", sku="W2", name="Gadget", list_price="7")
        pl = O.add("price_list", name="Standard")
        O.add("price_list_item", price_list=pl, product=p1, price="9")
        return keys(O.dump()) - before

    def family(self, O, name, region, full=True):
        """A customer created on O with a contact and, if full, a visit, an
        opportunity, a quote with a line, an order from it (confirmed, one
        line) and a payment; returns (customer id, every (table, id))."""
        before = keys(O.dump())
        kw = {"name": name}
        if region:
            kw["region"] = region
        cid = O.add("customer", **kw)
        O.add("contact", customer=cid, name=name + " contact")
        if full:
            O.ok("visit", "log", "--customer", cid, "--purpose", "intro " + name)
            O.add("opportunity", customer=cid, title=name + " deal")
            q = O.ok("quote", "new", "--customer", cid, "--line", "W1:2").strip()
            o = O.ok("order", "from-quote", q).strip()
            O.ok("order", "submit", o)
            O.ok("order", "confirm", o)
            O.add("payment", order=o, amount="5", paid_at=PAID_AT)
        fam = keys(O.dump()) - before
        if full:
            self.assertEqual(sorted({t for t, _ in fam}),
                             sorted(["customer", "contact", "visit", "opportunity",
                                     "quote", "quote_line", "sales_order",
                                     "order_line", "payment"]))
        return cid, fam

    def inject(self, c, table, rid):
        """Copies the server's row table/rid into c's replica without
        capturing it: a replica holding a record outside its user's scope
        (stale, or tampered with)."""
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srvdir, "server.db"),
                              uri=True, timeout=30)
        try:
            cur = con.execute('SELECT * FROM "%s" WHERE id = ?' % table, (rid,))
            cols = [d[0] for d in cur.description]
            row = cur.fetchone()
        finally:
            con.close()
        self.assertIsNotNone(row, "%s %s not on the server" % (table, rid))
        con = sqlite3.connect(c.db, timeout=30)
        try:
            con.execute('INSERT INTO "%s"(%s) VALUES (%s)'
                        % (table, ", ".join('"%s"' % x for x in cols),
                           ", ".join("?" * len(cols))), row)
            con.commit()
        finally:
            con.close()

    # ------------------------------------------------------------ admin CLI

    def test_admin_departments_and_users(self):
        # departments: duplicates, unknown parents, cycles, bad codes refused
        self.admin_fails(1, ["dept", "add", "north", "--name", "Again"])
        self.admin_fails(1, ["dept", "add", "west", "--name", "West", "--parent", "nowhere"],
                         says="nowhere")
        self.admin_fails(1, ["dept", "add", "we st", "--name", "Bad code"])
        self.admin_fails(1, ["dept", "set", "HQ", "--parent", "north-a"])      # a cycle
        self.admin_fails(1, ["dept", "set", "north", "--parent", "north"])     # itself
        self.admin_fails(1, ["dept", "set", "nowhere", "--name", "X"])
        self.admin_fails(1, ["dept", "set", "south", "--parent", "nowhere"])
        tree = {r[0]: (r[1], r[2]) for r in self.server.sql(
            "SELECT code, name, parent FROM fs_dept")}
        self.assertEqual(tree, {"HQ": ("Head office", None), "north": ("North", "HQ"),
                                "north-a": ("North A", "north"), "south": ("South", "HQ")})
        self.admin("dept", "set", "north-a", "--name", "North Alpha")
        self.admin("dept", "add", "east", "--name", "East", "--parent", "HQ")
        self.admin("dept", "set", "east", "--parent", "-")                     # a root
        self.admin("dept", "set", "east", "--parent", "south")
        self.admin("dept", "set", "east", "--parent", "-")
        listed = json.loads(self.admin("dept", "list", "--json"))
        self.assertIsInstance(listed, list)
        got = {d["code"]: (d["name"], d.get("parent")) for d in listed}
        self.assertEqual(got, {"HQ": ("Head office", None), "north": ("North", "HQ"),
                               "north-a": ("North Alpha", "north"),
                               "south": ("South", "HQ"), "east": ("East", None)})
        text = self.admin("dept", "list")
        for code in ("HQ", "north", "north-a", "south", "east"):
            self.assertIn(code, text)

        # users: reps and managers must say where; codes must exist
        err = self.admin_fails(2, ["user", "add", "rita", "--role", "rep"])
        self.assertIn("region", err.lower())
        self.admin_fails(2, ["user", "add", "mona", "--role", "manager"])
        self.admin_fails(1, ["user", "add", "rex", "--role", "rep", "--region", "nowhere"],
                         says="nowhere")
        self.admin_fails(1, ["user", "add", "rex", "--role", "rep",
                             "--region", "north,nowhere"], says="nowhere")
        self.assertEqual(self.server.sql("SELECT name FROM fs_user WHERE name IN "
                                         "('rita', 'mona', 'rex')"), [])
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_user_scope WHERE user "
                                         "IN ('rita', 'mona', 'rex')"), [(0,)])
        self.admin("user", "add", "nina", "--role", "rep", "--region", "north")
        self.admin("user", "add", "mia", "--role", "manager", "--region", "north,south")
        self.admin("user", "add", "olga", "--role", "office")
        self.admin("user", "add", "adam", "--role", "admin")
        self.admin("user", "add", "rob", "--role", "rep", "--region", "*")
        self.admin_fails(1, ["user", "add", "nina", "--role", "rep", "--region", "south"])

        def scopes():
            out = {}
            for u, d in self.server.sql("SELECT user, dept FROM fs_user_scope"):
                out.setdefault(u, set()).add(d)
            return out
        self.assertEqual(scopes(), {"nina": {"north"}, "mia": {"north", "south"},
                                    "olga": {"*"}, "adam": {"*"}, "rob": {"*"}})
        roles = dict(self.server.sql("SELECT name, role FROM fs_user"))
        self.assertEqual(roles, {"nina": "rep", "mia": "manager", "olga": "office",
                                 "adam": "admin", "rob": "rep"})

        # user set
        self.admin("user", "set", "nina", "--region", "north-a,south")
        self.admin("user", "set", "mia", "--role", "office")
        self.admin_fails(1, ["user", "set", "ghost", "--role", "rep"])
        self.admin_fails(1, ["user", "set", "nina", "--region", "nowhere"], says="nowhere")
        rc, out, err = self.admin_rc("user", "set", "nina", "--role", "boss")
        self.assertIn(rc, (1, 2), "an unknown role: rc %d %r" % (rc, err))
        self.assertEqual(scopes()["nina"], {"north-a", "south"},
                         "a refused user set changed the scope")
        self.assertEqual(scopes()["mia"], {"north", "south"})
        roles = dict(self.server.sql("SELECT name, role FROM fs_user"))
        self.assertEqual((roles["nina"], roles["mia"]), ("rep", "office"))
        self.admin("user", "set", "nina", "--region", "*")
        self.assertEqual(scopes()["nina"], {"*"})
        # dump --user of an unknown user
        rc, out, err = self.admin_rc("dump", "--user", "ghost")
        self.assertEqual(rc, 1, "dump --user ghost: rc %d %r" % (rc, err))

    # ------------------------------------------------------------ what is seen

    def populate(self, O):
        ref = self.reference(O)
        fam = {}
        cid = {}
        cid["N"], fam["N"] = self.family(O, "Northwind", "north")
        cid["S"], fam["S"] = self.family(O, "Southbank", "south")
        cid["NA"], fam["NA"] = self.family(O, "Branchy", "north-a", full=False)
        cid["H"], fam["H"] = self.family(O, "Headcorp", "HQ", full=False)
        cid["X"], fam["X"] = self.family(O, "Nowhere Ltd", None, full=False)
        cid["M"], fam["M"] = self.family(O, "Mars Inc", "mars", full=False)
        return ref, cid, fam

    def test_first_sync_snapshot_is_scoped(self):
        O = self.person("olga", "office")
        ref, cid, fam = self.populate(O)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        nora = self.person("nora", "rep", "north-a")
        sam = self.person("sam", "rep", "south")
        mia = self.person("mia", "manager", "north,south")
        maxi = self.person("max", "manager", "HQ")
        adam = self.person("adam", "admin")
        want = {
            nina: ref | fam["N"] | fam["NA"],
            nora: ref | fam["NA"],
            sam: ref | fam["S"],
            mia: ref | fam["N"] | fam["NA"] | fam["S"],
            maxi: ref | fam["N"] | fam["NA"] | fam["S"] | fam["H"],
            adam: set().union(ref, *fam.values()),
            O: set().union(ref, *fam.values()),
        }
        for c in (nina, nora, sam, mia, maxi, adam):
            rep = self.sync(c)
            self.assertTrue(rep["snapshot"], "first sync of %s was not a snapshot" % c.name)
        for c, w in want.items():
            self.assertHolds(c, w, "after its first sync")
        # the customer without a region and the one of an unknown
        # department: whole-company users only
        for c in (nina, nora, sam, mia, maxi):
            got = {i for _, i in keys(c.dump())}
            self.assertNotIn(cid["X"], got)
            self.assertNotIn(cid["M"], got)
        self.assertEqual(self.user_dump("olga"), self.server_dump())
        self.assertEqual(self.user_dump("adam"), self.server_dump())
        self.settle([O, nina, nora, sam, mia, maxi, adam])
        for c, w in want.items():
            self.assertHolds(c, w, "after settling")

    def test_incremental_pulls_are_scoped(self):
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        nora = self.person("nora", "rep", "north-a")
        sam = self.person("sam", "rep", "south")
        maxi = self.person("max", "manager", "HQ")
        everyone = [O, nina, nora, sam, maxi]
        for c in everyone:
            self.sync(c)          # bootstrapped, empty
        ref, cid, fam = self.populate(O)
        self.sync(O)
        for c in (nina, nora, sam, maxi):
            rep = self.sync(c)
            self.assertFalse(rep["snapshot"], "%s took a snapshot again" % c.name)
        self.assertHolds(nina, ref | fam["N"] | fam["NA"])
        self.assertHolds(nora, ref | fam["NA"])
        self.assertHolds(sam, ref | fam["S"])
        self.assertHolds(maxi, ref | fam["N"] | fam["NA"] | fam["S"] | fam["H"])
        self.assertScoped(everyone)

        # more changes, from the office and from reps, in and out of scopes
        O.edit("customer", cid["S"], city="Southtown")
        O.edit("customer", cid["N"], phone="555-N")
        na_c2 = O.add("contact", customer=cid["NA"], name="Second at branch")
        O.edit("customer", cid["X"], city="Limbo")
        self.sync(O)
        mine = nina.add("contact", customer=cid["NA"], name="Nina's branch contact")
        nina_cust = nina.add("customer", name="Nina's new", region="north-a")
        sams = sam.add("visit", customer=cid["S"], planned_at="2026-12-01T09:00:00Z")
        self.sync(nina)
        self.sync(sam)
        fam["NA"] |= {("contact", na_c2), ("contact", mine), ("customer", nina_cust)}
        fam["S"] |= {("visit", sams)}
        self.settle(everyone)
        self.assertHolds(nina, ref | fam["N"] | fam["NA"])
        self.assertHolds(nora, ref | fam["NA"])
        self.assertHolds(sam, ref | fam["S"])
        self.assertHolds(maxi, ref | fam["N"] | fam["NA"] | fam["S"] | fam["H"])
        self.assertEqual(by_id(sam.dump())[cid["S"]].get("city"), "Southtown")
        self.assertEqual(by_id(nina.dump())[cid["N"]].get("phone"), "555-N")
        self.assertEqual(by_id(O.dump())[cid["X"]].get("city"), "Limbo")
        self.assertEqual(self.rejections(nina), [])
        self.assertEqual(self.rejections(sam), [])

    # ------------------------------------------------------------ writes

    def test_rep_creating_outside_scope_is_refused(self):
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        O.add("product", sku="W1", name="Widget", list_price="10")
        self.sync(O)
        self.sync(nina)
        log_before = self.server.sql("SELECT count(*) FROM fs_log")[0][0]
        inn = nina.add("customer", name="In north", region="north")
        branch = nina.add("customer", name="In branch", region="north-a")
        inn_c = nina.add("contact", customer=inn, name="In contact")
        out = nina.add("customer", name="Out south", region="south")
        out_c = nina.add("contact", customer=out, name="Out contact")
        noreg = nina.add("customer", name="No region")
        mars = nina.add("customer", name="On mars", region="mars")
        rep = self.sync(nina, refused=4)
        self.assertEqual(rep["pushed"], 3, rep)
        rej = self.rejections(nina)
        self.assertEqual(sorted((r["table"], r["record"], r["op"]) for r in rej),
                         sorted([("customer", out, "I"), ("contact", out_c, "I"),
                                 ("customer", noreg, "I"), ("customer", mars, "I")]),
                         json.dumps(rej, indent=1))
        for r in rej:
            if r["table"] == "customer":
                self.assertIn("scope", r["reason"].lower(), r)
            else:   # its customer was refused: out of scope or unknown
                self.assertRegex(r["reason"].lower(), "scope|not exist", r)
        # the refused data stays in the rejections
        vals = {r["record"]: r["value"] for r in rej}
        self.assertEqual(vals[out]["name"], "Out south")
        self.assertEqual(vals[out]["region"], "south")
        self.assertEqual(vals[out_c]["name"], "Out contact")
        # the server has what was in scope, and nothing else
        srv = by_id(self.server_dump())
        self.assertEqual((srv[inn]["region"], srv[branch]["region"], srv[inn_c]["customer"]),
                         ("north", "north-a", inn))
        for rid in (out, out_c, noreg, mars):
            self.assertNotIn(rid, srv)
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_log WHERE rid IN "
                                         "(?, ?, ?, ?)", (out, out_c, noreg, mars)), [(0,)])
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_log")[0][0],
                         log_before + 3)
        # the refused creations are gone locally
        local = {i for _, i in keys(nina.dump())}
        self.assertEqual(local & {out, out_c, noreg, mars}, set())
        self.assertLessEqual({inn, branch, inn_c}, local)
        self.settle([O, nina, sam])
        self.assertEqual(len(self.rejections(nina)), 4, "rejections must be kept")
        self.assertNotIn("Out south", sam.dump())

    def test_rep_writes_to_records_outside_scope_are_refused(self):
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        O.add("product", sku="W1", name="Widget", list_price="10")
        n = O.add("customer", name="Northwind", region="north")
        nc = O.add("contact", customer=n, name="North contact")
        s = O.add("customer", name="Southbank", region="south", city="Southtown")
        sc = O.add("contact", customer=s, name="South contact")
        s2 = O.add("customer", name="Southbank two", region="south")
        self.sync(O)
        self.sync(nina)
        p = [r["id"] for r in O.records("product")]
        self.assertHolds(nina, {("product", p[0]), ("customer", n), ("contact", nc)})
        # nina's replica learns of southern records (stale or tampered)
        for t, rid in (("customer", s), ("contact", sc), ("customer", s2)):
            self.inject(nina, t, rid)
        srv_before = self.server_dump()
        log_before = self.server.sql("SELECT max(seq) FROM fs_log")
        nina.edit("customer", s, city="Hacked")                       # U
        nina.ok("contact", "delete", sc)                              # D
        nina.ok("customer", "delete", s2)                             # D
        sneaky = nina.add("contact", customer=s, name="Sneaky")       # I
        visit = nina.ok("visit", "log", "--customer", s).strip()      # I
        q = nina.ok("quote", "new", "--customer", s, "--line", "W1:1").strip()  # I + I
        nina.edit("contact", nc, customer=s)                          # U: a move
        self.assertEqual(nina.pending(), 8)
        self.sync(nina, refused=8)
        rej = self.rejections(nina)
        got = sorted((r["table"], r["record"], r["op"], r["field"] or "") for r in rej)
        qlines = [r["record"] for r in rej if r["table"] == "quote_line"]
        self.assertEqual(len(qlines), 1, json.dumps(rej, indent=1))
        self.assertEqual(got, sorted([
            ("customer", s, "U", "city"), ("contact", sc, "D", ""),
            ("customer", s2, "D", ""), ("contact", sneaky, "I", ""),
            ("visit", visit, "I", ""), ("quote", q, "I", ""),
            ("quote_line", qlines[0], "I", ""), ("contact", nc, "U", "customer")]),
            json.dumps(rej, indent=1))
        for r in rej:
            if r["table"] == "quote_line":   # its quote was refused
                self.assertRegex(r["reason"].lower(), "scope|not exist", r)
            elif r["op"] == "U" and r["field"] == "customer":   # a move
                self.assertRegex(r["reason"].lower(), "scope|department", r)
            else:
                self.assertIn("scope", r["reason"].lower(), r)
        # nothing reached the server
        self.assertEqual(self.server_dump(), srv_before)
        self.assertEqual(self.server.sql("SELECT max(seq) FROM fs_log"), log_before)
        # the move reverted, the refused creations gone
        mine = by_id(nina.dump())
        self.assertIn(nc, mine, self.msg("nina's own northern contact vanished from her "
                                         "replica after its refused move to %s" % s))
        self.assertEqual(mine[nc]["customer"], n, "a refused move must revert")
        for rid in (sneaky, visit, q, qlines[0]):
            self.assertNotIn(rid, mine)
        self.settle([O])
        self.assertScoped([nina], ignore={s, sc, s2})
        # the south sees its records untouched
        sam = self.person("sam", "rep", "south")
        self.sync(sam)
        theirs = by_id(sam.dump())
        self.assertEqual(theirs[s].get("city"), "Southtown")
        self.assertEqual(theirs[sc]["customer"], s)
        self.assertIn(s2, theirs)
        self.assertNotIn(nc, theirs)
        self.assertScoped([sam])

    def test_credit_fields_belong_to_managers_and_office(self):
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        maxi = self.person("max", "manager", "HQ")
        n = O.add("customer", name="Northwind", region="north", credit_limit="1000",
                  level="B")
        self.sync(O)
        self.sync(nina)
        self.sync(maxi)
        nina.edit("customer", n, credit_limit="5000", credit_rating="AA", level="A",
                  city="Here")
        self.sync(nina, refused=3)
        rej = self.rejections(nina)
        self.assertEqual(sorted(r["field"] for r in rej),
                         ["credit_limit", "credit_rating", "level"], json.dumps(rej, indent=1))
        why = {"credit_limit": WHY_LIMIT, "credit_rating": WHY_RATING, "level": WHY_LEVEL}
        for r in rej:
            self.assertIn(why[r["field"]], r["reason"], r)
        mine = by_id(nina.dump())[n]
        self.assertEqual((mine.get("credit_limit"), mine.get("credit_rating"),
                          mine.get("level"), mine.get("city")),
                         (Decimal("1000.00"), None, "B", "Here"),
                         "refused fields must revert to the server's values")
        self.assertEqual(self.server.sql("SELECT credit_limit, credit_rating, level, city "
                                         "FROM customer WHERE id = ?", (n,)),
                         [(100000, None, "B", "Here")])
        # creating a customer with an owned field set: refused as a whole
        rated = nina.add("customer", name="Rated", region="north", credit_limit="300",
                         level="C")
        plain = nina.add("customer", name="Plain", region="north")
        self.sync(nina, refused=1)
        rej = self.rejections(nina)
        self.assertEqual(len(rej), 4)
        self.assertEqual((rej[-1]["table"], rej[-1]["record"], rej[-1]["op"]),
                         ("customer", rated, "I"))
        self.assertRegex(rej[-1]["reason"], "(%s|%s)" % (WHY_LIMIT, WHY_LEVEL))
        srv = by_id(self.server_dump())
        self.assertNotIn(rated, srv)
        self.assertIn(plain, srv)
        self.assertNotIn(rated, by_id(nina.dump()))
        # a manager and the office may
        maxi.edit("customer", n, credit_limit="2000", level="A")
        big = maxi.add("customer", name="Big south", region="south", credit_limit="50",
                       level="A")
        self.sync(maxi)
        O.sync()
        O.edit("customer", n, credit_rating="AA")
        self.sync(O)
        self.settle([O, nina, maxi])
        self.assertEqual(self.server.sql("SELECT credit_limit, credit_rating, level "
                                         "FROM customer WHERE id = ?", (n,)),
                         [(200000, "AA", "A")])
        self.assertEqual(self.server.sql("SELECT credit_limit, level FROM customer "
                                         "WHERE id = ?", (big,)), [(5000, "A")])
        mine = by_id(nina.dump())[n]
        self.assertEqual((mine.get("credit_limit"), mine.get("credit_rating"),
                          mine.get("level")), (Decimal("2000.00"), "AA", "A"))
        self.assertEqual(len(self.rejections(nina)), 4)
        self.assertEqual(self.rejections(maxi), [])

    def test_orders_past_confirmation_belong_to_the_office(self):
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        maxi = self.person("max", "manager", "HQ")
        O.add("product", sku="W1", name="Widget", list_price="10")
        n = O.add("customer", name="Northwind", region="north")
        self.sync(O)
        self.sync(nina)
        o1 = nina.ok("order", "new", "--customer", n, "--line", "W1:2").strip()
        nina.ok("order", "submit", o1)
        o2 = nina.ok("order", "new", "--customer", n, "--line", "W1:1").strip()
        self.sync(nina)                       # a rep submits: fine
        status = lambda oid: self.server.sql(
            "SELECT status FROM sales_order WHERE id = ?", (oid,))[0][0]
        self.assertEqual((status(o1), status(o2)), ("submitted", "draft"))
        [line2] = [r["id"] for r in nina.records("order_line") if r["order"] == o2]

        # a rep confirming: refused, the status reverts
        nina.ok("order", "confirm", o1)
        self.sync(nina, refused=1)
        [r] = self.rejections(nina)
        self.assertEqual((r["table"], r["record"], r["field"], r["value"]),
                         ("sales_order", o1, "status", "confirmed"))
        self.assertIn(WHY_STATUS, r["reason"])
        self.assertEqual(status(o1), "submitted")
        self.assertEqual(by_id(nina.dump())[o1]["status"], "submitted")
        # so is a manager
        self.sync(maxi)
        maxi.ok("order", "confirm", o1)
        self.sync(maxi, refused=1)
        [r] = self.rejections(maxi)
        self.assertEqual(r["record"], o1)
        self.assertIn(WHY_STATUS, r["reason"])

        # the office confirms both
        self.sync(O)
        O.ok("order", "confirm", o1)
        O.ok("order", "submit", o2)
        O.ok("order", "confirm", o2)
        self.sync(O)
        self.assertEqual((status(o1), status(o2)), ("confirmed", "confirmed"))
        # nina, not yet knowing o2 was confirmed, changes its line (a draft's
        # line, as far as her replica knows): refused
        nina.edit("order_line", line2, quantity="5")
        self.sync(nina, refused=1)
        r = self.rejections(nina)[-1]
        self.assertEqual((r["table"], r["record"], r["field"]),
                         ("order_line", line2, "quantity"))
        self.assertIn(WHY_LINES, r["reason"])
        mine = by_id(nina.dump())
        self.assertEqual(mine[line2]["quantity"], 1, "the refused line edit must revert")
        self.assertEqual(mine[o2]["status"], "confirmed")
        self.assertEqual(self.server.sql("SELECT quantity FROM order_line WHERE id = ?",
                                         (line2,)), [(1000,)])
        # any change of a confirmed order by a rep: refused
        nina.edit("order", o1, notes="rep's note")
        nina.ok("order", "cancel", o1)
        self.sync(nina, refused=2)
        rej = self.rejections(nina)[-2:]
        self.assertEqual(sorted((r["record"], r["field"]) for r in rej),
                         [(o1, "notes"), (o1, "status")])
        for r in rej:
            self.assertIn(WHY_PAST, r["reason"], r)
        self.assertEqual(self.server.sql("SELECT status, notes FROM sales_order "
                                         "WHERE id = ?", (o1,)), [("confirmed", None)])
        mine = by_id(nina.dump())[o1]
        self.assertEqual((mine["status"], mine.get("notes")), ("confirmed", None))
        # the office changes and ships it
        O.edit("order", o1, notes="office note")
        O.ok("order", "ship", o1)
        self.sync(O)
        self.settle([O, nina, maxi])
        mine = by_id(nina.dump())[o1]
        self.assertEqual((mine["status"], mine.get("notes")), ("shipped", "office note"))
        self.assertEqual(len(self.rejections(nina)), 4)
        self.assertEqual(self.rejections(O), [])

    # ------------------------------------------------------------ moves

    def test_customer_moves_between_departments(self):
        O = self.person("olga", "office")
        ref = self.reference(O)
        cid, fam = self.family(O, "Northwind", "north")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        maxi = self.person("max", "manager", "HQ")
        everyone = [O, nina, sam, maxi]
        for c in (nina, sam, maxi):
            self.sync(c)
        # nina's own records on it, long before the move
        ninas = nina.add("contact", customer=cid, name="Nina's contact")
        ninav = nina.ok("visit", "log", "--customer", cid, "--purpose", "old").strip()
        self.sync(nina)
        fam |= {("contact", ninas), ("visit", ninav)}
        self.settle(everyone)
        self.assertHolds(nina, ref | fam)
        self.assertHolds(sam, ref)
        self.assertHolds(maxi, ref | fam)

        # offline, before the move reaches her: nina edits it
        nina.edit("customer", cid, phone="555-nina")
        # the office moves it to the south
        self.sync(O)
        O.edit("customer", cid, region="south")
        self.sync(O)
        self.sync(maxi)
        self.assertHolds(maxi, ref | fam, "(a manager over both keeps it)")
        self.sync(sam)
        self.assertHolds(sam, ref | fam, "(everything hanging off the customer moves)")
        self.sync(nina)                      # accepted, then dropped
        self.assertHolds(nina, ref, "after the move")
        self.assertEqual(self.rejections(nina), [])
        srv = by_id(self.server_dump())
        self.assertEqual((srv[cid]["region"], srv[cid].get("phone")), ("south", "555-nina"))
        self.settle(everyone)
        self.assertHolds(sam, ref | fam)
        self.assertHolds(maxi, ref | fam)
        self.assertHolds(nina, ref)
        self.assertEqual(by_id(sam.dump())[cid].get("phone"), "555-nina")
        self.assertEqual(self.server.sql("SELECT customer, from_scope, to_scope FROM fs_move "
                                         "ORDER BY seq"), [(cid, "north", "south")])

        # the south works on it; then it moves to the northern branch
        sam.edit("customer", cid, city="Southtown")
        sv = sam.ok("visit", "log", "--customer", cid, "--purpose", "south visit").strip()
        self.sync(sam)
        fam |= {("visit", sv)}
        self.sync(O)
        O.edit("customer", cid, region="north-a")
        self.sync(O)
        self.settle(everyone)
        self.assertHolds(nina, ref | fam, "after the move back under north")
        self.assertHolds(sam, ref, "after the move away from south")
        self.assertHolds(maxi, ref | fam)
        self.assertEqual(by_id(nina.dump())[cid].get("city"), "Southtown")
        self.assertEqual(self.server.sql("SELECT customer, from_scope, to_scope FROM fs_move "
                                         "ORDER BY seq"),
                         [(cid, "north", "south"), (cid, "south", "north-a")])
        for c in everyone:
            self.assertEqual(self.rejections(c), [], c.name)
        # a device of the south's first sync after all that: nothing of it
        sam2 = self.device("sam", "sam2")
        self.sync(sam2)
        self.assertHolds(sam2, ref)
        self.assertScoped([sam2])

    def test_a_record_created_before_a_move_is_accepted(self):
        # 004_scope.sql: "A write made before the move by a device that saw
        # the old department is still accepted" -- a creation too.
        O = self.person("olga", "office")
        ref = self.reference(O)
        cid, fam = self.family(O, "Northwind", "north", full=False)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        self.sync(nina)
        late = nina.add("contact", customer=cid, name="Late contact")
        lv = nina.ok("visit", "log", "--customer", cid, "--purpose", "late").strip()
        O.edit("customer", cid, region="south")
        self.sync(O)
        self.sync(nina)
        self.assertEqual(self.rejections(nina), [])
        srv = by_id(self.server_dump())
        self.assertEqual((srv[late]["customer"], srv[lv]["customer"]), (cid, cid))
        self.settle([O, nina, sam])
        self.assertHolds(nina, ref)
        self.assertHolds(sam, ref | fam | {("contact", late), ("visit", lv)})

    def sync_held(self, c, s2c, during):
        """Syncs c through a proxy that holds the s2c-th application-data
        record from the server until during() has run; returns the sync's
        (rc, out, err)."""
        p = self.start_proxy()
        con = sqlite3.connect(c.db, timeout=30)
        try:
            con.execute("UPDATE fs_meta SET v = ? WHERE k = 'server'", (p.addr,))
            con.commit()
            p.hold(s2c=s2c)
            proc = subprocess.Popen([e2eutil.FS, "--db", c.db, "sync", "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, cwd=self.tmp)
            try:
                self.assertTrue(p.held.wait(60), "the sync never reached the hold")
                during()
            finally:
                p.release()
                out, err = proc.communicate(timeout=120)
            con.execute("UPDATE fs_meta SET v = ? WHERE k = 'server'",
                        (self.server.addr,))
            con.commit()
        finally:
            con.close()
        rep = e2eutil.sanitizer_report(err)
        self.assertFalse(rep, "sanitizer report from the held sync:\n%s" % rep)
        return proc.returncode, out, err

    def test_a_creation_made_during_a_sync_keeps_its_fields(self):
        # nina adds a contact while her replica syncs (an app and its sync
        # service), under a customer the office moved south: the server
        # has sent her the move already, in the frame the proxy holds.
        # That sync's pull drops the customer and what hangs off it, the
        # new contact too: its fields, not yet put together for a push,
        # are kept in the log (found by a reviewer: the next push sent the
        # creation without them).  The server refuses it -- the device had
        # been sent the move; a base is the client's word, and what it was
        # sent bounds it -- and the rejection keeps everything she typed.
        O = self.person("olga", "office")
        ref = self.reference(O)
        cid, fam = self.family(O, "Northwind", "north", full=False)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        O.edit("customer", cid, region="south")
        self.sync(O)
        made = []
        rc, out, err = self.sync_held(nina, 2, lambda: made.append(      # CHANGES
            nina.add("contact", customer=cid, name="Made during the sync")))
        self.assertEqual(rc, 0, err)
        self.assertHolds(nina, ref, "after the move")
        self.sync(nina, refused=1)
        [r] = self.rejections(nina)
        self.assertEqual((r["table"], r["record"], r["op"]), ("contact", made[0], "I"))
        self.assertIn("outside your scope", r["reason"])
        fields = r["value"] if isinstance(r["value"], dict) else json.loads(r["value"])
        self.assertEqual((fields["name"], fields["customer"]),
                         ("Made during the sync", cid))
        self.assertNotIn(made[0], by_id(self.server_dump()))

    def test_one_sync_at_a_time_per_replica(self):
        # Two syncs of one replica at once would both push its pending
        # changes; the second one's ACK then deleted a change made after
        # the first had emptied the log (found by a reviewer: the change
        # was lost, replica and server differed for good).  The second
        # sync is refused while the first runs.
        O = self.person("olga", "office")
        cid, fam = self.family(O, "Northwind", "north", full=False)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        nina.edit("customer", cid, phone="111")
        nina.edit("customer", cid, city="Town")
        second = []
        rc, out, err = self.sync_held(nina, 2, lambda: second.append(    # ACK
            nina.try_sync()))
        self.assertEqual(rc, 0, err)
        rc2, out2, err2 = second[0]
        self.assertNotEqual(rc2, 0, "a second sync ran alongside the first")
        self.assertIn("another sync of this replica is running", err2)
        nina.edit("customer", cid, email="new@example.cn")
        self.sync(nina)
        self.settle([O, nina])
        srv = by_id(self.server_dump())[cid]
        self.assertEqual((srv["phone"], srv["city"], srv["email"]),
                         ("111", "Town", "new@example.cn"))

    def test_relinking_to_a_customer_that_moves_away_converges(self):
        # nina moves a contact between two northern customers while the
        # office moves the second to the south.  Whether the server takes
        # the relink (made before the move) or refuses it, nina's replica
        # must end up as the server shows it to her: the contact stays
        # with her if it stayed on the northern customer.
        O = self.person("olga", "office")
        n1 = O.add("customer", name="North one", region="north")
        n2 = O.add("customer", name="North two", region="north")
        c1 = O.add("contact", customer=n1, name="Wanderer")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        self.sync(nina)
        nina.edit("customer", n2, city="Second city")
        nina.edit("contact", c1, customer=n2)
        c2 = nina.add("contact", customer=n2, name="Newcomer")
        O.edit("customer", n2, region="south")
        self.sync(O)
        rc, out, err = nina.try_sync()    # refused or not: both are allowed
        self.assertIn(rc, (0, 5), err)
        self.settle([O, nina, sam])
        [(where,)] = self.server.sql("SELECT customer FROM contact WHERE id = ?", (c1,))
        self.assertIn(where, (n1, n2))
        self.assertEqual(c1 in by_id(nina.dump()), where == n1,
                         "contact on %s on the server" % ("n1" if where == n1 else "n2"))
        self.assertEqual(c1 in by_id(sam.dump()), where == n2)
        self.assertNotIn(c2, by_id(nina.dump()))
        self.assertEqual(c2 in by_id(sam.dump()), c2 in by_id(self.server_dump()))
        self.assertEqual(by_id(sam.dump())[n2].get("city"), "Second city")

    def test_rep_moving_a_customer_out_of_scope_is_refused(self):
        # A rep changing a customer's region to a department outside their
        # scope is a write outside the scope.
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        n = O.add("customer", name="Northwind", region="north")
        self.sync(O)
        self.sync(nina)
        nina.edit("customer", n, region="south")
        self.sync(nina, refused=1)
        [r] = self.rejections(nina)
        self.assertEqual((r["record"], r["field"]), (n, "region"))
        self.assertIn("scope", r["reason"].lower())
        self.assertEqual(self.server.sql("SELECT region FROM customer WHERE id = ?", (n,)),
                         [("north",)])
        self.assertEqual(by_id(nina.dump())[n]["region"], "north")
        # within the scope (to the branch under north) is fine
        nina.edit("customer", n, region="north-a")
        self.sync(nina)
        self.settle([O, nina])
        self.assertEqual(by_id(nina.dump())[n]["region"], "north-a")

    def tamper(self, c, op, rid, val, hlc_ahead=1 << 30):
        """Queues a hand-written change in c's replica, as a modified client
        would: (op, customer rid, JSON text val), its clock ahead of
        everything seen so far."""
        con = sqlite3.connect(c.db, timeout=30)
        try:
            [(hlc,)] = con.execute(
                "SELECT max(coalesce((SELECT max(hlc) FROM fs_change), 0), "
                "coalesce((SELECT v FROM fs_meta WHERE k = 'hlc'), 0))").fetchall()
            [(dev,)] = con.execute("SELECT v FROM fs_meta WHERE k = 'device'").fetchall()
            [(base,)] = con.execute("SELECT coalesce((SELECT v FROM fs_meta "
                                    "WHERE k = 'cursor'), 0)").fetchall()
            con.execute("INSERT INTO fs_change(tbl, rid, op, val, hlc, device, base) "
                        "VALUES ('customer', ?, ?, ?, ?, ?, ?)",
                        (rid, op, val, int(hlc) + hlc_ahead, dev, int(base)))
            con.commit()
        finally:
            con.close()

    def test_a_forged_base_does_not_reopen_a_customer_that_moved_away(self):
        # "Made before the move" is decided by the base a change claims.
        # nina pulled the move of her customer to the south; a modified
        # client then claims base 0 for an edit and a delete of it (found
        # by a reviewer: both were taken, for good).  The server bounds a
        # device's base by what it knows the device pulled.
        O = self.person("olga", "office")
        cid, fam = self.family(O, "Northwind", "north", full=False)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        O.edit("customer", cid, region="south", phone="south's")
        self.sync(O)
        self.sync(nina)                       # she is told: X
        for op, val in (("U", None), ("D", None)):
            con = sqlite3.connect(nina.db, timeout=30)
            try:
                [(hlc,)] = con.execute("SELECT coalesce((SELECT v FROM fs_meta "
                                       "WHERE k = 'hlc'), 0)").fetchall()
                con.execute("INSERT INTO fs_change(tbl, rid, op, col, val, hlc, "
                            "device, base) VALUES ('customer', ?, ?, ?, ?, ?, '', 0)",
                            (cid, op, "phone" if op == "U" else None,
                             '"PWNED"' if op == "U" else None,
                             int(hlc) + (1 << 30)))
                con.commit()
            finally:
                con.close()
            rc, out, err = nina.try_sync()
            self.assertNotEqual(rc, 0, "a forged %s was taken: %s" % (op, out))
            srv = by_id(self.server_dump())
            self.assertIn(cid, srv, "a forged delete was taken")
            self.assertEqual(srv[cid].get("phone"), "south's")
        rej = self.rejections(nina)
        self.assertEqual(len(rej), 2, rej)
        for r in rej:
            self.assertIn("outside your scope", r["reason"])

    def test_moves_replayed_from_cursor_0_send_nothing_that_left(self):
        # A customer moved north -> south -> east.  A device of the south
        # pulls the log from 0, as a modified client may (or one offline
        # through both moves): the move into the south is old news, and
        # the customer as it is now (east's) must not be sent (found by a
        # reviewer: every old move sent today's records).
        from fswire import CHANGES, HELLO, PULL, WELCOME, st, uv
        from test_protocol import Conn
        self.admin("dept", "add", "east", "--name", "East", "--parent", "HQ")
        O = self.person("olga", "office")
        cid, fam = self.family(O, "Northwind", "north", full=False)
        self.sync(O)
        O.edit("customer", cid, region="south")
        self.sync(O)
        O.edit("customer", cid, region="east")
        self.sync(O)
        O.edit("customer", cid, phone="555-EAST-SECRET")
        ec = O.add("contact", customer=cid, name="East only")
        self.sync(O)
        self.admin("user", "add", "sam", "--role", "rep", "--region", "south")
        en = self.enroll("sam", "EN_raw")
        [(schema,)] = self.server.sql("SELECT max(version) FROM schema_version")
        c = Conn(self, self.server.port, en)
        self.addCleanup(c.close)
        c.send(HELLO, uv(1) + uv(schema) + st("scope-test/1") + uv(0))
        typ, r = c.recv()
        self.assertEqual(typ, WELCOME)
        got, cursor = [], 0
        for _ in range(100):
            c.send(PULL, uv(cursor) + uv(5000) + uv(0) + st(None) + st(None) + uv(0))
            typ, r = c.recv()
            self.assertEqual(typ, CHANGES)
            cursor, more, snap = r.uv(), r.uv(), r.uv()
            r.str(), r.str(), r.uv()
            got += [r.entry() for _ in range(r.uv())]
            if not more:
                break
        leaked = [e for e in got if e["op"] != "X" and
                  (e["rid"] in (cid, ec) or "EAST" in (e.get("val") or ""))]
        self.assertEqual(leaked, [], "the east's records reached the south")

    def test_an_open_connection_follows_revocation_and_scope_changes(self):
        # A device keeps one connection open (a modified client sending a
        # request every minute, say).  Its user's scope changing, and its
        # device being revoked, reach that connection at its next request
        # (found by a reviewer: both were read once, at authentication,
        # and the device kept reading the old scope).
        from fswire import CHANGES, ERROR, HELLO, PULL, WELCOME, st, uv
        from test_protocol import Conn
        O = self.person("olga", "office")
        self.admin("user", "add", "nina", "--role", "rep", "--region", "north")
        en = self.enroll("nina", "EN_open")
        [(schema,)] = self.server.sql("SELECT max(version) FROM schema_version")
        c = Conn(self, self.server.port, en)
        self.addCleanup(c.close)
        c.send(HELLO, uv(1) + uv(schema) + st("scope-test/1") + uv(0))
        typ, r = c.recv()
        self.assertEqual(typ, WELCOME)

        def pull(cursor):
            c.send(PULL, uv(cursor) + uv(5000) + uv(0) + st(None) + st(None) + uv(0))
            typ, r = c.recv()
            if typ == ERROR:
                return typ, None, None, []
            cursor, more, snap = r.uv(), r.uv(), r.uv()
            r.str(), r.str(), r.uv()
            return typ, cursor, snap, [r.entry() for _ in range(r.uv())]

        typ, cursor, snap, got = pull(0)
        self.assertEqual((typ, snap), (CHANGES, 0))
        # her scope moves to the south: her next pull says "bootstrap again"
        self.admin("user", "set", "nina", "--region", "south")
        typ, _, snap, got = pull(cursor)
        self.assertEqual((typ, snap), (CHANGES, 2), "the scope change did not "
                         "reach the open connection")
        # revoked: the next request is refused
        self.admin("device", "revoke", e2eutil.read_device_id(en))
        n = O.add("customer", name="After the revocation", region="south")
        self.sync(O)
        typ, _, _, got = pull(cursor)
        self.assertEqual(typ, ERROR, "a revoked device went on pulling: %r" % got)

    def test_a_crafted_creation_cannot_leave_the_scope(self):
        # A record whose JSON names its link twice: the scope check and the
        # stored record must not read different ones.  And a creation of a
        # record the server holds already (taken field by field) must not
        # move it to a department outside the writer's scope.
        O = self.person("olga", "office")
        nina = self.person("nina", "rep", "north")
        n = O.add("customer", name="Northwind", region="north")
        self.sync(O)
        self.sync(nina)
        twice = "01900000-0000-7000-8000-00000000beef"
        self.tamper(nina, "I", twice, '{"name": "Twice", "region": "north", '
                                      '"created_at": "2026-01-01T00:00:00Z", '
                                      '"region": "south"}')
        self.tamper(nina, "I", n, json.dumps({"name": "Northwind", "region": "south",
                                              "city": "moved"}), hlc_ahead=1 << 31)
        self.sync(nina, refused=2)
        reasons = {r["record"]: r["reason"] for r in self.rejections(nina)}
        self.assertEqual(set(reasons), {twice, n}, reasons)
        self.assertIn("twice", reasons[twice].lower())
        self.assertIn("cannot move", reasons[n].lower())
        self.assertEqual(self.server.sql("SELECT count(*) FROM customer WHERE id = ?",
                                         (twice,)), [(0,)])
        self.assertEqual(self.server.sql("SELECT region, city FROM customer WHERE id = ?",
                                         (n,)), [("north", None)])
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_log WHERE rid = ?",
                                         (twice,)), [(0,)])
        # A crafted creation carrying the id of a record outside the scope
        # (well formed, malformed, or with a field name holding a NUL) is
        # refused without the server sending that record back; a NUL in a
        # field name is refused even for a new id (a rule reading the
        # field by its name would miss it); no fields at all is refused as
        # a record, not as a failed batch.
        south = O.add("customer", name="Southwind", region="south", city="Guangzhou")
        self.sync(O)
        nul = "01900000-0000-7000-8000-00000000f00d"
        empty = "01900000-0000-7000-8000-00000000e0e0"
        self.tamper(nina, "I", south, json.dumps({"name": "Mine", "region": "north"}),
                    hlc_ahead=1 << 31)
        self.tamper(nina, "I", south, '{"name": ', hlc_ahead=(1 << 31) + 1)
        self.tamper(nina, "I", nul, '{"name": "Nul", "region": "north", '
                                    '"created_at": "2026-01-01T00:00:00Z", '
                                    '"level\\u0000": "A"}', hlc_ahead=(1 << 31) + 2)
        self.tamper(nina, "I", empty, None, hlc_ahead=(1 << 31) + 3)
        self.sync(nina, refused=4)
        got = [r for r in self.rejections(nina) if r["record"] in (south, nul, empty)]
        self.assertEqual(len(got), 4, got)
        why = " ".join(r["reason"] for r in got)
        self.assertIn("NUL", why)
        self.assertNotIn("Southwind", nina.dump())
        self.assertNotIn("Guangzhou", nina.dump())
        self.assertEqual(self.server.sql("SELECT name, region FROM customer WHERE id = ?",
                                         (south,)), [("Southwind", "south")])
        self.assertEqual(self.server.sql("SELECT count(*) FROM customer WHERE id IN (?, ?)",
                                         (nul, empty)), [(0,)])
        # A delete of an id never created here (a whole-company writer)
        # leaves a tombstone alone; a later creation of that id is kept as
        # a 'record deleted' conflict, not taken as new.
        ghost = "01900000-0000-7000-8000-0000000060a7"
        mark = "SELECT v FROM fs_meta WHERE k = 'lone_tombstones'"
        self.assertEqual(self.server.sql(mark), [(0,)])
        self.tamper(O, "D", ghost, None)
        self.sync(O)
        # From now on a creation looks for a tombstone first (server/store.c,
        # clock_create): until then, it need not.
        self.assertEqual(self.server.sql(mark), [(1,)])
        self.tamper(nina, "I", ghost, '{"name": "Ghost", "region": "north", '
                                      '"created_at": "2026-01-01T00:00:00Z"}',
                    hlc_ahead=(1 << 31) + 4)
        self.sync(nina)
        self.assertEqual(self.server.sql("SELECT count(*) FROM customer WHERE id = ?",
                                         (ghost,)), [(0,)])
        self.assertEqual(self.server.sql("SELECT reason FROM fs_conflict WHERE rid = ?",
                                         (ghost,)), [("record deleted",)])
        # A server database from before the mark finds its lone tombstones
        # by itself.
        con = sqlite3.connect(os.path.join(self.server.dir, "server.db"), timeout=30)
        try:
            con.execute("DELETE FROM fs_meta WHERE k = 'lone_tombstones'")
            con.commit()
        finally:
            con.close()
        self.tamper(nina, "I", ghost, '{"name": "Ghost again", "region": "north", '
                                      '"created_at": "2026-01-01T00:00:00Z"}',
                    hlc_ahead=(1 << 31) + 5)
        self.sync(nina)
        self.assertEqual(self.server.sql("SELECT count(*) FROM customer WHERE id = ?",
                                         (ghost,)), [(0,)])
        self.assertEqual(self.server.sql(mark), [(1,)])
        # the same creation again within the department is still merged
        # field by field (a creation seen twice through another path)
        self.tamper(nina, "I", n, json.dumps({"name": "Northwind", "region": "north",
                                              "city": "kept"}), hlc_ahead=1 << 32)
        con = sqlite3.connect(nina.db, timeout=30)   # the replica agrees
        try:
            con.execute("UPDATE customer SET city = 'kept' WHERE id = ?", (n,))
            con.commit()
        finally:
            con.close()
        self.sync(nina)
        self.assertEqual(self.server.sql("SELECT region, city FROM customer WHERE id = ?",
                                         (n,)), [("north", "kept")])
        self.settle([O, nina])

    # ------------------------------------------------------------ conflicts

    def test_a_deleted_customer_takes_what_hangs_off_it(self):
        # Found by the fault harness (seed 752758): a rep adds a contact to
        # a customer the office deletes before it sees the contact.  The
        # contact must not stay behind, an orphan no scope can place: it
        # goes with its customer, everywhere, and is kept as a conflict.
        O = self.person("olga", "office")
        n = O.add("customer", name="Northwind", region="north")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        k = nina.add("contact", customer=n, name="Kim")
        q = nina.add("contact", customer=n, name="Quinn")
        self.sync(nina)
        O.ok("customer", "delete", n)            # olga has not seen them
        self.sync(O)
        self.settle([O, nina])
        for c in (O, nina):
            ids = {r["id"] for r in c.records()}
            self.assertFalse(ids & {n, k, q}, "%s still holds %r"
                             % (c.name, ids & {n, k, q}))
        lost = {(x["table"], x["record"], x["reason"]) for x in nina.conflicts()}
        self.assertEqual(lost, {("contact", k, "record deleted"),
                                ("contact", q, "record deleted")})
        self.assertScoped([O, nina])

    def test_conflicts_are_delivered_within_scope(self):
        O = self.person("olga", "office")
        n = O.add("customer", name="Northwind", region="north", city="n0")
        s = O.add("customer", name="Southbank", region="south", city="s0")
        h = O.add("customer", name="Headcorp", region="HQ", city="h0")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        maxi = self.person("max", "manager", "HQ")
        everyone = [O, nina, sam, maxi]
        for c in (nina, sam, maxi):
            self.sync(c)
        nina.edit("customer", n, city="n-nina")
        tick()
        maxi.edit("customer", n, city="n-max")       # later: wins
        sam.edit("customer", s, city="s-sam")
        tick()
        O.edit("customer", s, city="s-olga")         # later: wins
        maxi.edit("customer", h, city="h-max")
        tick()
        O.edit("customer", h, city="h-olga")         # later: wins
        for c in everyone:
            self.sync(c)
        self.settle(everyone)
        rows = self.server.sql("SELECT id, rid FROM fs_conflict ORDER BY id")
        self.assertEqual(sorted(r[1] for r in rows), sorted([n, s, h]),
                         self.msg("want one conflict per customer"))
        cid = {rid: i for i, rid in rows}

        def listed(c):
            return sorted((x["id"], x["record"]) for x in c.conflicts(all=True))
        self.assertEqual(listed(nina), [(cid[n], n)])
        self.assertEqual(listed(sam), [(cid[s], s)])
        self.assertEqual(listed(maxi), sorted([(cid[n], n), (cid[s], s), (cid[h], h)]))
        self.assertEqual(listed(O), sorted([(cid[n], n), (cid[s], s), (cid[h], h)]))
        [x] = nina.conflicts(all=True)
        self.assertEqual((x["winner_value"], x["winner_author"], x["loser_value"],
                          x["loser_author"]), ("n-max", "max", "n-nina", "nina"))
        # a new device of the south bootstraps with the south's conflict only
        sam2 = self.device("sam", "sam2")
        self.sync(sam2)
        self.assertEqual(listed(sam2), [(cid[s], s)])
        self.assertEqual(sam2.ok("conflicts", "--all", "--json"),
                         sam.ok("conflicts", "--all", "--json"))
        self.assertScoped([sam2])

    def test_conflicts_follow_a_moved_customer(self):
        # A conflict on a northern customer that then moves south: a south
        # device that synced before the move and one that bootstraps after
        # it list the same conflicts (the same scope, the same list), and
        # that list has it.
        O = self.person("olga", "office")
        n = O.add("customer", name="Northwind", region="north", city="n0")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        self.sync(nina)
        self.sync(sam)
        nina.edit("customer", n, city="n-nina")
        tick()
        O.edit("customer", n, city="n-olga")
        self.sync(nina)
        self.sync(O)
        [(conf,)] = self.server.sql("SELECT id FROM fs_conflict")
        self.sync(sam)
        self.assertEqual(sam.conflicts(all=True), [])
        O.edit("customer", n, region="south")
        self.sync(O)
        self.settle([O, nina, sam])
        sam2 = self.device("sam", "sam2")
        self.sync(sam2)
        self.assertScoped([sam2])
        self.assertEqual(sam.ok("conflicts", "--all", "--json"),
                         sam2.ok("conflicts", "--all", "--json"))
        # and the conflict is about a southern customer now: the south,
        # who may resolve it, lists it (an interpretation of "conflicts are
        # delivered within scope": the record's scope now, not then)
        self.assertEqual([x["id"] for x in sam.conflicts(all=True)], [conf],
                         "the south does not list the moved customer's open conflict")

    # ------------------------------------------------------------ roles

    def test_the_role_comes_from_the_server(self):
        O = self.person("olga", "office")
        n = O.add("customer", name="Northwind", region="north", credit_limit="100")
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        # the device claims to act for the office user, as the office
        nina.ok("init", "--user", "olga")
        con = sqlite3.connect(nina.db)
        con.execute("INSERT OR REPLACE INTO fs_meta(k, v) VALUES ('role', 'office')")
        con.commit()
        con.close()
        nina.edit("customer", n, credit_limit="900", city="Claimed")
        self.sync(nina, refused=1)
        [r] = self.rejections(nina)
        self.assertEqual(r["field"], "credit_limit")
        self.assertIn(WHY_LIMIT, r["reason"])
        self.assertEqual(self.server.sql("SELECT credit_limit, city FROM customer "
                                         "WHERE id = ?", (n,)), [(10000, "Claimed")])
        self.assertEqual(self.server.sql("SELECT DISTINCT author FROM fs_log WHERE "
                                         "device = ?", (nina.device,)), [("nina",)])
        # promoted on the server: the next push may
        self.admin("user", "set", "nina", "--role", "manager")
        nina.edit("customer", n, credit_limit="900")
        self.sync(nina)
        self.assertEqual(self.server.sql("SELECT credit_limit FROM customer WHERE id = ?",
                                         (n,)), [(90000,)])
        # and demoted again: may not
        self.admin("user", "set", "nina", "--role", "rep")
        nina.edit("customer", n, credit_limit="950")
        self.sync(nina, refused=1)
        self.assertIn(WHY_LIMIT, self.rejections(nina)[-1]["reason"])
        self.assertEqual(self.server.sql("SELECT credit_limit FROM customer WHERE id = ?",
                                         (n,)), [(90000,)])
        self.settle([O, nina])

    def test_a_modified_client_cannot_pull_outside_its_scope(self):
        # A device speaking the protocol directly (tests/e2e/fswire.py):
        # neither a snapshot nor a pull of the log from its very start
        # carries anything of another department, conflicts included.
        from fswire import CHANGES, ERROR, HELLO, PULL, WELCOME, st, uv
        from test_protocol import Conn
        O = self.person("olga", "office")
        ref, cid, fam = self.populate(O)
        self.sync(O)
        O2 = self.device("olga", "olga2")
        self.sync(O2)
        O.edit("customer", cid["S"], city="s-one")
        O.edit("customer", cid["N"], city="n-one")
        tick()
        O2.edit("customer", cid["S"], city="s-two")
        O2.edit("customer", cid["N"], city="n-two")
        self.sync(O)
        self.sync(O2)
        self.assertEqual(len(self.server.sql("SELECT id FROM fs_conflict")), 2)
        self.admin("user", "add", "nina", "--role", "rep", "--region", "north")
        en = self.enroll("nina", "EN_raw")
        [(schema,)] = self.server.sql("SELECT max(version) FROM schema_version")
        hidden = {i for k in ("S", "H", "X", "M") for _, i in fam[k]}
        shown = {i for k in ("N", "NA") for _, i in fam[k]}

        def pull_all(snapshot):
            c = Conn(self, self.server.port, en)
            self.addCleanup(c.close)
            c.send(HELLO, uv(1) + uv(schema) + st("scope-test/1") + uv(0))
            typ, r = c.recv()
            self.assertEqual(typ, WELCOME)
            self.assertEqual((r.uv(), r.uv(), r.str(), r.str()), (1, schema, "nina", "rep"))
            got, cursor, pos = [], 0, (None, None, 0)
            for _ in range(100):
                c.send(PULL, uv(cursor) + uv(5000) + uv(snapshot) + st(pos[0])
                       + st(pos[1]) + uv(pos[2]))
                typ, r = c.recv()
                if typ == ERROR:
                    return None
                self.assertEqual(typ, CHANGES)
                cursor, more, snap = r.uv(), r.uv(), r.uv()
                pos = (r.str(), r.str(), r.uv())
                got += [r.entry() for _ in range(r.uv())]
                if not more:
                    if snapshot and snap:
                        snapshot, cursor = 0, pos[2]
                        pos = (None, None, 0)
                        continue
                    return got
            self.fail("the pulls never ended")

        for snapshot in (1, 0):
            got = pull_all(snapshot)
            if got is None:
                self.assertEqual(snapshot, 0, "the server refused a snapshot")
                continue        # refusing a log pull from 0 is fine too
            rids = set()
            for e in got:
                rids.add(e["rid"])
                if e["op"] == "C":
                    rids.add(json.loads(e["val"]).get("record"))
                if e["op"] in ("I", "U") and e["tbl"] == "customer" and e["val"]:
                    try:
                        v = json.loads(e["val"])
                    except ValueError:
                        continue
                    if isinstance(v, dict) and "region" in v:
                        self.assertIn(v["region"], ("north", "north-a"), e)
            leaked = sorted(rids & hidden)
            self.assertEqual(leaked, [], "snapshot=%d delivered records of other "
                             "departments" % snapshot)
            self.assertLessEqual(shown, rids, "snapshot=%d missed in-scope records"
                                 % snapshot)
            confs = [json.loads(e["val"])["record"] for e in got if e["op"] == "C"]
            self.assertIn(cid["N"], confs)
            self.assertNotIn(cid["S"], confs)

    # ------------------------------------------------------------ scope changes

    def test_widening_a_users_scope_delivers_what_became_visible(self):
        O = self.person("olga", "office")
        ref, cid, fam = self.populate(O)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        self.sync(nina)
        self.assertHolds(nina, ref | fam["N"] | fam["NA"])
        self.admin("user", "set", "nina", "--region", "north,south")
        self.sync(nina)
        self.assertHolds(nina, ref | fam["N"] | fam["NA"] | fam["S"],
                         "after user set --region north,south")
        self.assertScoped([nina])
        # later changes in the newly visible department arrive as usual
        O.edit("customer", cid["S"], city="Southtown")
        self.sync(O)
        self.sync(nina)
        self.assertEqual(by_id(nina.dump())[cid["S"]].get("city"), "Southtown")
        self.admin("user", "set", "nina", "--region", "*")
        self.sync(nina)
        self.assertHolds(nina, set().union(ref, *fam.values()), "after --region *")
        self.settle([O, nina])

    def test_department_moved_in_the_tree(self):
        O = self.person("olga", "office")
        ref, cid, fam = self.populate(O)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        for c in (nina, sam):
            self.sync(c)
        self.admin("dept", "set", "north-a", "--parent", "south")
        # the server's view per user follows the tree at once
        self.assertEqual(keys(self.user_dump("sam")), ref | fam["S"] | fam["NA"])
        self.assertEqual(keys(self.user_dump("nina")), ref | fam["N"])
        # and so does a new device's first sync
        sam2 = self.device("sam", "sam2")
        self.sync(sam2)
        self.assertHolds(sam2, ref | fam["S"] | fam["NA"])
        self.settle([O, sam2])

    def test_department_moved_in_the_tree_reaches_synced_replicas(self):
        # The tree changes under replicas that already synced: their next
        # syncs follow it (the branch's customers leave north, reach south).
        O = self.person("olga", "office")
        ref, cid, fam = self.populate(O)
        self.sync(O)
        nina = self.person("nina", "rep", "north")
        sam = self.person("sam", "rep", "south")
        for c in (nina, sam):
            self.sync(c)
        self.admin("dept", "set", "north-a", "--parent", "south")
        self.settle([O, nina, sam])
        self.assertHolds(nina, ref | fam["N"])
        self.assertHolds(sam, ref | fam["S"] | fam["NA"])


if __name__ == "__main__":
    e2eutil.main()
