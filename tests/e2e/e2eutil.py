"""e2eutil.py -- helpers for the multi-process end-to-end tests of Fieldsync.

Stdlib only.  The binaries (fieldsync, fieldsync-admin, fieldsyncd) are taken
from $FIELDSYNC_BIN_DIR (default: build/bin of this source tree).

Every test case gets a fresh temporary directory holding a server directory
(`fieldsync-admin init`), the enrolment directories of its reps and their
replicas.  fieldsyncd runs as a real process on 127.0.0.1 with a port picked
at run time (--listen 127.0.0.1:0; the port is read from the first stdout
line); its stderr goes to a log file that is quoted in failure messages and
scanned for sanitizer reports.  Every server and proxy started by a test is
stopped by the test's cleanups, whatever happens.

Expected values in the tests come from the tests' own reasoning (what was
typed, in what order), never from the program's output.
"""
import json
import os
import random
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("FIELDSYNC_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(HERE)), "build", "bin")
FS = os.path.join(BIN_DIR, "fieldsync")
ADMIN = os.path.join(BIN_DIR, "fieldsync-admin")
FSD = os.path.join(BIN_DIR, "fieldsyncd")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer", "ThreadSanitizer",
                   "AddressSanitizer:DEADLYSIGNAL")

UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CliError(AssertionError):
    pass


def _env():
    e = dict(os.environ)
    e.pop("FIELDSYNC_DB", None)
    e.pop("FIELDSYNC_DIR", None)
    # Sanitizer builds: report everything, keep going where possible so the
    # report reaches the log; leak checks stay on (at exit).
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return e


def run(cmd, timeout=180, input=None, cwd=None):
    """Runs one command; returns (rc, stdout, stderr) as text."""
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=_env(), timeout=timeout,
                       input=input, cwd=cwd)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def sanitizer_report(text):
    for m in SANITIZER_MARKS:
        i = text.find(m)
        if i >= 0:
            return text[max(0, i - 200):i + 2000]
    return None


def free_port():
    """A port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_device_id(enroll_dir):
    with open(os.path.join(enroll_dir, "device.conf")) as f:
        for line in f:
            k, _, v = line.partition("=")
            if k.strip() == "device":
                return v.strip()
    raise AssertionError("no 'device =' line in %s/device.conf" % enroll_dir)


# ------------------------------------------------------------------ server

class Server:
    """One fieldsyncd process over a server directory."""

    def __init__(self, directory, log_path):
        self.dir = directory
        self.log_path = log_path
        self.proc = None
        self.port = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, *extra, listen="127.0.0.1:0", timeout=30):
        assert self.proc is None, "server already running"
        logf = open(self.log_path, "ab")
        logf.write(b"---- fieldsyncd start ----\n")
        logf.flush()
        self.proc = subprocess.Popen(
            [FSD, "--dir", self.dir, "--listen", listen] + [str(x) for x in extra],
            stdout=subprocess.PIPE, stderr=logf, env=_env())
        logf.close()
        deadline = time.time() + timeout
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n") and time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                ch = os.read(fd, 1)
                if not ch:
                    break
                line += ch
            elif self.proc.poll() is not None:
                break
        m = re.match(rb"^listening on 127\.0\.0\.1:(\d+)\s*$", line)
        if not m:
            self.kill()
            raise AssertionError("fieldsyncd did not report its port (first "
                                 "stdout line %r); log:\n%s" % (line, self.log_tail()))
        self.port = int(m.group(1))
        # Drain stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stdout,),
                         daemon=True).start()
        return self.port

    @staticmethod
    def _drain(f):
        try:
            while f.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server with sig; returns its exit status (None if it had
        to be killed)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        try:
            if p.poll() is None:
                p.send_signal(sig)
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    return None
            return p.returncode
        finally:
            p.stdout.close()

    def kill(self):
        if self.proc is not None:
            p, self.proc = self.proc, None
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    # Independent view of the central database (read-only).
    def sql(self, query, params=()):
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "server.db"),
                              uri=True, timeout=30)
        try:
            return [tuple(r) for r in con.execute(query, params).fetchall()]
        finally:
            con.close()


# ------------------------------------------------------------------ proxy

class Proxy:
    """A loopback TCP proxy: forwards bytes between a client and the server,
    and can cut a connection after N bytes in one direction.

    cut(c2s=N) / cut(s2c=N): the next connections forward exactly N bytes in
    that direction, then both sockets are closed (abortively).
    cut(s2c=(K, F)) counts TLS records instead: it forwards everything before
    the K-th application-data record (type 23) in that direction and the
    fraction F (0 <= F < 1) of that record, then cuts -- so a cut can be
    aimed at "before the first ACK" or "inside the CHANGES frame" whatever
    the handshake's size.  once=True (default) makes the rule apply to the
    next connection only.  hold(s2c=K) makes the next connection stop
    before the K-th server-to-client application-data record (held is set)
    until release(): the client waits there, mid-sync.  heal() removes the
    rule.  conns lists, per
    connection, the bytes forwarded each way, the sizes of the
    application-data records each way, and whether it was cut."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lock = threading.Lock()
        self.rule = None          # (direction, n, once)
        self.conns = []
        self.accept_errors = []
        self.events = []
        self.chunky = None        # a random.Random: forward in tiny pieces
        self.stopping = False
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def cut(self, c2s=None, s2c=None, once=True):
        assert (c2s is None) != (s2c is None)
        with self.lock:
            self.rule = ("c2s", c2s, once) if c2s is not None else ("s2c", s2c, once)

    def hold(self, s2c):
        self.held = threading.Event()
        self.released = threading.Event()
        with self.lock:
            self.rule = ("s2c", ("hold", s2c), True)

    def release(self):
        self.released.set()

    def heal(self):
        with self.lock:
            self.rule = None

    def set_upstream(self, port):
        with self.lock:
            self.upstream = port

    def last(self, timeout=30):
        """The last connection's record, once both its pumps are done: a
        client that has exited may have left bytes the proxy's threads
        have yet to read (a cut still to fall)."""
        with self.lock:
            info = self.conns[-1] if self.conns else None
        if info is None:
            return None
        info["done"].wait(timeout)
        with self.lock:
            return {k: v for k, v in info.items() if k != "done"}

    def close(self):
        # Shut the listening socket down first (a blocked accept() returns
        # EINVAL), wait for the accept thread, and only then close it.
        # Closing it under a thread about to call accept() let that thread
        # accept on the fd number's next owner: the next test's proxy
        # socket.  It dialled its own dead upstream and closed the
        # connection (a client saw "connection closed during TLS
        # handshake", a cut never fell; found with perf's
        # sock:inet_sock_set_state tracepoint).
        self.stopping = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(15)
        try:
            self.ls.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            self.events.append((time.time(), "accepting"))
            try:
                c, peer = self.ls.accept()
                self.events.append((time.time(), "accepted %r" % (peer,)))
            except OSError as ex:
                if self.stopping:
                    return
                self.accept_errors.append(repr(ex))   # e.g. ECONNABORTED
                time.sleep(0.01)
                continue
            with self.lock:
                rule, upstream = self.rule, self.upstream
                if rule and rule[2]:
                    self.rule = None
                info = {"c2s": 0, "s2c": 0, "cut": None, "rule": rule,
                        "app_c2s": [], "app_s2c": [],
                        "done": threading.Event()}
                self.conns.append(info)
            try:
                u = socket.create_connection(("127.0.0.1", upstream), timeout=10)
                u.settimeout(None)
                for so in (c, u):   # as the real endpoints: no Nagle delays
                    so.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.events.append((time.time(), "upstream %d ok" % upstream))
            except OSError as ex:
                c.close()
                info["cut"] = "upstream refused: %s" % ex
                info["done"].set()
                continue
            st = {"closed": False, "pumps": 2}
            for src, dst, d in ((c, u, "c2s"), (u, c, "s2c")):
                limit = rule[1] if rule and rule[0] == d else None
                threading.Thread(target=self._pump,
                                 args=(src, dst, d, limit, info, st, c, u),
                                 daemon=True).start()

    def _pump(self, src, dst, d, limit, info, st, c, u):
        try:
            self._forward(src, dst, d, limit, info, st, c, u)
        finally:
            # The last pump out closes both sockets: a socket closed under
            # the other pump frees its fd number, which that pump may be
            # about to use (CPython reads the fd outside the GIL).
            with self.lock:
                st["pumps"] -= 1
                last = st["pumps"] == 0
            if last:
                for s in (c, u):
                    try:
                        s.close()
                    except OSError:
                        pass
                info["done"].set()

    def _forward(self, src, dst, d, limit, info, st, c, u):
        # limit: None, an int (bytes), (K, F) (K-th application record),
        # or ("hold", K) (hold())
        rec = hold_k = hold_at = None
        if isinstance(limit, tuple) and limit[0] == "hold":
            hold_k, limit = limit[1], None
        elif isinstance(limit, tuple):
            rec, limit = limit, None
        stream = bytearray()
        next_off = 0
        napp = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                stream += data
                while next_off + 5 <= len(stream):
                    typ = stream[next_off]
                    ln = int.from_bytes(stream[next_off + 3:next_off + 5], "big")
                    if typ == 23:
                        napp += 1
                        info["app_" + d].append(ln)
                        if rec and napp == rec[0] and limit is None:
                            limit = next_off + int(rec[1] * (5 + ln))
                        if hold_k and napp == hold_k and hold_at is None:
                            hold_at = next_off
                    next_off += 5 + ln
                if hold_at is not None and hold_at >= 0:
                    room = max(0, hold_at - info[d])
                    if room <= len(data):
                        dst.sendall(data[:room])
                        info[d] += room
                        data = data[room:]
                        hold_at = -1
                        self.held.set()
                        self.released.wait(60)
                if limit is not None:
                    room = limit - info[d]
                    if len(data) >= room:
                        if room > 0:
                            dst.sendall(data[:room])
                            info[d] += room
                        info["cut"] = "%s after %d bytes" % (d, limit)
                        self._abort(c, u, st)
                        return
                chunky = self.chunky      # the test may clear it meanwhile
                if chunky:
                    # short reads and writes at both ends: tiny pieces,
                    # each its own TCP segment
                    i = 0
                    while i < len(data):
                        k = chunky.randint(1, 64)
                        dst.sendall(data[i:i + k])
                        i += k
                        if chunky.random() < 0.1:
                            time.sleep(0.001)
                else:
                    dst.sendall(data)
                info[d] += len(data)
            # orderly end in this direction: pass the FIN on
            info["eof_" + d] = info[d]
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        except OSError as ex:
            info["error_" + d] = repr(ex)
            self._abort(c, u, st)
            return
        with self.lock:
            st[d] = True
            both = st.get("c2s") and st.get("s2c")
        if both:
            self._abort(c, u, st, rst=False)

    @staticmethod
    def _abort(c, u, st, rst=True):
        if st.get("closed"):
            return
        st["closed"] = True
        for s in (c, u):
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            try:
                s.shutdown(socket.SHUT_RDWR)   # wakes the other pump
            except OSError:
                pass


# ------------------------------------------------------------------ client

class Client:
    """One replica (a rep's device) driven through the `fieldsync` CLI."""

    def __init__(self, case, name, user, enroll_dir):
        self.case = case
        self.name = name
        self.user = user
        self.enroll = enroll_dir
        self.db = os.path.join(case.tmp, name + ".db")
        self.device = read_device_id(enroll_dir)

    def __repr__(self):
        return "<client %s (%s)>" % (self.name, self.user)

    def run(self, *args, timeout=180):
        rc, out, err = run([FS, "--db", self.db] + list(args), timeout=timeout,
                           cwd=self.case.tmp)
        rep = sanitizer_report(err)
        if rep:
            raise AssertionError("sanitizer report from `fieldsync %s` on %s:\n%s"
                                 % (" ".join(map(str, args)), self.name, rep))
        if rc < 0:
            raise AssertionError("`fieldsync %s` on %s died from signal %d: %s"
                                 % (" ".join(map(str, args)), self.name, -rc, err[-1500:]))
        return rc, out, err

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        if rc != 0:
            raise CliError("`fieldsync %s` on %s exited %d: %s%s" % (
                " ".join(map(str, args)), self.name, rc, err.strip()[-1500:],
                self.case.server_log_note()))
        return out

    def json(self, *args):
        out = self.ok(*(list(args) + ["--json"]))
        try:
            return json.loads(out)
        except ValueError as ex:
            raise CliError("`fieldsync %s --json` on %s printed invalid JSON (%s): %r"
                           % (" ".join(args), self.name, ex, out[:300]))

    def init(self, server_addr, enroll=None):
        return self.ok("init", "--server", server_addr, "--enroll", enroll or self.enroll)

    def add(self, noun, **fields):
        args = []
        for k, v in fields.items():
            args += ["--" + k, str(v)]
        out = self.ok(noun, "add", *args).strip()
        if not UUID_RE.match(out):
            raise CliError("%s add on %s printed %r, not an id" % (noun, self.name, out))
        return out

    def edit(self, noun, rid, **fields):
        args = []
        for k, v in fields.items():
            args += ["--" + k, str(v)]
        return self.ok(noun, "edit", rid, *args)

    def sync(self):
        """A sync that must succeed; returns its --json report."""
        out = self.ok("sync", "--json")
        try:
            rep = json.loads(out)
        except ValueError:
            raise CliError("sync --json on %s printed %r" % (self.name, out))
        if rep.get("ok") is not True:
            raise CliError("sync on %s exited 0 but reported %r" % (self.name, rep))
        return rep

    def try_sync(self, timeout=180):
        return self.run("sync", "--json", timeout=timeout)

    def dump(self):
        return self.ok("dump")

    def records(self, table=None):
        out = []
        for line in self.dump().splitlines():
            r = json.loads(line)
            if table is None or r["table"] == table:
                out.append(r)
        return out

    def conflicts(self, all=True):
        args = ["conflicts"] + (["--all"] if all else [])
        v = self.json(*args)
        if not isinstance(v, list):
            raise CliError("conflicts --json on %s is not an array: %r" % (self.name, v))
        return v

    def status(self):
        return self.json("status")

    def pending(self):
        return int(self.status()["pending_changes"])

    def state(self):
        """What must not change when a sync fails: the dump, the pending
        count, every conflict and the pending change log."""
        return {"dump": self.dump(), "pending": self.pending(),
                "conflicts": self.conflicts(all=True),
                "changes": self.ok("changes", "--json"),
                "last_sync": self.status().get("last_sync")}


# ------------------------------------------------------------------ cases

class E2ECase(unittest.TestCase):
    """A temporary directory with a server directory; servers, proxies and
    clients made through it are cleaned up at the end."""
    maxDiff = 6000

    def setUp(self):
        for b in (FS, ADMIN, FSD):
            if not os.access(b, os.X_OK):
                self.fail("binary %s not found (set FIELDSYNC_BIN_DIR)" % b)
        self._tmp = tempfile.TemporaryDirectory(prefix="fs-e2e-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.servers = []
        self.srvdir = self.new_server_dir("SRV")
        self.server = None
        self.addCleanup(self._check_servers)

    # -- server side

    def new_server_dir(self, name):
        d = os.path.join(self.tmp, name)
        self.admin_in(d, "init")
        return d

    def admin_in(self, d, *args):
        rc, out, err = run([ADMIN, "--dir", d] + list(args), cwd=self.tmp)
        rep = sanitizer_report(err)
        if rep:
            raise AssertionError("sanitizer report from fieldsync-admin %s:\n%s"
                                 % (" ".join(args), rep))
        if rc != 0:
            raise CliError("`fieldsync-admin %s` exited %d: %s"
                           % (" ".join(args), rc, err.strip()))
        return out

    def admin(self, *args):
        return self.admin_in(self.srvdir, *args)

    def server_dump(self):
        return self.admin("dump")

    def start_server(self, *extra, directory=None, name="fieldsyncd"):
        s = Server(directory or self.srvdir,
                   os.path.join(self.tmp, "%s-%d.log" % (name, len(self.servers))))
        self.servers.append(s)
        self.addCleanup(s.stop)
        s.start(*extra)
        if self.server is None and directory in (None, self.srvdir):
            self.server = s
        return s

    def start_proxy(self, server=None):
        p = Proxy((server or self.server).port)
        self.addCleanup(p.close)
        return p

    def server_log_note(self):
        logs = []
        for s in self.servers:
            t = s.log_tail(25)
            if t:
                logs.append("---- %s ----\n%s" % (os.path.basename(s.log_path), t))
        return ("\nserver log:\n" + "\n".join(logs)) if logs else ""

    def _check_servers(self):
        # Runs before the servers are killed (cleanups are LIFO): stop them
        # gracefully so a leak report reaches the log, then scan the logs.
        for s in self.servers:
            if s.alive():
                s.stop(signal.SIGTERM, timeout=20)
        for s in self.servers:
            rep = sanitizer_report(s.log())
            if rep:
                raise AssertionError("sanitizer report in %s:\n%s" % (s.log_path, rep))

    # -- reps and devices

    def add_rep(self, user, region="*", role="rep", directory=None):
        """region: a department code, a comma list, or '*' (the whole
        company, the default here: most tests are not about scopes)."""
        args = ["user", "add", user, "--role", role]
        if region:
            args += ["--region", region]
        self.admin_in(directory or self.srvdir, *args)

    def enroll(self, user, out_name, directory=None):
        out = os.path.join(self.tmp, out_name)
        self.admin_in(directory or self.srvdir, "device", "enroll", user, "--out", out)
        return out

    def new_client(self, name, user, server_addr=None, add_user=True, region="*",
                   role="rep"):
        if add_user:
            self.add_rep(user, region=region, role=role)
        en = self.enroll(user, "EN_" + name)
        c = Client(self, name, user, en)
        c.init(server_addr or self.server.addr)
        return c

    def make_reps(self, names, server_addr=None, role="rep"):
        """Clients named A, B, C... for users names[i]."""
        out = []
        for i, user in enumerate(names):
            out.append(self.new_client(chr(ord("A") + i), user, server_addr,
                                       role=role))
        return out

    # -- assertions

    def msg(self, text):
        return text + self.server_log_note()

    def sync(self, c, refused=0):
        """A sync of c whose push has exactly `refused` changes refused by
        the server (0: exit 0, ok; more: exit 5, --json says rejected
        that many); returns the --json report."""
        n = refused
        rc, out, err = c.try_sync()
        try:
            rep = json.loads(out)
        except ValueError:
            self.fail(self.msg("sync --json on %s printed %r (rc %d, err %r)"
                               % (c.name, out, rc, err)))
        if n == 0:
            self.assertEqual((rc, rep.get("ok"), rep.get("rejected")), (0, True, 0),
                             self.msg("sync on %s: want no refusal, got rc %d %r %s"
                                      % (c.name, rc, rep, err.strip())))
        else:
            self.assertEqual((rc, rep.get("rejected")), (5, n),
                             self.msg("sync on %s: want %d refused (exit 5), got rc "
                                      "%d %r %s; rejections now: %s"
                                      % (c.name, n, rc, rep, err.strip(),
                                         c.ok("rejections", "--json"))))
        return rep

    def sync_all(self, clients, order=None):
        for i in (order if order is not None else range(len(clients))):
            clients[i].sync()

    def converge(self, clients, rounds=2):
        """Every client syncs `rounds` times (in list order) with no edits;
        then asserts the byte-for-byte convergence contract and returns the
        common dump."""
        for _ in range(rounds):
            for c in clients:
                c.sync()
        return self.assertConverged(clients)

    def assertConverged(self, clients):
        srv = self.server_dump()
        for c in clients:
            d = c.dump()
            if d != srv:
                self.fail(self.msg("dump of %s differs from the server's:\n%s"
                                   % (c.name, _diff(srv, d, "server", c.name))))
            self.assertEqual(c.pending(), 0, "%s still has pending changes" % c.name)
        # the same conflicts, with the same ids, everywhere; each once
        ref = _conf_key(clients[0].conflicts(all=True))
        for c in clients[1:]:
            got = _conf_key(c.conflicts(all=True))
            self.assertEqual(got, ref, self.msg("conflicts of %s differ from %s's"
                                                % (c.name, clients[0].name)))
        self.assertNoDuplicateConflicts(clients[0].conflicts(all=True))
        # and the server recorded the same set
        rows = self.server.sql("SELECT id, tbl, rid, col, loser_hlc, loser_device, "
                               "winner_hlc, winner_device FROM fs_conflict ORDER BY id")
        mine = sorted((c["id"], c["table"], c["record"], c["field"] or "",
                       c["loser_hlc"], c["loser_device"], c["winner_hlc"],
                       c["winner_device"]) for c in clients[0].conflicts(all=True))
        self.assertEqual([tuple(r) for r in rows], mine,
                         self.msg("replica conflicts differ from the server's fs_conflict"))
        self.assertNoDuplicateRecords(srv)
        return srv

    def assertNoDuplicateConflicts(self, confs):
        ids = [c["id"] for c in confs]
        self.assertEqual(len(ids), len(set(ids)), "conflict ids repeated: %r" % ids)
        keys = [(c["table"], c["record"], c["field"], c["loser_hlc"], c["loser_device"])
                for c in confs]
        dup = sorted(k for k in set(keys) if keys.count(k) > 1)
        self.assertFalse(dup, self.msg("the same conflict listed more than once: %r" % dup))

    def assertNoDuplicateRecords(self, dump):
        seen = set()
        for line in dump.splitlines():
            r = json.loads(line)
            k = (r["table"], r["id"])
            self.assertNotIn(k, seen, "record %r appears twice in a dump" % (k,))
            seen.add(k)

    def assertFailedCleanly(self, res, what, contains=None):
        rc, out, err = res
        self.assertNotEqual(rc, 0, self.msg("%s succeeded but should fail; stdout=%r"
                                            % (what, out[:300])))
        body = err[:-1] if err.endswith("\n") else err
        self.assertTrue(body.strip(), "%s: nothing on stderr" % what)
        self.assertNotIn("\n", body, "%s: stderr is not one line: %r" % (what, err))
        self.assertTrue(body.startswith("fieldsync:"),
                        "%s: message does not start with 'fieldsync:': %r" % (what, err))
        if contains:
            self.assertRegex(body.lower(), contains,
                             self.msg("%s: message %r does not say %r" % (what, body, contains)))
        return body

    def assertUnchanged(self, client, before, what):
        after = client.state()
        for k in before:
            self.assertEqual(after[k], before[k],
                             "%s changed %s of %s" % (what, k, client.name))


def _conf_key(confs):
    # resolved_at is each node's own clock when it learnt of the resolution
    # (see test_converge.test_resolution_time_identical_everywhere); the
    # rest must be identical.
    out = []
    for c in confs:
        c = dict(c)
        c["resolved_at"] = c.get("resolved_at") is not None
        out.append(json.dumps(c, sort_keys=True))
    return sorted(out)


def _diff(a, b, na, nb):
    import difflib
    return "\n".join(list(difflib.unified_diff(a.splitlines(), b.splitlines(),
                                               na, nb, lineterm=""))[:60])


def main():
    unittest.main(verbosity=2)
