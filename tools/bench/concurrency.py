#!/usr/bin/env python3
"""concurrency.py -- N clients syncing at the same moment against one fieldsyncd.

    tools/bench/concurrency.py [--clients 500] [--records 20] [--bin build/bin]
                               [--sample K] [--bootstrap-first] [--no-settle]
                               [--server-arg=--max-connections=N] [--keep] [--work DIR]

Issue 3 promises that "500 concurrent clients on loopback must work".  This
script builds one server directory with N users, each with one enrolled device
and one replica holding R pending new customers (imported from a CSV, so the
names are known here), starts one fieldsyncd on 127.0.0.1 (port picked at run
time), and releases all N `fieldsync sync --json` processes at once through a
start gate (a FIFO every client blocks on; it is closed only once all N are
waiting).  While they run, a sampler reads the server's /proc every 20 ms
(VmRSS, VmHWM, threads, open fds, CPU time); /proc/stat gives the machine's
CPU use; the server log gives when handshakes, HELLOs and sessions ended.

Then:
  * round 1 (all N at once): successes, failures with their messages, wall time;
  * the server's dump must hold exactly the N*R customers the script created
    (counted against the script's own list of names, and against a read-only
    SQL count of server.db);
  * round 2 (all N at once again, no new edits): every client must succeed;
  * convergence: `fieldsync dump` of every client (or --sample K of them)
    must equal `fieldsync-admin dump` byte for byte, with 0 pending changes;
  * if anything above failed (and unless --no-settle): settle passes (every
    client syncs again, 4 at a time, until a pass pushes and fails nothing),
    then the convergence check again -- this tells "lost" from "not done".

--bootstrap-first syncs every replica once while the server is still empty,
so the rounds measure pushes and incremental pulls without N snapshots.
The binaries are copied into the work directory first (a rebuild of BIN_DIR
during the run must not swap them).  Stdlib only.  Data under /tmp (removed
on success unless --keep).  The server is stopped with SIGTERM at the end
whatever happens; every client process is waited for.  Exit 0 = PASS.
"""
import argparse
import hashlib
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def die(msg):
    print("concurrency: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def must(cmd, **kw):
    rc, out, err = run(cmd, **kw)
    if rc != 0:
        die("%s failed (exit %d): %s" % (" ".join(map(str, cmd)), rc, (err or out).strip()))
    return out


class Sampler(threading.Thread):
    """Polls /proc/PID of the server: peak RSS (VmHWM), peak threads, peak fds."""

    def __init__(self, pid, period=0.02):
        super().__init__(daemon=True)
        self.pid = pid
        self.period = period
        self.stop_ev = threading.Event()
        self.peak_threads = 0
        self.peak_fds = 0
        self.peak_rss_kb = 0
        self.hwm_kb = 0
        self.cpu = 0.0
        self.cpu0 = 0.0

    def sample(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "VmHWM":
                        self.hwm_kb = max(self.hwm_kb, int(v.split()[0]))
                    elif k == "VmRSS":
                        self.peak_rss_kb = max(self.peak_rss_kb, int(v.split()[0]))
                    elif k == "Threads":
                        self.peak_threads = max(self.peak_threads, int(v))
            self.peak_fds = max(self.peak_fds, len(os.listdir("/proc/%d/fd" % self.pid)))
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            pass

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            time.sleep(self.period)

    def reset(self):
        self.peak_threads = self.peak_fds = self.peak_rss_kb = 0
        self.cpu0 = self.cpu

    def stop(self):
        self.stop_ev.set()
        self.join()
        self.sample()


class Server:
    def __init__(self, binp, d, log, extra):
        self.proc = subprocess.Popen(
            [os.path.join(binp, "fieldsyncd"), "--dir", d, "--listen", "127.0.0.1:0"] + extra,
            stdout=subprocess.PIPE, stderr=open(log, "ab"))
        line = b""
        deadline = time.time() + 30
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
        m = re.match(rb"^listening on (127\.0\.0\.1:\d+)\s*$", line)
        if not m:
            self.stop()
            die("fieldsyncd did not report its port (got %r)" % line)
        self.addr = m.group(1).decode()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            while self.proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def stop(self):
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode


def gate_round(fs, clients, work, tag):
    """Starts `fieldsync --db X sync --json` for every client, all blocked on a
    FIFO; releases them together; waits for all.  Returns (results, wall)."""
    gate = os.path.join(work, "gate-" + tag)
    os.mkfifo(gate)
    hold = os.open(gate, os.O_RDWR)          # a writer exists: children's open() won't block
    ready_r, ready_w = os.pipe()
    procs = []
    # The child shell: open the gate, say "ready", block reading the gate
    # until every writer is closed (EOF), then become fieldsync.
    sh = ('exec 3<"$1"; printf . >&"$2"; eval "exec $2>&-"; read x <&3; exec 3<&-; '
          'shift 2; exec "$@"')
    try:
        for c in clients:
            out = open(os.path.join(c["dir"], "%s.out" % tag), "wb")
            err = open(os.path.join(c["dir"], "%s.err" % tag), "wb")
            p = subprocess.Popen(
                ["sh", "-c", sh, "sh", gate, str(ready_w), fs, "--db", c["db"], "sync", "--json"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(ready_w,))
            out.close()
            err.close()
            procs.append(p)
        os.close(ready_w)
        ready_w = -1
        got = 0
        deadline = time.time() + 120
        while got < len(clients) and time.time() < deadline:
            r, _, _ = select.select([ready_r], [], [], 1.0)
            if r:
                b = os.read(ready_r, 4096)
                if not b:
                    break
                got += len(b)
        if got < len(clients):
            die("only %d of %d clients reached the start gate" % (got, len(clients)))
        t0 = time.monotonic()
        gate_round.cpu0 = cpu_stat()
        gate_round.opened = time.time()
        os.close(hold)                       # EOF for every waiting client at once
        hold = -1
        ends = {}
        pending = set(range(len(procs)))
        while pending:
            for i in list(pending):
                if procs[i].poll() is not None:
                    ends[i] = time.monotonic() - t0
                    pending.discard(i)
            if pending:
                time.sleep(0.01)
        wall = time.monotonic() - t0
        c1 = cpu_stat()
        gate_round.busy = (c1[0] - gate_round.cpu0[0]) / max(1, c1[1] - gate_round.cpu0[1])
    finally:
        if hold >= 0:
            os.close(hold)
        if ready_w >= 0:
            os.close(ready_w)
        os.close(ready_r)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        os.unlink(gate)
    results = []
    for i, c in enumerate(clients):
        with open(os.path.join(c["dir"], "%s.out" % tag), "rb") as f:
            out = f.read().decode("utf-8", "replace")
        with open(os.path.join(c["dir"], "%s.err" % tag), "rb") as f:
            err = f.read().decode("utf-8", "replace")
        summary = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    summary = json.loads(line)
                except ValueError:
                    pass
        results.append({"rc": procs[i].returncode, "out": out, "err": err,
                        "summary": summary, "secs": ends.get(i)})
    return results, wall


def cpu_stat():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def server_threads(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return [int(l.split()[1]) for l in f if l.startswith("Threads:")][0]
    except (OSError, IndexError):
        return -1


def wait_quiet(sampler, idle_threads=1, timeout=180):
    """Waits until the server is back to its idle thread count (no connection
    threads left): a thread whose client gave up may still be applying its
    batch."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        th = server_threads(sampler.pid)
        if th < 0:
            return -1
        if th <= idle_threads:
            return time.monotonic() - t
        time.sleep(0.1)
    return None


def log_times(log, since):
    """Seconds after `since` (epoch) of the server's log events, by kind."""
    import calendar
    ev = {"authenticated": [], "hello": [], "done": [], "closing": [], "cannot open": []}
    for line in log.splitlines():
        m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z conn \d+: (.*)$", line)
        if not m:
            continue
        g = list(map(int, m.groups()[:7]))
        t = calendar.timegm(g[:6]) + g[6] / 1000.0 - since
        msg = m.group(8)
        for k in ev:
            if msg.startswith(k):
                ev[k].append(t)
    return ev


def report_round(name, results, wall, sampler, expect_push):
    ok = [r for r in results if r["rc"] == 0 and r["summary"] and r["summary"].get("ok")]
    bad = [(i, r) for i, r in enumerate(results) if r not in ok]
    secs = sorted(r["secs"] for r in results if r["secs"] is not None)
    pushed = sum((r["summary"] or {}).get("pushed", 0) for r in results)
    pulled = sum((r["summary"] or {}).get("pulled", 0) for r in results)
    bytes_io = sum((r["summary"] or {}).get("bytes_out", 0) + (r["summary"] or {}).get("bytes_in", 0)
                   for r in results)
    print("\n%s" % name)
    print("  %-34s %s" % ("clients succeeded", "%d / %d" % (len(ok), len(results))))
    print("  %-34s %.2f s" % ("wall time (gate open -> last exit)", wall))
    if secs:
        pct = lambda q: secs[max(0, min(len(secs) - 1, int(round(q * len(secs))) - 1))]
        print("  %-34s %.2f / %.2f / %.2f / %.2f s" % ("client time p50 / p95 / p99 / max",
                                                     secs[len(secs) // 2], pct(0.95), pct(0.99), secs[-1]))
    print("  %-34s %d (expected %d)" % ("changes pushed (sum of --json)", pushed, expect_push))
    print("  %-34s %d" % ("changes pulled (sum of --json)", pulled))
    print("  %-34s %.1f MB" % ("bytes on the wire (sum, in+out)", bytes_io / 1e6))
    print("  %-34s %.1f MB (VmHWM %.1f MB)" % ("server peak RSS in this round",
                                               sampler.peak_rss_kb / 1024, sampler.hwm_kb / 1024))
    print("  %-34s %.1f s (of %.1f s x %d cores)" % ("server CPU time (user+sys)",
                                                 sampler.cpu - sampler.cpu0, wall, os.cpu_count() or 1))
    print("  %-34s %.0f%% busy (server + all clients + anything else running)" % (
        "machine CPU during the round", 100 * getattr(gate_round, "busy", float("nan"))))
    print("  %-34s %d" % ("server peak threads", sampler.peak_threads))
    print("  %-34s %d" % ("server peak open fds", sampler.peak_fds))
    if bad:
        msgs = {}
        for i, r in bad:
            m = (r["err"].strip().splitlines() or ["(no stderr)"])[-1]
            m = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", m)
            msgs.setdefault("exit %s: %s" % (r["rc"], m), []).append(i)
        print("  failures by message:")
        for m, idx in sorted(msgs.items(), key=lambda kv: -len(kv[1])):
            print("    %4d x  %s   (clients %s%s)" % (len(idx), m, ",".join(map(str, idx[:8])),
                                                    ",..." if len(idx) > 8 else ""))
    return len(ok)


def check_converged(fs, admin, srvdir, clients, sample, jobs, title):
    rc, dump2, err = run([admin, "--dir", srvdir, "dump"])
    ref = hashlib.sha256(dump2.encode()).hexdigest()
    N = len(clients)
    check = clients if sample <= 0 or sample >= N else random.Random(1).sample(clients, sample)
    diverged = []
    counts = []

    def client_dump(c):
        rc, out, err = run([fs, "--db", c["db"], "dump"])
        st = json.loads(run([fs, "--db", c["db"], "status", "--json"])[1] or "{}")
        return c["i"], rc, hashlib.sha256(out.encode()).hexdigest(), out.count('"table":"customer"'), \
            st.get("pending_changes")

    t = time.monotonic()
    with ThreadPoolExecutor(jobs) as ex:
        for i, rc, h, n, pend in ex.map(client_dump, check):
            counts.append(n)
            if rc != 0 or h != ref or pend != 0:
                diverged.append((i, n, pend))
    t_check = time.monotonic() - t
    print("\n%s (%s)" % (title, "every client" if len(check) == N else
                         "a random sample of %d clients" % len(check)))
    print("  %-34s %d lines, %d customers" % ("fieldsync-admin dump", dump2.count("\n"),
                                              dump2.count('"table":"customer"')))
    print("  %-34s %d / %d  (checked in %.1f s)" % ("client dumps equal byte for byte",
                                                   len(check) - len(diverged), len(check), t_check))
    if diverged:
        print("  diverging clients (index, customers, pending): %s%s"
              % (diverged[:12], " ..." if len(diverged) > 12 else ""))
    if counts:
        print("  %-34s min %d, max %d" % ("customers per client dump", min(counts), max(counts)))
    return diverged


def report_log(work, since, quiet, offset=0):
    with open(os.path.join(work, "fieldsyncd.log"), "rb") as f:
        f.seek(offset)
        ev = log_times(f.read().decode("utf-8", "replace"), since)
    def span(k):
        v = sorted(ev[k])
        if not v:
            return "none"
        return "%d, at +%.1f .. +%.1f s (median +%.1f)" % (len(v), v[0], v[-1], v[len(v) // 2])
    print("  server log (seconds after the gate opened):")
    print("    %-18s %s" % ("handshakes done", span("authenticated")))
    print("    %-18s %s" % ("HELLOs", span("hello")))
    print("    %-18s %s" % ("sessions done", span("done")))
    print("    %-18s %s" % ("closed on error", span("closing")))
    print("    %-18s %s" % ("db open failed", span("cannot open")))
    print("    %-18s %s" % ("server idle after", "%.1f s more" % quiet if quiet is not None
                                               else "NOT idle after 180 s"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", "-n", type=int, default=500)
    ap.add_argument("--records", "-r", type=int, default=20, help="pending customers per client")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--sample", type=int, default=0,
                    help="compare the dumps of this many clients (0 = every client)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallelism of the setup")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra fieldsyncd argument (repeatable), e.g. --server-arg=--max-connections=2000")
    ap.add_argument("--bootstrap-first", action="store_true",
                    help="sync every replica once while the server is still empty, so the measured "
                         "rounds are push + incremental pull, not 500 snapshot bootstraps")
    ap.add_argument("--no-settle", action="store_true",
                    help="skip the settle passes after failed rounds")
    ap.add_argument("--work", help="work directory (default: a new one under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()

    binp = os.path.abspath(a.bin)
    fs, admin = os.path.join(binp, "fieldsync"), os.path.join(binp, "fieldsync-admin")
    for b in (fs, admin, os.path.join(binp, "fieldsyncd")):
        if not os.access(b, os.X_OK):
            die("%s missing: build first (cmake --build build)" % b)
    N, R = a.clients, a.records

    # File descriptors: the server holds per connection one socket plus the
    # SQLite files of its own connection (db, -wal; -shm is mapped); this
    # script holds a few per client while starting them.  Raise the soft limit
    # to the hard one and say what we had.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 8 * N + 256)) if hard != resource.RLIM_INFINITY else 8 * N + 256
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * N + 64
    if nofile[0] < need:
        print("warning: RLIMIT_NOFILE %d < ~%d needed for %d clients" % (nofile[0], need, N))

    work = a.work or tempfile.mkdtemp(prefix="fs-concurrency-", dir="/tmp")
    os.makedirs(work, exist_ok=True)
    # Private copies of the binaries: a rebuild of BIN_DIR while this runs
    # (other work on the tree) must not swap them under 500 starting clients.
    mine = os.path.join(work, "bin")
    os.makedirs(mine, exist_ok=True)
    for b in ("fieldsync", "fieldsync-admin", "fieldsyncd"):
        shutil.copy2(os.path.join(binp, b), os.path.join(mine, b))
    binp = mine
    fs, admin = os.path.join(binp, "fieldsync"), os.path.join(binp, "fieldsync-admin")
    srvdir = os.path.join(work, "srv")
    server = None
    sampler = None
    good = False
    try:
        t = time.monotonic()
        must([admin, "--dir", srvdir, "init", "--org", "Bench"])
        clients = []
        for i in range(N):
            d = os.path.join(work, "c%04d" % i)
            os.makedirs(d)
            clients.append({"i": i, "dir": d, "db": os.path.join(d, "r.db"),
                            "enroll": os.path.join(d, "enroll"), "user": "rep%04d" % i})
        # The admin tool writes server.db: one at a time.
        for c in clients:
            must([admin, "--dir", srvdir, "user", "add", c["user"], "--role", "office", "--region", "*"])
            must([admin, "--dir", srvdir, "device", "enroll", c["user"], "--out", c["enroll"]])
        t_enroll = time.monotonic() - t

        server = Server(binp, srvdir, os.path.join(work, "fieldsyncd.log"), a.server_arg)
        sampler = Sampler(server.proc.pid)
        sampler.start()

        names = set()
        t = time.monotonic()

        def make_replica(c):
            must([fs, "--db", c["db"], "init", "--server", server.addr, "--enroll", c["enroll"]])
            if a.bootstrap_first:
                must([fs, "--db", c["db"], "sync", "--json"])
            csv = os.path.join(c["dir"], "c.csv")
            with open(csv, "w") as f:
                f.write("name,code,city,credit_limit\n")
                for j in range(R):
                    f.write("Bench client %04d customer %03d,C%04d%03d,Hangzhou,%d\n"
                            % (c["i"], j, c["i"], j, 1000 + j))
            must([fs, "--db", c["db"], "customer", "import", csv])
            st = json.loads(must([fs, "--db", c["db"], "status", "--json"]))
            if st.get("pending_changes") != R:
                die("client %d: %r pending changes, expected %d" % (c["i"], st.get("pending_changes"), R))

        with ThreadPoolExecutor(a.jobs) as ex:
            list(ex.map(make_replica, clients))
        for c in clients:
            for j in range(R):
                names.add("Bench client %04d customer %03d" % (c["i"], j))
        t_replicas = time.monotonic() - t

        print("fieldsync concurrency bench: %d clients x %d pending customers, one fieldsyncd on %s"
              % (N, R, server.addr))
        print("  setup: %d users+devices enrolled in %.1f s; %d replicas + imports in %.1f s"
              % (N, t_enroll, N, t_replicas))
        print("  RLIMIT_NOFILE of this script and the server: soft %d, hard %d (server needs ~%d: "
              "see peak open fds)" % (nofile[0], nofile[1], need))
        print("  fieldsyncd args: %s" % (" ".join(a.server_arg) or "(defaults; --max-connections 1024)"))
        print("  replicas bootstrapped before round 1: %s" % ("yes (empty snapshot)" if a.bootstrap_first
                                                           else "no (round 1 includes each snapshot)"))
        sampler.reset()
        logpos = os.path.getsize(os.path.join(work, "fieldsyncd.log"))
        idle = server_threads(server.proc.pid)
        res1, wall1 = gate_round(fs, clients, work, "sync1")
        ok1 = report_round("round 1: %d clients push %d customers each, at once" % (N, R),
                           res1, wall1, sampler, N * R)
        report_log(work, gate_round.opened, wait_quiet(sampler, idle), logpos)

        # Every record on the server: against our own list of names, and a
        # read-only SQL count of the central database.
        rc, dump, err = run([admin, "--dir", srvdir, "dump"])
        if rc != 0:
            die("fieldsync-admin dump failed: %s" % err.strip())
        srv_names = []
        tables = {}
        for line in dump.splitlines():
            o = json.loads(line)
            tables[o["table"]] = tables.get(o["table"], 0) + 1
            if o["table"] == "customer":
                srv_names.append(o.get("name"))
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(srvdir, "server.db"), uri=True, timeout=30)
        try:
            sql_count = con.execute("SELECT count(*) FROM customer").fetchone()[0]
        finally:
            con.close()
        missing = names - set(srv_names)
        extra = len(srv_names) - len(set(srv_names)) + len(set(srv_names) - names)
        print("\nserver after round 1")
        print("  %-34s %d" % ("customers expected (this script)", len(names)))
        print("  %-34s %d  (tables: %s)" % ("customers in fieldsync-admin dump", len(srv_names),
                                           ", ".join("%s %d" % kv for kv in sorted(tables.items()))))
        print("  %-34s %d" % ("customers in server.db (SQL count)", sql_count))
        print("  %-34s %d missing, %d duplicate/unexpected" % ("name check", len(missing), extra))

        sampler.reset()
        logpos = os.path.getsize(os.path.join(work, "fieldsyncd.log"))
        idle = server_threads(server.proc.pid)
        res2, wall2 = gate_round(fs, clients, work, "sync2")
        ok2 = report_round("round 2: the same %d clients sync again at once (no new edits)" % N,
                           res2, wall2, sampler, 0)
        report_log(work, gate_round.opened, wait_quiet(sampler, idle), logpos)

        diverged = check_converged(fs, admin, srvdir, clients, a.sample, a.jobs,
                                   "convergence after round 2")

        # Settle: if the rounds above had failures, round 2 carried pushes the
        # clients before them never saw.  Sync every client again, a few at a
        # time, until a pass pushes nothing and fails nothing; then check
        # again.  This separates "lost or diverged" from "not finished yet".
        settled = None
        if (diverged or ok1 < N or ok2 < N) and not a.no_settle:
            for k in range(1, 4):
                t = time.monotonic()
                def one(c):
                    rc, out, err = run([fs, "--db", c["db"], "sync", "--json"])
                    s = json.loads(out.strip().splitlines()[-1]) if out.strip().startswith("{") else {}
                    return rc, s.get("pushed", 0), (err.strip().splitlines() or [""])[-1]
                with ThreadPoolExecutor(4) as ex:
                    rs = list(ex.map(one, clients))
                fails = [r for r in rs if r[0] != 0]
                pushed = sum(r[1] for r in rs)
                print("\nsettle pass %d (every client, 4 at a time): %d failed, %d changes pushed, %.1f s"
                      % (k, len(fails), pushed, time.monotonic() - t))
                for r in fails[:5]:
                    print("    exit %d: %s" % (r[0], r[2]))
                if not fails and pushed == 0:
                    break
            settled = check_converged(fs, admin, srvdir, clients, 0, a.jobs,
                                      "convergence after settling")

        srv_alive = server.proc.poll() is None
        sampler.stop()
        peak = sampler.hwm_kb
        rc = server.stop()
        server = None
        log = open(os.path.join(work, "fieldsyncd.log"), encoding="utf-8", errors="replace").read()
        refused = log.count("refusing a connection")
        hs = log.count("refused during handshake")
        closing = len(re.findall(r"conn \d+: closing", log))
        print("\nserver")
        print("  %-34s %.1f MB" % ("peak RSS over the whole run (VmHWM)", peak / 1024))
        print("  %-34s %s" % ("alive at the end / exit on SIGTERM", "%s / %s" % (srv_alive, rc)))
        print("  %-34s %d over max-connections, %d in handshake, %d closed with an error"
              % ("log: refused connections", refused, hs, closing))
        good = (ok1 == N and ok2 == N and not missing and extra == 0 and len(srv_names) == N * R
                and sql_count == N * R and not diverged and srv_alive and rc == 0)
        if settled is not None:
            print("after the settle passes every client equals the server dump: %s"
                  % ("yes (nothing lost; the failures above were not data loss)" if not settled else "NO"))
        print("\nRESULT: %s" % ("PASS" if good else "FAIL"))
        if not good or a.keep:
            print("work directory kept: %s (server log: %s/fieldsyncd.log)" % (work, work))
        return 0 if good else 1
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if server is not None:
            server.stop()
        if good and not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
