#!/usr/bin/env python3
"""End-to-end security: mutual TLS against the company CA, revocation,
tampered enrolment files, authors taken from certificates, and a server
that keeps serving while junk or silent connections are open
(docs/protocol.md: Transport)."""
import os
import socket
import ssl
import struct
import sys
import threading
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2eutil  # noqa: E402


class SecurityTest(e2eutil.E2ECase):

    def setUp(self):
        super().setUp()
        self.start_server("--handshake-timeout", "2000")

    def test_foreign_ca_refused(self):
        other = self.new_server_dir("OTHER")
        self.add_rep("alice", directory=other)
        en = self.enroll("alice", "EN_FOREIGN", directory=other)
        X = e2eutil.Client(self, "X", "alice", en)
        X.init(self.server.addr)             # local step: the files are valid
        X.add("customer", name="foreign")
        before = X.state()
        res = X.try_sync(timeout=60)
        self.assertFailedCleanly(res, "sync with a certificate of another CA")
        self.assertUnchanged(X, before, "a refused sync")
        self.assertEqual(X.state()["pending"], 1)
        # nothing of it reached the server, which still serves its own
        self.assertNotIn("foreign", self.server_dump())
        A = self.new_client("A", "alice")
        A.add("customer", name="legit")
        A.sync()
        self.assertIn('"legit"', self.server_dump())
        self.assertNotIn("foreign", self.server_dump())

    def test_reenrol_as_another_user_keeps_or_discards_explicitly(self):
        # Changes made as alice must not be pushed under bob's certificate
        # (the server would make bob their author): re-enrolling refuses
        # while they are unsynced, unless --discard-unsynced says so.
        A = self.new_client("A", "alice")
        kept = A.add("customer", name="synced-as-alice")
        A.sync()
        A.add("customer", name="unsynced-as-alice")
        before = A.state()
        bob = self.enroll_new_user("bob", "EN_BOB")
        res = A.run("init", "--server", self.server.addr, "--enroll", bob)
        self.assertFailedCleanly(res, "re-enrolment as bob with alice's "
                                 "changes pending", contains="--discard-unsynced")
        self.assertUnchanged(A, before, "a refused re-enrolment")
        # bad enrolment files with --discard-unsynced: nothing is dropped
        res = A.run("init", "--server", self.server.addr, "--enroll",
                    os.path.join(self.tmp, "no-such-dir"), "--discard-unsynced")
        self.assertFailedCleanly(res, "--discard-unsynced with missing files")
        self.assertUnchanged(A, before, "a failed --discard-unsynced")
        A.ok("init", "--server", self.server.addr, "--enroll", bob,
             "--discard-unsynced")
        self.assertEqual(A.pending(), 0)
        self.assertEqual(A.status()["user"], "bob")
        A.sync()
        names = sorted(r["name"] for r in A.records("customer"))
        self.assertEqual(names, ["synced-as-alice"])
        self.assertNotIn("unsynced-as-alice", self.server_dump())
        self.assertIn(kept, self.server_dump())

    def enroll_new_user(self, user, out_name):
        self.add_rep(user)
        return self.enroll(user, out_name)

    def test_revoked_device_refused(self):
        # The server reads the client's HELLO before refusing, so the ERROR
        # frame arrives (closing with it unread would reset the connection):
        # the client prints one line saying the device was revoked.
        A = self.new_client("A", "alice")
        A.add("customer", name="before-revoke")
        A.sync()
        cid = A.add("customer", name="after-revoke")
        A.edit("customer", cid, city="x")
        self.admin("device", "revoke", A.device)
        before = A.state()
        res = A.try_sync(timeout=60)
        self.assertFailedCleanly(res, "sync of a revoked device", contains="revoked")
        self.assertUnchanged(A, before, "a refused sync")
        dump = self.server_dump()
        self.assertIn("before-revoke", dump)
        self.assertNotIn("after-revoke", dump)
        # another device of the same user still works
        en2 = self.enroll("alice", "EN_A2")
        A2 = e2eutil.Client(self, "A2", "alice", en2)
        A2.init(self.server.addr)
        A2.sync()
        self.assertIn("before-revoke", A2.dump())

    def _tampered(self, src, name, fname, where):
        dst = os.path.join(self.tmp, name)
        os.mkdir(dst)
        for f in os.listdir(src):
            with open(os.path.join(src, f), "rb") as i, open(os.path.join(dst, f), "wb") as o:
                o.write(i.read())
        p = os.path.join(dst, fname)
        with open(p) as f:
            lines = f.read().split("\n")
        body = [i for i, l in enumerate(lines) if l and not l.startswith("-----")]
        self.assertTrue(body, "no base64 body in %s" % p)
        i = body[int(len(body) * where)]
        line = lines[i]
        j = len(line) // 2
        ch = line[j]
        repl = "B" if ch != "B" else "C"
        lines[i] = line[:j] + repl + line[j + 1:]
        with open(p, "w") as f:
            f.write("\n".join(lines))
        return dst

    def test_tampered_enrolment_files(self):
        self.add_rep("tess")
        good = self.enroll("tess", "EN_T")
        cases = [("device.crt", 0.5), ("device.crt", 0.95), ("device.crt", 0.1),
                 ("device.key", 0.5), ("ca.crt", 0.5)]
        for k, (fname, where) in enumerate(cases):
            with self.subTest(file=fname, where=where):
                en = self._tampered(good, "EN_T%d" % k, fname, where)
                T = e2eutil.Client(self, "T%d" % k, "tess", en)
                T.ok("init")
                T.add("customer", name="tampered-%d" % k)
                before = T.state()
                rc, out, err = T.run("init", "--server", self.server.addr, "--enroll", en)
                if rc != 0:
                    self.assertFailedCleanly((rc, out, err), "init with a tampered %s" % fname)
                    self.assertUnchanged(T, before, "a refused init")
                    st = T.status()
                    self.assertIsNone(st.get("server"), "a refused init set the server")
                    continue
                before = T.state()
                res = T.try_sync(timeout=60)
                self.assertFailedCleanly(res, "sync with a tampered %s" % fname)
                self.assertUnchanged(T, before, "a refused sync")
                self.assertNotIn("tampered-%d" % k, self.server_dump())
        self.assertTrue(self.server.alive(), self.msg("the server died"))
        # the untampered files still work
        T = e2eutil.Client(self, "Tgood", "tess", good)
        T.init(self.server.addr)
        T.add("customer", name="fine")
        T.sync()
        self.assertIn('"fine"', self.server_dump())

    def test_authors_come_from_certificates(self):
        A, B = self.make_reps(["alice", "bob"])
        # a replica that claims to be someone else locally
        A.ok("init", "--user", "mallory")
        cid = A.add("customer", name="Auth", city="0")
        A.sync()
        B.sync()
        A.edit("customer", cid, city="by-alice")
        time.sleep(0.005)
        B.edit("customer", cid, city="by-bob")
        A.sync()
        B.sync()
        self.converge([A, B])
        for c in (A, B):
            [x] = c.conflicts(all=True)
            self.assertEqual((x["winner_value"], x["winner_author"], x["winner_device"]),
                             ("by-bob", "bob", B.device))
            self.assertEqual((x["loser_value"], x["loser_author"], x["loser_device"]),
                             ("by-alice", "alice", A.device))
        # the server's log and conflict table agree: authors are the
        # certificates' users, never the local --user name
        # (C entries are the server's own conflict announcements, fs_org
        # rows the admin tool's organisation changes)
        authors = {r[0] for r in self.server.sql(
            "SELECT DISTINCT author FROM fs_log WHERE op <> 'C' "
            "AND tbl <> 'fs_org'")}
        self.assertEqual(authors, {"alice", "bob"})
        rows = self.server.sql("SELECT winner_author, loser_author FROM fs_conflict")
        self.assertEqual(rows, [("bob", "alice")])
        devs = {r[0]: r[1] for r in self.server.sql(
            "SELECT device, author FROM fs_log WHERE op <> 'C' "
            "AND tbl <> 'fs_org'")}
        self.assertEqual(devs, {A.device: "alice", B.device: "bob"})

    def test_junk_and_silent_connections_do_not_block(self):
        A = self.new_client("A", "alice")
        A.add("customer", name="first")
        A.sync()
        port = self.server.port
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        junk = []
        for payload in (b"GET / HTTP/1.0\r\n\r\n", os.urandom(3000),
                        b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x01\xff\xff" + b"A" * 100):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(payload)
            junk.append(s)
        # a slow trickler: one byte every 100 ms, in the background
        stop = threading.Event()
        trick = socket.create_connection(("127.0.0.1", port))

        def trickle():
            try:
                while not stop.is_set():
                    trick.sendall(b"\x16")
                    time.sleep(0.1)
            except OSError:
                pass
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        self.addCleanup(stop.set)
        try:
            A.add("customer", name="while-junk")
            t0 = time.time()
            A.sync()
            self.assertLess(time.time() - t0, 5, "a sync was held up by junk connections")
            self.assertIn("while-junk", self.server_dump())
            # the server closes them: junk at once, silent ones after the
            # 2 s handshake timeout (room for slow sanitizer builds)
            for s in silent + junk + [trick]:
                s.settimeout(5)
            t0 = time.time()
            for s in silent + junk:
                try:
                    data = s.recv(4096)
                    while data:
                        data = s.recv(4096)
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail(self.msg("the server kept a silent/junk connection "
                                       "open past the handshake timeout"))
            self.assertLess(time.time() - t0, 8)
            stop.set()
            t.join(5)
        finally:
            stop.set()
            for s in silent + junk + [trick]:
                s.close()
        self.assertTrue(self.server.alive(), self.msg("the server died"))
        B = self.new_client("B", "bob")
        self.converge([A, B])

    def tls_client(self, enroll_dir, **ctx_args):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(enroll_dir, "ca.crt"))
        ctx.load_cert_chain(os.path.join(enroll_dir, "device.crt"),
                            os.path.join(enroll_dir, "device.key"))
        for k, v in ctx_args.items():
            if k == "ciphers":
                ctx.set_ciphers(v)
            else:
                with warnings.catch_warnings():   # TLS 1.1 is deprecated: yes
                    warnings.simplefilter("ignore", DeprecationWarning)
                    setattr(ctx, k, v)
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def test_downgrades_are_refused(self):
        # A valid certificate does not buy an old protocol or a weak suite.
        self.add_rep("dora")
        en = self.enroll("dora", "EN_DORA")
        attempts = {
            "TLS 1.1": dict(minimum_version=ssl.TLSVersion.MINIMUM_SUPPORTED,
                            maximum_version=ssl.TLSVersion.TLSv1_1,
                            ciphers="ALL:@SECLEVEL=0"),
            "TLS 1.2 CBC suite": dict(maximum_version=ssl.TLSVersion.TLSv1_2,
                                      ciphers="ECDHE-ECDSA-AES128-SHA256:"
                                              "ECDHE-ECDSA-AES128-SHA"),
        }
        for what, args in attempts.items():
            with self.subTest(attempt=what):
                before = self.server.log().count("refused during handshake")
                try:
                    c = self.tls_client(en, **args)
                except (ssl.SSLError, OSError) as e:
                    # the server must be the one refusing (a ClientHello
                    # went out), not our own TLS library
                    time.sleep(0.2)
                    self.assertGreater(self.server.log().count(
                        "refused during handshake"), before,
                        "%s never reached the server: %s" % (what, e))
                    continue
                c.close()
                self.fail("the server accepted a %s handshake" % what)
        self.assertTrue(self.server.alive())
        A = self.new_client("A", "alice")
        A.add("customer", name="after-downgrades")
        A.sync()
        self.assertIn("after-downgrades", self.server_dump())

    def test_a_frame_announcing_4_gb_is_refused(self):
        # After a real handshake: a header announcing 4 GB must be refused
        # from the header alone (nothing allocated), with an ERROR and a
        # logged reason, and the server keeps serving.
        self.add_rep("finn")
        en = self.enroll("finn", "EN_FINN")
        c = self.tls_client(en)
        c.sendall(struct.pack(">BBHI", 3, 0, 0, 0xFFFFFFFF) + b"x" * 64)
        c.settimeout(10)
        data = b""
        try:
            while len(data) < 8:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        c.close()
        self.assertGreaterEqual(len(data), 8, "no ERROR frame before the close")
        self.assertEqual(data[0], 7, "the reply is not ERROR: %r" % data[:16])
        time.sleep(0.2)
        self.assertRegex(self.server.log(), r"closing: malformed frame: .*")
        self.assertTrue(self.server.alive(), self.msg("the server died"))
        A = self.new_client("A", "alice")
        A.add("customer", name="after-4gb")
        A.sync()
        self.assertIn("after-4gb", self.server_dump())


if __name__ == "__main__":
    e2eutil.main()
