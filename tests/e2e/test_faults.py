#!/usr/bin/env python3
"""End-to-end faults: connections cut in the middle of a push, an ACK or a
pull (a loopback proxy that forwards N bytes one way, then cuts), a
replayed batch, an unreachable server, and a server stopped with SIGTERM
during a large push.  After every fault a retry through a healthy path must
leave nothing lost, nothing duplicated, and the client's dump equal to the
server's (docs/protocol.md: Push, Pull)."""
import json
import os
import re
import subprocess
import resource
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2eutil  # noqa: E402


def customers(dump):
    return [r for r in (json.loads(l) for l in dump.splitlines())
            if r["table"] == "customer"]


class FaultTest(e2eutil.E2ECase):

    def setUp(self):
        super().setUp()
        self.start_server()
        self.proxy = self.start_proxy()

    # ------------------------------------------------------------ helpers

    def check_client_vs_server(self, c, names, what):
        """c has nothing pending, its dump equals the server's, and the
        customers are exactly `names` (each once)."""
        srv = self.server_dump()
        self.assertEqual(c.pending(), 0, self.msg("%s: changes still pending" % what))
        if c.dump() != srv:
            self.fail(self.msg("%s: dump of %s differs from the server's:\n%s"
                               % (what, c.name, e2eutil._diff(srv, c.dump(), "server", c.name))))
        got = sorted(r["name"] for r in customers(srv))
        self.assertEqual(len(got), len(set(got)),
                         self.msg("%s: duplicated customers on the server" % what))
        self.assertEqual(got, sorted(names), self.msg("%s: customers lost or extra" % what))
        self.assertNoDuplicateRecords(srv)
        return srv

    def failed_sync(self, c, what):
        """A sync through a cut path: it may fail (non-zero, a message last
        on stderr); it must not crash.  Returns True if it failed."""
        rc, out, err = c.try_sync(timeout=120)
        if rc != 0:
            last = err.strip().splitlines()[-1] if err.strip() else ""
            self.assertTrue(last.startswith("fieldsync:"),
                            "%s: failed sync ended without a 'fieldsync:' message: %r"
                            % (what, err[-500:]))
        return rc != 0

    # ------------------------------------------------------------ tests

    def test_cut_sweep_push_ack_pull(self):
        A = self.new_client("A", "alice", server_addr=self.proxy.addr)
        B = self.new_client("B", "bob")
        base = A.add("customer", name="base", city="c-init")
        names = ["base"]
        b_rec = B.add("customer", name="b-side", city="b0")
        names.append("b-side")
        A.sync()
        B.sync()
        expect_city = {}

        def round_edits(tag):
            for i in range(10):
                n = "%s-%02d" % (tag, i)
                # random text: the push must not compress to nothing
                A.add("customer", name=n, city=os.urandom(12).hex(),
                      notes=os.urandom(40).hex())
                names.append(n)
            A.edit("customer", base, city=tag)
            expect_city[base] = tag
            # something for A to pull, on another record
            B.edit("customer", b_rec, city=tag)
            B.sync()

        # A frame goes out as one TLS application record (two when its
        # payload passes 16 KiB): c2s HELLO(1) PUSH(2) PULL(3) BYE(4); s2c
        # WELCOME(1) ACK(2) CHANGES(3).  A (K, F) cut forwards the records
        # before the K-th and the fraction F of it.  Byte counts cut the
        # handshake.
        round_edits("cal")
        A.sync()
        cal = self.proxy.last()
        self.assertIsNone(cal["cut"])
        self.assertGreaterEqual(len(cal["app_c2s"]), 3, "calibration: %r" % cal)
        self.assertGreaterEqual(len(cal["app_s2c"]), 3, "calibration: %r" % cal)
        cuts = [("c2s", 1), ("c2s", 200), ("c2s", (1, 0.5)), ("c2s", (2, 0.0)),
                ("c2s", (2, 0.5)), ("c2s", (2, 0.97)), ("c2s", (3, 0.0)),
                ("c2s", (3, 0.5)), ("c2s", (4, 0.5)),
                ("s2c", 100), ("s2c", (1, 0.5)), ("s2c", (2, 0.0)), ("s2c", (2, 0.5)),
                ("s2c", (2, 0.9)), ("s2c", (3, 0.0)), ("s2c", (3, 0.2)),
                ("s2c", (3, 0.8))]
        c2s, s2c = cal["c2s"], cal["s2c"]
        failed = 0
        ack_lost = []
        for k, (d, n) in enumerate(cuts):
            what = "cut %s at %s (healthy sync: %d/%d bytes, records %r/%r)" % (
                d, n if isinstance(n, int) else "record %d + %d%%" % (n[0], n[1] * 100),
                c2s, s2c, cal["app_c2s"], cal["app_s2c"])
            with self.subTest(cut=what):
                tag = "r%02d" % k
                round_edits(tag)
                conf_before = {x["id"] for x in A.conflicts(all=True)}
                self.proxy.cut(**{d: n})
                failed += self.failed_sync(A, what)
                last = self.proxy.last()
                self.assertEqual(last["cut"] is not None, True,
                                 "%s: the proxy never cut; its last connection: %r"
                                 % (what, last))
                srv = {r["id"]: r for r in customers(self.server_dump())}
                if A.pending() > 0 and srv[base].get("city") == tag:
                    # the server committed the batch, the ACK was lost.  B
                    # pulls A's edit and edits the same field on top of it:
                    # sequential, so no conflict when A's batch is resent.
                    ack_lost.append(what)
                    B.sync()
                    B.edit("customer", base, city=tag + "-b")
                    expect_city[base] = tag + "-b"
                B.sync()
                A.sync()                       # healthy retry
                self.check_client_vs_server(A, names, what)
                recs = {r["id"]: r for r in customers(self.server_dump())}
                self.assertEqual(recs[base].get("city"), expect_city[base], what)
                self.assertEqual(recs[b_rec].get("city"), tag, what)
                new = [x for x in A.conflicts(all=True) if x["id"] not in conf_before]
                # Not even when the ACK was lost and B edited the field on top of
                # A's applied edit: the resent batch is a replay, not a conflict.
                self.assertEqual(new, [], self.msg(
                    "%s: the retry produced conflicts (ack lost: %s)"
                    % (what, bool(ack_lost and ack_lost[-1] == what))))
        self.assertGreaterEqual(failed, len(cuts) - 4,
                                "most cuts should make the sync fail")
        self.assertTrue(ack_lost, "no cut fell between the server's commit and "
                        "the client's ACK (calibration %d/%d)" % (c2s, s2c))
        print("cuts that lost an ACK: %r" % ack_lost, file=sys.stderr)
        dump = self.converge([A, B])
        self.assertEqual(sorted(r["name"] for r in customers(dump)), sorted(names))

    def test_first_sync_cut_between_ack_and_snapshot(self):
        # A's first sync: its push is applied and acknowledged, then the
        # connection is cut before the snapshot (fault seed 819563: a kill
        # -9 of the server there).  B deletes A's customer meanwhile; A's
        # next snapshot does not hold it and its 'D' lies before the
        # snapshot's seq: A must not keep it for good.
        A = self.new_client("A", "alice", server_addr=self.proxy.addr)
        B = self.new_client("B", "bob")
        gone = A.add("customer", name="Gone", city="c0")
        A.add("customer", name="Kept", city="c0")
        self.proxy.cut(s2c=(3, 0.0))             # WELCOME, ACK, | CHANGES
        self.assertTrue(self.failed_sync(A, "cut before the snapshot"))
        self.assertEqual(A.pending(), 0, "the ACK was not recorded")
        B.sync()
        B.ok("customer", "delete", gone)
        B.sync()
        self.proxy.heal()
        A.sync()
        self.check_client_vs_server(A, ["Kept"], "a bootstrap after a cut")

    def test_replayed_batch_is_harmless(self):
        # A's batch (city=ra, base=b) is applied at log position p; B pulls it
        # and edits city=rb (sequential: B had seen ra).  A resends the same
        # batch (its ACK was lost): its version is now older than the field's,
        # written after b by another device, which would look concurrent.  The
        # server recognises the replay (docs/protocol.md, "Replays"): no
        # conflict, no change.
        A = self.new_client("A", "alice")
        B = self.new_client("B", "bob")
        cid = A.add("customer", name="R", city="r0")
        A.sync()
        B.sync()
        A.edit("customer", cid, city="ra", phone="pa")
        new = A.add("customer", name="R2")
        saved = os.path.join(self.tmp, "A-before-push.db")
        _backup(A.db, saved)
        A.sync()                                 # the batch is applied ...
        B.sync()                                 # ... B pulls it, and edits
        B.edit("customer", cid, city="rb")      # on top of it: no conflict
        B.sync()
        _backup(saved, A.db)                     # A forgets the ACK
        self.assertEqual(A.pending(), 3)
        A.sync()                                 # the same batch, resent
        dump = self.converge([A, B])
        recs = {r["id"]: r for r in customers(dump)}
        self.assertEqual(sorted(r["name"] for r in recs.values()), ["R", "R2"])
        self.assertIn(new, recs)
        self.assertEqual((recs[cid].get("city"), recs[cid].get("phone")), ("rb", "pa"),
                         "a replayed old edit must not undo a later one")
        for c in (A, B):
            self.assertEqual(c.conflicts(all=True), [],
                             self.msg("a replayed batch created conflicts on %s" % c.name))
        self.assertEqual(self.server.sql("SELECT count(*) FROM fs_conflict"), [(0,)])

    def test_many_pending_pushed_through_cuts(self):
        A = self.new_client("A", "alice", server_addr=self.proxy.addr)
        n = 5000
        csv = os.path.join(self.tmp, "customers.csv")
        with open(csv, "w") as f:
            f.write("name,city,phone,email\n")
            for i in range(n):
                f.write("Cust %05d,City %d,+1-555-%04d,c%d@example.com\n" % (i, i % 50, i, i))
        names = ["Cust %05d" % i for i in range(n)]
        A.ok("customer", "import", csv)
        self.assertEqual(A.pending(), n)
        seen = [n]
        fails = 0
        # (a batch of 2000 is ~70 kB deflated at zlib's fastest level: the
        # 100 kB cut falls after the first batch's ACK, in the second)
        for d, cut in (("c2s", 20000), ("c2s", 100000), ("c2s", 50000),
                       ("c2s", 30000), ("s2c", 40000), ("s2c", 90000)):
            self.proxy.cut(**{d: cut})
            fails += self.failed_sync(A, "cut %s at %d" % (d, cut))
            p = A.pending()
            self.assertLessEqual(p, seen[-1], "pending changes grew after a cut: %r" % seen)
            seen.append(p)
            # nothing acknowledged is missing on the server, nothing twice
            srv = customers(self.server_dump())
            srv_names = [r["name"] for r in srv]
            self.assertEqual(len(srv_names), len(set(srv_names)),
                             "duplicates on the server after cut %s at %d" % (d, cut))
            self.assertGreaterEqual(len(srv_names), n - p,
                                    self.msg("acknowledged changes missing on the server"))
        self.assertTrue(any(0 < p < n for p in seen),
                        "no cut fell between two batches' ACKs: pending %r" % seen)
        self.assertGreaterEqual(fails, 4, "pending after each cut: %r" % seen)
        # A cut armed for a sync that ended before connecting would fall
        # on the next connection: the closing sync is meant uncut.
        self.proxy.heal()
        try:
            A.sync()
            self.check_client_vs_server(A, names, "5000 customers through cuts")
            B = self.new_client("B", "bob")
            self.converge([A, B])
        except e2eutil.CliError as ex:
            # If this fails in the proxy rather than in Fieldsync, what the
            # proxy saw helps (an earlier test's proxy once stole this
            # one's connections: e2eutil.Proxy.close):
            self.fail(self.msg("%s\nproxy: last connections %r, accept errors %r, "
                               "events %r" % (ex, self.proxy.conns[-3:],
                                              self.proxy.accept_errors[-5:],
                                              self.proxy.events[-8:])))

    def test_records_made_during_a_push_reach_the_server_whole(self):
        # The push first fills in the fields of creations logged without
        # them (sync/capture.h), then sends batches until the log is empty.
        # Records another process creates meanwhile are logged without
        # their fields after that: the push must fill them in too, never
        # send a creation without fields (the server would refuse it).
        A = self.new_client("A", "alice")
        n = 6000
        csv = os.path.join(self.tmp, "many.csv")
        with open(csv, "w") as f:
            f.write("name,city\n")
            for i in range(n):
                f.write("Bulk %05d,City %d\n" % (i, i % 50))
        names = ["Bulk %05d" % i for i in range(n)]
        A.ok("customer", "import", csv)
        sync = subprocess.Popen([e2eutil.FS, "--db", A.db, "sync", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=e2eutil._env(), cwd=self.tmp, text=True)
        made = 0
        while sync.poll() is None and made < 200:
            name = "During %03d" % made
            A.ok("customer", "add", "--name", name, "--city", "Lyon")
            names.append(name)
            made += 1
        out, err = sync.communicate(timeout=180)
        self.assertEqual(sync.returncode, 0, self.msg("sync during writes: %r %r"
                                                      % (out, err)))
        rep = json.loads(out)
        self.assertEqual(rep.get("rejected"), 0, self.msg("changes refused: %r" % rep))
        self.assertGreater(made, 0, "no record was made during the push")
        for done, total in re.findall(r"push: (\d+)/(\d+)", err):
            self.assertLessEqual(int(done), int(total), "push progress: %r" % err)
        self.sync(A)
        srv = self.check_client_vs_server(A, names, "records made during a push")
        for r in customers(srv):
            self.assertIn(r.get("city"), ("Lyon",) + tuple("City %d" % i for i in range(50)),
                          "a creation reached the server without its fields: %r" % r)

    def test_unreachable_server(self):
        self.add_rep("ursula")
        en = self.enroll("ursula", "EN_U")
        U = e2eutil.Client(self, "U", "ursula", en)
        U.init("127.0.0.1:%d" % e2eutil.free_port())
        U.add("customer", name="offline-1")
        c2 = U.add("customer", name="offline-2")
        U.edit("customer", c2, city="nowhere")
        before = U.state()
        self.assertEqual(before["pending"], 3)
        t0 = time.time()
        res = U.try_sync(timeout=60)
        self.assertLess(time.time() - t0, 30, "an unreachable server took too long")
        self.assertFailedCleanly(res, "sync with nothing listening")
        self.assertUnchanged(U, before, "a sync to an unreachable server")
        # a server that accepts and hangs up at once, either way round
        U.init(self.proxy.addr)
        before = U.state()
        for d in ("c2s", "s2c"):
            self.proxy.cut(**{d: 0})
            res = U.try_sync(timeout=60)
            self.assertFailedCleanly(res, "sync cut %s at 0 bytes" % d)
            self.assertUnchanged(U, before, "a sync cut at once (%s)" % d)
        # and then it works.  Straight to the server: what is checked is
        # that the faults left the replica whole (the proxy's own teardown
        # of a cut connection has once disturbed the next one under load).
        U.init(self.server.addr)
        res = U.try_sync(timeout=60)
        self.assertEqual(res[0], 0, "sync after the faults failed: %r; proxy "
                         "connections: %r" % (res, self.proxy.conns))
        self.check_client_vs_server(U, ["offline-1", "offline-2"], "after the faults")

    def test_full_disk_loses_nothing(self):
        # The replica's process may not grow any file past 36 kB (RLIMIT_FSIZE,
        # SIGXFSZ ignored: writes fail with EFBIG, as on a full disk).  Local
        # writes and a sync that has much to pull must fail cleanly, one
        # line, non-zero, changing nothing; with room again, all completes.
        A = self.new_client("A", "alice")
        B = self.new_client("B", "bob")
        A.sync()
        for i in range(40):
            B.add("customer", name="from-b-%02d" % i, notes="x" * 500)
        B.sync()
        mine = A.add("customer", name="mine-before-full")
        before = A.state()

        def full(*args):
            def limit():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (36000, 36000))
            p = subprocess.run([e2eutil.FS, "--db", A.db] + list(args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=limit, timeout=120,
                               env=e2eutil._env())
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        res = full("customer", "add", "--name", "while-full", "--notes", "y" * 40000)
        self.assertFailedCleanly(res, "a local write on a full disk", contains="disk")
        self.assertUnchanged(A, before, "a local write on a full disk")
        rc, out, err = full("sync")             # progress lines, then the error
        self.assertGreater(rc, 0, "a sync into a full disk: exit %d, %r" % (rc, err))
        self.assertIn("disk", err.strip().splitlines()[-1])
        self.assertIsNone(e2eutil.sanitizer_report(err))
        after = A.state()
        self.assertEqual(after["dump"], before["dump"],
                         "a sync into a full disk changed the records")
        A.sync()                                 # room again
        names = {r["name"] for r in A.records("customer")}
        self.assertIn("mine-before-full", names)
        self.assertEqual(len([n for n in names if n.startswith("from-b-")]), 40)
        self.assertNotIn("while-full", names)
        self.assertIn(mine, self.server_dump())
        self.converge([A, B])

    def test_sigterm_during_large_push_then_restart(self):
        A = self.new_client("A", "alice")
        B = self.new_client("B", "bob")
        b1 = B.add("customer", name="from-b")
        B.sync()
        n = 8000
        csv = os.path.join(self.tmp, "big.csv")
        with open(csv, "w") as f:
            f.write("name,city,notes\n")
            for i in range(n):
                f.write("Big %05d,Town %d,%s\n" % (i, i % 97, "note %d " % i * 8))
        A.ok("customer", "import", csv)
        names = ["Big %05d" % i for i in range(n)] + ["from-b"]
        # start the push, stop the server while it is under way
        log_before = len(self.server.log())
        p = __import__("subprocess").Popen(
            [e2eutil.FS, "--db", A.db, "sync"], stdout=__import__("subprocess").PIPE,
            stderr=__import__("subprocess").PIPE, env=e2eutil._env())
        deadline = time.time() + 30
        while time.time() < deadline and "hello from" not in self.server.log()[log_before:]:
            time.sleep(0.01)
        time.sleep(0.15)
        old = self.server
        rc = old.stop(signal.SIGTERM, timeout=30)
        self.assertEqual(rc, 0, self.msg("fieldsyncd did not exit 0 on SIGTERM (%r)" % rc))
        out, err = p.communicate(timeout=120)
        err = err.decode("utf-8", "replace")
        self.assertGreaterEqual(p.returncode, 0, "client died: %s" % err[-800:])
        self.assertIsNone(e2eutil.sanitizer_report(err), err)
        pend = A.pending()
        print("SIGTERM: client exit %d, %d of %d still pending"
              % (p.returncode, pend, n), file=sys.stderr)
        if p.returncode == 0:
            self.assertEqual(pend, 0)

        # restart on the same directory (new port); all that was
        # acknowledged is there
        self.server = None
        self.start_server()
        srv_names = [r["name"] for r in customers(self.server_dump())]
        self.assertEqual(len(srv_names), len(set(srv_names)), "duplicates after restart")
        self.assertGreaterEqual(len([x for x in srv_names if x.startswith("Big ")]), n - pend,
                                self.msg("acknowledged changes lost over the restart"))
        # re-pointing the replicas keeps their pending changes
        A.init(self.server.addr)
        self.assertEqual(A.pending(), pend, "init --server dropped pending changes")
        B.init(self.server.addr)
        B.edit("customer", b1, city="after-restart")
        self.assertEqual(B.pending(), 1)
        dump = self.converge([A, B])
        got = sorted(r["name"] for r in customers(dump))
        self.assertEqual(got, sorted(names))
        recs = {r["id"]: r for r in customers(dump)}
        self.assertEqual(recs[b1].get("city"), "after-restart")


def _backup(src, dst):
    """Copies an SQLite file through SQLite (WAL-safe)."""
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        d.close()
        s.close()


if __name__ == "__main__":
    e2eutil.main()
