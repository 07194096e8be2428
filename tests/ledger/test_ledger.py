#!/usr/bin/env python3
"""The ledger (docs/ledger.md) end to end: reps sync through a real
fieldsyncd; the ledger is then read back with `fieldsync-admin history`,
`verify`, `restore` and with stock git.  The server is stopped with SIGTERM
(which writes everything captured) before the ledger is read, so no test
waits on timing.  Expected values come from what the test typed."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2eutil  # noqa: E402

GIT = shutil.which("git")


def shard_path(table, rid):
    return "%s/%s/%s.json" % (table, rid[-2:], rid)


class LedgerTest(e2eutil.E2ECase):

    def setUp(self):
        super().setUp()
        self.start_server()

    @property
    def ledger(self):
        return os.path.join(self.srvdir, "ledger.git")

    def restart(self, *extra):
        """Stops the server if it runs and starts it again on the same port
        (the replicas know that address)."""
        port = self.server.port
        if self.server.alive():
            self.server.stop()
        s = e2eutil.Server(self.srvdir, os.path.join(
            self.tmp, "fieldsyncd-%d.log" % len(self.servers)))
        self.servers.append(s)
        self.addCleanup(s.stop)
        s.start(*extra, listen="127.0.0.1:%d" % port)
        self.server = s

    def stop(self):
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.msg("fieldsyncd did not stop cleanly"))

    def admin_rc(self, *args, directory=None):
        cmd = [e2eutil.ADMIN]
        if directory is not False:
            cmd += ["--dir", directory or self.srvdir]
        rc, out, err = e2eutil.run(cmd + list(args), cwd=self.tmp)
        rep = e2eutil.sanitizer_report(err)
        if rep:
            raise AssertionError("sanitizer report from fieldsync-admin %s:\n%s"
                                 % (" ".join(args), rep))
        return rc, out, err

    def verify_clean(self, directory=None):
        rc, out, err = self.admin_rc("verify", directory=directory)
        self.assertEqual(rc, 0, self.msg("verify found differences:\n%s%s"
                                         % (out, err)))
        self.assertIn("agree", out)

    def commits(self, ledger=None):
        """(id, author, message) of every commit, newest first, read with
        the ledger's own files: refs/heads/main, then stock git if present."""
        self.assertTrue(GIT, "git is needed to read the ledger independently")
        out = subprocess.run(
            [GIT, "--git-dir", ledger or self.ledger, "log",
             "--format=%H%x00%an%x00%B%x01", "main"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
            env=dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=self.tmp)).stdout
        rows = []
        for chunk in out.decode().split("\x01"):
            chunk = chunk.strip("\n")
            if not chunk:
                continue
            h, a, m = chunk.split("\x00", 2)
            rows.append((h, a, m))
        return rows

    def seq_ranges(self, ledger=None):
        out = []
        for _, _, m in self.commits(ledger):
            mm = re.findall(r"^Fieldsync-Seq: (\d+)\.\.(\d+)$", m, re.M)
            self.assertTrue(mm, "commit without a Fieldsync-Seq trailer:\n" + m)
            out.append((int(mm[-1][0]), int(mm[-1][1])))
        return list(reversed(out))

    def assertNoGapNoDuplicate(self):
        ranges = self.seq_ranges()
        last = 0
        for lo, hi in ranges:
            self.assertEqual(lo, last + 1, "ledger ranges %r: gap or overlap"
                             % ranges)
            last = hi
        end = self.server_log_end()
        self.assertEqual(last, end, "ledger ends at %d, the log at %d"
                         % (last, end))

    def server_log_end(self):
        s = e2eutil.Server(self.srvdir, os.devnull)
        return s.sql("SELECT coalesce(max(seq), 0) FROM fs_log")[0][0]

    # ------------------------------------------------------------ tests

    def test_organisation_is_in_the_ledger_and_restored(self):
        self.admin("dept", "add", "hq", "--name", "Head office")
        self.admin("dept", "add", "north", "--name", "North", "--parent", "hq")
        alice, = self.make_reps(["alice"], role="rep")
        self.add_rep("nina", region="north")
        self.add_rep("olga", region=None, role="office")
        alice.add("customer", name="Firm", region="north")
        alice.sync()                 # the first commit holds the organisation
        self.admin("user", "set", "nina", "--region", "north,hq")
        alice.add("customer", name="Firm 2")
        alice.sync()                 # the next push carries the change
        self.stop()
        users = json.loads(subprocess.run(
            [GIT, "--git-dir", self.ledger, "show", "main:org/users.json"],
            stdout=subprocess.PIPE, check=True).stdout)
        self.assertEqual({u["name"]: (u["role"], u["scope"]) for u in users},
                         {"alice": ("rep", ["*"]), "nina": ("rep", ["hq", "north"]),
                          "olga": ("office", ["*"])})
        log = subprocess.run(
            [GIT, "--git-dir", self.ledger, "log", "--format=%an", "main", "--",
             "org/users.json"], stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("fieldsync-admin", log.split())   # who changed access
        self.verify_clean()
        new = os.path.join(self.tmp, "RESTORED")
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger, "--to",
                                     new, directory=False)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 departments, 3 users", out)
        for what in (("user", "list", "--json"), ("dept", "list", "--json")):
            self.assertEqual(self.admin_in(new, *what), self.admin(*what))
        self.assertEqual(self.admin_in(new, "dump", "--user", "nina"),
                         self.admin("dump", "--user", "nina"))
        self.verify_clean(directory=new)

    # ------------------------------------------------------ compaction

    def log_rows(self):
        return self.server_sql("SELECT count(*) FROM fs_log")[0][0]

    def server_sql(self, q, params=()):
        return e2eutil.Server(self.srvdir, os.devnull).sql(q, params)

    def test_compaction_purges_what_the_ledger_holds(self):
        alice, bob = self.make_reps(["alice", "bob"])
        ids = [alice.add("customer", name="Firm %d" % i, city="c0")
               for i in range(10)]
        alice.sync()
        for v in range(1, 4):        # a batch (a ledger commit) per round
            for cid in ids:
                alice.edit("customer", cid, city="c%d" % v)
            alice.sync()
        bob.sync()
        # bob links a customer to one alice deletes meanwhile: a link to a
        # deleted record, merged as ever (head office held it)
        bob.edit("customer", ids[8], parent_customer=ids[0])
        for cid in ids[:3]:
            alice.ok("customer", "delete", cid)
        alice.edit("customer", ids[9], city="last")   # the entry that stays
        alice.sync()
        bob.sync()
        alice.sync()
        bob.sync()                   # both devices have pulled everything
        self.stop()                  # the ledger has written everything
        before = self.server_dump()
        end = self.server_log_end()
        self.assertGreater(self.log_rows(), 40)

        out = self.admin("compact", "--older-than", "0", "--dry-run")
        self.assertIn("would purge", out)
        self.assertEqual(self.log_rows(), end, "a dry run changed the log")
        out = self.admin("compact", "--older-than", "0")
        self.assertIn("purged: log entries below seq %d" % end, out)
        # The last entry stays (positions are never reused); tombstones go.
        self.assertEqual(self.server_sql("SELECT seq FROM fs_log"), [(end,)])
        self.assertEqual(self.server_sql(
            "SELECT count(*) FROM fs_clock WHERE col = '*'"), [(0,)])
        for cid in ids[:3]:
            self.assertEqual(self.server_sql(
                "SELECT count(*) FROM fs_clock WHERE rid = ?", (cid,)), [(0,)])
        self.assertEqual(self.server_dump(), before, "compaction changed data")
        self.verify_clean()
        hist = json.loads(self.admin("history", "customer", ids[5], "--json"))
        self.assertEqual([v["action"] for v in hist],
                         ["updated"] * 3 + ["created"], hist)

        self.assertEqual(len(self.server_sql(
            "SELECT v FROM fs_meta WHERE k = 'purged_hlc' AND v > 0")), 1)

        self.restart()
        alice.edit("customer", ids[4], city="after")
        # A copy carries the link to the customer whose tombstone is gone:
        # head office may have purged it (its id is older than the latest
        # tombstone purged), so it takes the link.
        copy = alice.ok("customer", "copy", ids[8], "--json")
        alice.sync()
        self.assertIn(ids[0], self.server_sql(
            "SELECT parent_customer FROM customer WHERE id = ?",
            (json.loads(copy)["id"],))[0])
        self.assertGreater(self.server_log_end(), end)
        bob.sync()
        carol = self.new_client("C", "carol")
        carol.sync()                 # a new device bootstraps as before
        self.assertConverged([alice, bob, carol])

    def test_compaction_waits_for_active_devices_unless_forced(self):
        alice, bob = self.make_reps(["alice", "bob"])
        cid = alice.add("customer", name="Firm", city="c0")
        alice.sync()
        bob.sync()                   # bob has pulled the creation
        for v in range(1, 6):
            alice.edit("customer", cid, city="c%d" % v)
            alice.sync()
        self.stop()
        out = self.admin("compact", "--older-than", "0")
        self.assertIn("(%s) has pulled up to" % "bob", out)
        held = self.log_rows()
        self.assertGreaterEqual(held, 5, "bob's unpulled entries were purged")
        self.restart()
        rep = bob.sync()             # the log still serves him
        self.assertFalse(rep["snapshot"], rep)
        self.assertConverged([alice, bob])

        # bob goes quiet with an unsynced edit; the admin forces compaction
        other = alice.add("customer", name="Other", city="x")
        alice.sync()
        bob.edit("customer", cid, phone="+47 555")
        alice.ok("customer", "delete", other)
        alice.edit("customer", cid, city="final")
        alice.sync()
        self.stop()
        out = self.admin("compact", "--older-than", "0", "--force")
        self.assertEqual(self.log_rows(), 1, out)
        self.restart()
        rep = bob.sync()             # cursor below the horizon: bootstrap
        self.assertTrue(rep["snapshot"], rep)
        got = {r["id"]: r for r in bob.records("customer")}
        self.assertNotIn(other, got, "a record deleted meanwhile came back")
        self.assertEqual(got[cid]["city"], "final")
        self.assertEqual(got[cid]["phone"], "+47 555", "bob's edit was lost")
        alice.sync()
        self.assertConverged([alice, bob])

    def test_compaction_refuses_without_a_ledger(self):
        alice, = self.make_reps(["alice"])
        alice.add("customer", name="Firm")
        alice.sync()
        self.stop()
        shutil.rmtree(self.ledger)
        rows = self.log_rows()
        rc, out, err = self.admin_rc("compact", "--older-than", "0")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no ledger", err)
        self.assertEqual(self.log_rows(), rows)
        rc, out, err = self.admin_rc("compact", "--older-than", "x")
        self.assertEqual(rc, 2, out + err)

    def test_history_shows_every_version_with_its_author(self):
        # Managers: a credit limit is theirs to set (schema/004_scope.sql).
        alice, bob = self.make_reps(["alice", "bob"], role="manager")
        cid = alice.add("customer", name="Hangzhou Pump Works", city="Hangzhou",
                        credit_limit=20000)
        alice.sync()
        bob.sync()
        bob.edit("customer", cid, credit_limit=50000)
        bob.sync()
        alice.sync()
        alice.edit("customer", cid, city="Shanghai", phone="+86 21 5555")
        alice.sync()
        other = bob.add("customer", name="Ningbo Valves")   # not in cid's history
        bob.sync()
        self.stop()
        # every rep's commit names its pushed batch (the client's batch id,
        # REPLICA-FIRST-LAST), in the body and in a trailer
        for who in ("alice", "bob"):
            msgs = [m for _, a, m in self.commits() if a == who]
            self.assertTrue(msgs)
            for m in msgs:
                b = re.search(r"(?m)^Fieldsync-Batch: (\S+-\d+-\d+)$", m)
                self.assertTrue(b, m)
                self.assertIn("Batch: %s\n" % b.group(1), m)

        hist = json.loads(self.admin("history", "customer", cid, "--json"))
        self.assertEqual([v["action"] for v in hist],
                         ["updated", "updated", "created"], hist)
        self.assertEqual([v["author"] for v in hist], ["alice", "bob", "alice"])
        self.assertEqual([v["device"] for v in hist],
                         [alice.device, bob.device, alice.device])
        ch = {c["field"]: (c["old"], c["new"]) for c in hist[0]["changes"]}
        self.assertEqual(ch, {"city": ("Hangzhou", "Shanghai"),
                              "phone": (None, "+86 21 5555")})
        ch = {c["field"]: (c["old"], c["new"]) for c in hist[1]["changes"]}
        self.assertEqual(list(ch), ["credit_limit"])
        self.assertEqual([float(v) for v in ch["credit_limit"]], [20000, 50000])
        created = {c["field"]: c["new"] for c in hist[2]["changes"]}
        self.assertEqual(created["name"], "Hangzhou Pump Works")
        self.assertEqual(created["city"], "Hangzhou")
        self.assertEqual(float(created["credit_limit"]), 20000)
        for v in hist:
            self.assertRegex(v["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        text = self.admin("history", "customer", cid)
        self.assertIn("credit_limit: 20000.00 -> 50000.00", text)
        self.assertIn("updated by bob on device " + bob.device, text)
        hist2 = json.loads(self.admin("history", "customer", other, "--json"))
        self.assertEqual([(v["action"], v["author"]) for v in hist2],
                         [("created", "bob")])
        self.verify_clean()
        self.assertNoGapNoDuplicate()

        # Stock git: clone, then the record's log by path.
        self.assertTrue(GIT, "git is needed for the stock-git check")
        clone = os.path.join(self.tmp, "audit")
        env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=self.tmp)
        subprocess.run([GIT, "clone", "-q", self.ledger, clone], check=True,
                       env=env)
        out = subprocess.run([GIT, "-C", clone, "log", "--format=%an",
                              "--", shard_path("customer", cid)],
                             stdout=subprocess.PIPE, check=True, env=env).stdout
        self.assertEqual(out.decode().split(), ["alice", "bob", "alice"])
        with open(os.path.join(clone, shard_path("customer", cid))) as f:
            doc = json.load(f)
        self.assertEqual((doc["city"], doc["id"], doc["table"]),
                         ("Shanghai", cid, "customer"))
        # the file is exactly the server's dump line
        line = [l for l in self.server_dump().splitlines() if cid in l][0]
        with open(os.path.join(clone, shard_path("customer", cid))) as f:
            self.assertEqual(f.read(), line)

    def test_delete_and_conflict_are_recorded(self):
        alice, bob = self.make_reps(["alice", "bob"], role="manager")
        cid = alice.add("customer", name="Suzhou Pipes", credit_limit=1000)
        alice.sync()
        bob.sync()
        bob.edit("customer", cid, credit_limit=2000)    # concurrent with
        alice.ok("customer", "delete", cid)             # the delete
        alice.sync()
        bob.sync()
        self.stop()
        hist = json.loads(self.admin("history", "customer", cid, "--json"))
        self.assertEqual([v["action"] for v in hist], ["deleted", "created"])
        self.assertEqual(hist[0]["author"], "alice")
        rows = e2eutil.Server(self.srvdir, os.devnull).sql(
            "SELECT id FROM fs_conflict")
        self.assertEqual(len(rows), 1)
        files = subprocess.run(
            [GIT, "--git-dir", self.ledger, "ls-tree", "-r", "--name-only",
             "main"], stdout=subprocess.PIPE, check=True).stdout.decode().split()
        self.assertIn("conflicts/%d.json" % rows[0][0], files)
        self.assertNotIn(shard_path("customer", cid), files)
        self.verify_clean()
        self.assertNoGapNoDuplicate()

    def test_kill_between_database_and_ledger_then_catch_up(self):
        alice, bob = self.make_reps(["alice", "bob"], role="manager")
        c1 = alice.add("customer", name="Before the crash")
        alice.sync()
        # The ledger writer now waits a minute before each commit: the
        # batch below is in the database (acknowledged) but not the ledger.
        self.restart("--ledger-delay", "60000")
        c2 = alice.add("customer", name="Acknowledged, not yet in the ledger")
        alice.edit("customer", c1, city="Wuxi")
        alice.sync()
        c3 = bob.add("customer", name="Bob's, also pending")
        bob.sync()
        self.server.kill()                              # kill -9
        rc, out, _ = self.admin_rc("verify")
        self.assertEqual(rc, 1, "verify should see the ledger behind:\n" + out)
        self.assertIn("high-water mark", out)
        self.assertIn(shard_path("customer", c2), out)
        self.restart()                                  # catches up
        self.stop()
        self.verify_clean()
        self.assertNoGapNoDuplicate()
        for rid, who in ((c2, "alice"), (c3, "bob")):
            hist = json.loads(self.admin("history", "customer", rid, "--json"))
            self.assertEqual(len(hist), 1, hist)
            self.assertEqual(hist[0]["action"], "created")
            self.assertIn(hist[0]["author"], (who, "fieldsyncd"))
        hist = json.loads(self.admin("history", "customer", c1, "--json"))
        self.assertEqual([v["action"] for v in hist], ["updated", "created"])
        # and restarting again writes nothing twice
        self.restart()
        self.stop()
        self.assertNoGapNoDuplicate()

    def test_restore_whole_and_point_in_time(self):
        alice, bob = self.make_reps(["alice", "bob"], role="manager")
        ids = [alice.add("customer", name="Customer %d" % i,
                         credit_limit=1000 * i) for i in range(5)]
        alice.add("product", sku="VALVE-50", name="Ball valve DN50",
                  list_price="86.50", tax_rate=13)
        alice.sync()
        bob.sync()
        bob.edit("customer", ids[0], credit_limit=99000)
        bob.ok("customer", "delete", ids[1])
        bob.sync()
        self.stop()
        mid_dump = self.server_dump()
        mid_commit = self.commits()[0][0]
        self.verify_clean()
        self.restart()
        alice.sync()
        alice.edit("customer", ids[2], city="Changzhou")
        alice.add("customer", name="Late customer")
        alice.sync()
        self.stop()
        final_dump = self.server_dump()
        self.assertNotEqual(mid_dump, final_dump)

        # The database is lost; the ledger alone rebuilds it.
        os.remove(os.path.join(self.srvdir, "server.db"))
        for ext in ("-wal", "-shm"):
            p = os.path.join(self.srvdir, "server.db" + ext)
            if os.path.exists(p):
                os.remove(p)
        new = os.path.join(self.tmp, "RESTORED")
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger,
                                     "--to", new, directory=False)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.admin_in(new, "dump"), final_dump)
        self.verify_clean(new)

        old = os.path.join(self.tmp, "AS_OF")
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger,
                                     "--to", old, "--as-of", mid_commit,
                                     directory=False)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.admin_in(old, "dump"), mid_dump)
        self.verify_clean(old)

        # As of a date: after every commit, the last state; before the
        # first, nothing to restore.
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger,
                                     "--to", os.path.join(self.tmp, "FUTURE"),
                                     "--as-of", "2999-12-31", directory=False)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.admin_in(os.path.join(self.tmp, "FUTURE"),
                                       "dump"), final_dump)
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger,
                                     "--to", os.path.join(self.tmp, "PAST"),
                                     "--as-of", "2000-01-01T00:00:00Z",
                                     directory=False)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no commit as of 2000-01-01", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "PAST")))

        # The restored directory serves: a newly enrolled device gets it all
        # and its edits land in the restored ledger.
        srv = self.start_server(directory=new, name="restored")
        self.add_rep("carol", directory=new)
        en = self.enroll("carol", "EN_carol", directory=new)
        carol = e2eutil.Client(self, "carol", "carol", en)
        carol.init(srv.addr)
        carol.sync()
        self.assertEqual(carol.dump(), final_dump)
        carol.edit("customer", ids[3], city="Yangzhou")
        carol.sync()
        srv.stop()
        hist = json.loads(self.admin_in(new, "history", "customer", ids[3],
                                        "--json"))
        self.assertEqual(hist[0]["author"], "carol")
        self.verify_clean(new)

    def test_big_batch_is_written_as_a_pack(self):
        # 600 records in one batch: the ledger builds the commit in memory
        # and writes one pack (server/ledger_pack.c); stock git must read it.
        alice, bob = self.make_reps(["alice", "bob"], role="manager")
        csv = os.path.join(self.tmp, "c.csv")
        with open(csv, "w") as f:
            f.write("name,city,credit_limit\n")
            for i in range(600):
                f.write("Importer %d,City %d,%d.50\n" % (i, i % 7, 1000 + i))
        alice.ok("customer", "import", csv)
        alice.sync()
        bob.sync()
        some = bob.records("customer")[123]["id"]
        bob.edit("customer", some, city="Hefei")
        bob.sync()
        self.stop()
        packs = [n for n in os.listdir(os.path.join(self.ledger, "objects",
                                                    "pack"))
                 if n.endswith(".pack")]
        self.assertTrue(packs, "no pack written for a 600-record commit")
        self.assertTrue(GIT, "git is needed for the stock-git check")
        fsck = subprocess.run([GIT, "--git-dir", self.ledger, "fsck",
                               "--strict"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        self.assertEqual(fsck.returncode, 0, fsck.stdout.decode())
        self.verify_clean()
        self.assertNoGapNoDuplicate()
        hist = json.loads(self.admin("history", "customer", some, "--json"))
        self.assertEqual([(v["action"], v["author"]) for v in hist],
                         [("updated", "bob"), ("created", "alice")])
        final = self.server_dump()
        self.assertEqual(len(final.splitlines()), 600)
        new = os.path.join(self.tmp, "RESTORED")
        rc, out, err = self.admin_rc("restore", "--ledger", self.ledger,
                                     "--to", new, directory=False)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.admin_in(new, "dump"), final)
        self.verify_clean(new)

    def test_missing_or_corrupt_ledger_refuses_to_start(self):
        alice, = self.make_reps(["alice"])
        alice.add("customer", name="Anything")
        alice.sync()
        self.stop()

        def start_fails(*extra):
            rc, out, err = e2eutil.run([e2eutil.FSD, "--dir", self.srvdir,
                                        "--listen", "127.0.0.1:0"] + list(extra),
                                       timeout=60)
            self.assertNotEqual(rc, 0, "fieldsyncd started: %s" % out)
            self.assertNotIn("listening", out)
            return err

        moved = self.ledger + ".away"
        os.rename(self.ledger, moved)
        err = start_fails()
        self.assertRegex(err, r"ledger .*ledger\.git is missing")
        self.assertIn("refusing to start", err)
        # --no-ledger is the explicit way to run without it
        self.restart("--no-ledger")
        self.stop()
        os.rename(moved, self.ledger)

        ref = os.path.join(self.ledger, "refs", "heads", "main")
        with open(ref) as f:
            good = f.read()
        with open(ref, "w") as f:
            f.write("0123456789012345678901234567890123456789\n")
        err = start_fails()
        self.assertIn("corrupt", err)
        with open(ref, "w") as f:
            f.write("not a ref at all\n")
        err = start_fails()
        self.assertIn("refusing to start", err)
        with open(ref, "w") as f:
            f.write(good)
        with open(os.path.join(self.ledger, "HEAD"), "w") as f:
            f.write("garbage")
        err = start_fails()
        self.assertIn("ledger", err)

    def test_one_server_per_directory_and_stale_git_locks(self):
        # A second fieldsyncd on the same directory is refused; a ref lock
        # left by a server killed mid-commit (found by tests/fault) does
        # not keep the next one from starting.
        alice, = self.make_reps(["alice"])
        alice.add("customer", name="Locked")
        alice.sync()
        rc, out, err = e2eutil.run([e2eutil.FSD, "--dir", self.srvdir,
                                    "--listen", "127.0.0.1:0"], timeout=60)
        self.assertNotEqual(rc, 0, "a second server started: %s" % out)
        self.assertIn("another fieldsyncd", err)
        self.stop()
        lock = os.path.join(self.ledger, "refs", "heads", "main.lock")
        with open(lock, "w") as f:
            f.write("0" * 40 + "\n")
        self.restart()
        self.assertFalse(os.path.exists(lock))
        alice.edit("customer", alice.records("customer")[0]["id"], city="After")
        alice.sync()
        # The ledger is written after the sync's commit, by its own
        # thread: stopping the server waits for it (verify right after the
        # sync raced with it and failed now and then under ctest -j2).
        self.stop()
        self.verify_clean()

    def test_new_directory_gets_a_ledger(self):
        d = os.path.join(self.tmp, "FRESH")
        self.admin_in(d, "init")
        shutil.rmtree(os.path.join(d, "ledger.git"))
        s = self.start_server(directory=d, name="fresh")
        s.stop()
        self.assertTrue(os.path.isdir(os.path.join(d, "ledger.git", "objects")))
        self.verify_clean(d)


if __name__ == "__main__":
    e2eutil.main()
