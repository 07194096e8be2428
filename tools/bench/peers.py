#!/usr/bin/env python3
"""peers.py -- Fieldsync against its peers and its limits, one table of ratios.

    tools/bench/peers.py [--scale 0.1] [--seed 7] [--bin build/bin] [--no-peer]
                         [--only-peers] [--capture-n 100000] [--work DIR] [--keep]

One run, one data set (tools/gen/gen.py at --scale: 1.0 is 100k customers,
300k contacts, 50k opportunities, 200k visits, 150k orders, 1M order lines,
8 regions, 50 reps), every scenario measured in this run:

  bootstrap     a new device receives a full replica (an office user) and a
                territory replica (a rep of the first region): Fieldsync
                (`fieldsync init` + `fieldsync sync` against fieldsyncd
                --no-ledger) versus
                  - the floor: the same records (the record tables of the
                    server, or of the territory) as `sqlite3 .dump | gzip`,
                    then `gunzip | sqlite3` into a new file (time of both,
                    bytes = the .gz), and
                  - PouchDB: the same documents replicated from
                    express-pouchdb (LevelDB) into a PouchDB LevelDB database
                    (the territory through a server-side filter function on
                    the documents' "scope").
  incremental   50 reps, each with a territory replica, make 20 offline
                single-field edits each (1,000 in all, on customers, contacts,
                visits, opportunities of their territory; no two on the same
                record), then every rep syncs in turn (push + pull), twice:
                time and bytes per changed field, Fieldsync versus PouchDB.
  apply         tools/bench/apply_bench (server merge vs raw SQLite inserts).
  500 clients   tools/bench/concurrency.py -n 500 -r 100.
  capture       tools/bench/capture_bench (change capture on local writes).
  ledger        tools/bench/ledger_bench.sh (fieldsyncd with / without it).

Bytes on the wire are counted the same way for both systems: a loopback
TCP proxy in this script sits between every client and its server and
counts the bytes it forwards each way.  Fieldsync's are TLS 1.2 (handshake
and record overhead included); PouchDB's are plain HTTP/1.1 (headers
included).  Both clients go through the proxy, so it costs both the same.
Times are wall-clock on this machine; the ratios are what to read.

PouchDB (pouchdb, express-pouchdb, express) is installed with npm into
~/.cache/fieldsync-bench/npm (FS_BENCH_NPM to change it), never into the
repository; without npm or node the peer columns say why they are empty.
Stdlib only.  Data under /tmp (removed unless --keep).
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tools", "bench")
REC_TABLES = ["customer", "contact", "product", "price_list", "price_list_item", "visit",
              "opportunity", "quote", "quote_line", "sales_order", "order_line", "payment"]


def log(*a):
    print("peers:", *a, file=sys.stderr, flush=True)


# -- a byte-counting TCP proxy on loopback --------------------------------

class Proxy:
    """Forwards 127.0.0.1:port to target; counts bytes up (client to server)
    and down.  snapshot() reads the counters."""

    def __init__(self, target):
        self.target = target
        self.up = self.down = 0
        self.conns = 0
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1024)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._pipe, args=(c, s, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, "down"), daemon=True).start()

    def _pipe(self, a, b, way):
        buf = bytearray(1 << 18)
        mv = memoryview(buf)
        try:
            while True:
                n = a.recv_into(buf)
                if n <= 0:
                    break
                b.sendall(mv[:n])
                with self.lock:
                    if way == "up":
                        self.up += n
                    else:
                        self.down += n
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def snapshot(self):
        with self.lock:
            return self.up, self.down, self.conns


class Meter:
    """with Meter(proxy) as m: ...; then m.seconds, m.up, m.down."""

    def __init__(self, proxy):
        self.p = proxy

    def __enter__(self):
        time.sleep(0.05)   # let earlier connections' last bytes be counted
        self.u0, self.d0, _ = self.p.snapshot() if self.p else (0, 0, 0)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
        time.sleep(0.1)
        u, d, _ = self.p.snapshot() if self.p else (0, 0, 0)
        self.up, self.down = u - self.u0, d - self.d0
        return False

    @property
    def total(self):
        return self.up + self.down


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw).stdout


def wait_line(path, prefix, proc, secs=600):
    t = time.time() + secs
    while time.time() < t:
        if os.path.exists(path):
            for line in open(path):
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s)" % (proc.args[0], proc.returncode))
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for %r in %s" % (prefix, path))


# -- the floor: sqlite3 .dump | gzip, then gunzip | sqlite3 ----------------

def floor(work, name, server_db, scope):
    src = server_db
    tables = [t for t in REC_TABLES]
    if scope is not None:
        # The territory's records in a database of their own (not timed).
        src = os.path.join(work, "floor-%s-src.db" % name)
        c = sqlite3.connect(src)
        c.execute("ATTACH ? AS s", (server_db,))
        for (sql,) in c.execute("SELECT sql FROM s.sqlite_master WHERE type = 'table' AND name IN (%s)"
                                % ",".join("'%s'" % t for t in tables)).fetchall():
            c.execute(sql)
        for t in tables:
            c.execute('INSERT INTO main."%s" SELECT * FROM s."%s" WHERE id IN (SELECT rid FROM s.fs_log '
                      "WHERE tbl = ? AND op = 'I' AND scope IN (?, ''))" % (t, t), (t, scope))
        for (sql,) in c.execute("SELECT sql FROM s.sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                "AND tbl_name IN (%s)" % ",".join("'%s'" % t for t in tables)).fetchall():
            c.execute(sql)
        c.commit()
        c.close()
    gz = os.path.join(work, "floor-%s.sql.gz" % name)
    dst = os.path.join(work, "floor-%s-dst.db" % name)
    t0 = time.monotonic()
    subprocess.run("sqlite3 '%s' '.dump %s' | gzip > '%s'" % (src, " ".join(tables), gz),
                   shell=True, check=True)
    t1 = time.monotonic()
    subprocess.run("gunzip -c '%s' | sqlite3 '%s'" % (gz, dst), shell=True, check=True)
    t2 = time.monotonic()
    n = sqlite3.connect(dst).execute(" + ".join("(SELECT count(*) FROM \"%s\")" % t for t in tables)
                                     .join(("SELECT ", ""))).fetchone()[0]
    return {"seconds": t2 - t0, "dump_gzip_s": t1 - t0, "import_s": t2 - t1,
            "bytes": os.path.getsize(gz), "records": n}


# -- Fieldsync --------------------------------------------------------------

class Fieldsync:
    def __init__(self, a, work, srv):
        self.bin = os.path.join(work, "bin")
        self.work = work
        self.srv = srv
        self.proc = None
        self.proxy = None

    def admin(self, *args):
        return run([os.path.join(self.bin, "fieldsync-admin"), "--dir", self.srv] + list(args))

    def cli(self, db, *args):
        return run([os.path.join(self.bin, "fieldsync"), "--db", db] + list(args))

    def start(self):
        out = os.path.join(self.work, "fieldsyncd.out")
        self.proc = subprocess.Popen([os.path.join(self.bin, "fieldsyncd"), "--dir", self.srv, "--listen",
                                      "127.0.0.1:0", "--no-ledger"], stdout=open(out, "w"),
                                     stderr=open(os.path.join(self.work, "fieldsyncd.log"), "w"))
        host, port = wait_line(out, "listening on ", self.proc).rsplit(":", 1)
        self.proxy = Proxy((host, int(port)))
        self.addr = "127.0.0.1:%d" % self.proxy.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def enroll(self, user):
        d = os.path.join(self.work, "enroll", user)
        if not os.path.exists(d):
            os.makedirs(os.path.dirname(d), exist_ok=True)
            self.admin("device", "enroll", user, "--out", d)
        return d

    def bootstrap(self, user, db):
        """init + first sync of a new device; returns the sync's --json."""
        en = self.enroll(user)
        self.cli(db, "init", "--server", self.addr, "--enroll", en)
        out = self.cli(db, "sync", "--json")
        return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])

    def sync(self, db):
        out = self.cli(db, "sync", "--json")
        return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


# -- PouchDB ----------------------------------------------------------------

class Pouch:
    def __init__(self, work, npm_dir):
        self.work = work
        self.npm = npm_dir
        self.server = self.client = None
        self.proxy = None
        self.why = None

    def install(self):
        if not shutil.which("node") or not shutil.which("npm"):
            self.why = "node/npm not installed: PouchDB peer skipped"
            return False
        mods = os.path.join(self.npm, "node_modules")
        if not all(os.path.exists(os.path.join(mods, m)) for m in ("pouchdb", "express-pouchdb", "express")):
            os.makedirs(self.npm, exist_ok=True)
            pj = os.path.join(self.npm, "package.json")
            if not os.path.exists(pj):
                open(pj, "w").write('{"name": "fieldsync-bench-peer", "private": true}\n')
            log("npm install pouchdb express-pouchdb express into %s" % self.npm)
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "pouchdb@9",
                                "express-pouchdb@4", "express@4"], cwd=self.npm,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                self.why = "npm install failed: PouchDB peer skipped (%s)" % r.stdout.strip().splitlines()[-1:]
                return False
        self.env = dict(os.environ, NODE_PATH=mods)
        self.version = json.load(open(os.path.join(mods, "pouchdb", "package.json")))["version"]
        self.node = run(["node", "--version"]).strip()
        return True

    def start(self, docs):
        d = os.path.join(self.work, "pouch-server")
        os.makedirs(d, exist_ok=True)
        out = os.path.join(self.work, "pouch-server.out")
        t0 = time.monotonic()
        self.server = subprocess.Popen(["node", os.path.join(BENCH, "pouch_peer.js"), "server", d, docs],
                                       stdout=open(out, "w"),
                                       stderr=open(os.path.join(self.work, "pouch-server.log"), "w"),
                                       env=self.env)
        port = int(wait_line(out, "listening ", self.server, secs=7200))
        self.load_s = time.monotonic() - t0
        self.proxy = Proxy(("127.0.0.1", port))
        self.url = "http://127.0.0.1:%d/crm" % self.proxy.port
        cd = os.path.join(self.work, "pouch-clients")
        os.makedirs(cd, exist_ok=True)
        self.client = subprocess.Popen(["node", os.path.join(BENCH, "pouch_peer.js"), "client", cd],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=open(os.path.join(self.work, "pouch-client.log"), "w"),
                                       text=True, env=self.env)

    def call(self, **cmd):
        self.client.stdin.write(json.dumps(cmd) + "\n")
        self.client.stdin.flush()
        r = json.loads(self.client.stdout.readline())
        if not r.get("ok"):
            raise RuntimeError("pouch client: %s" % r.get("error"))
        return r

    def stop(self):
        for p in (self.client, self.server):
            if p and p.poll() is None:
                if p is self.client:
                    p.stdin.close()
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.terminate()
                else:
                    p.terminate()
                p.wait()


# -- the edits of the incremental scenario ----------------------------------

EDITABLE = [("customer", "customer", "phone", 8), ("contact", "contact", "mobile", 6),
            ("visit", "visit", "outcome", 3), ("opportunity", "opportunity", "stage", 3)]
STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]


def plan_edits(server_db, reps, seed):
    """rep name -> [(table, noun, id, field, new value)], 20 per rep, records
    of the rep's region, no record edited twice."""
    rng = random.Random(seed * 7919 + 1)
    c = sqlite3.connect("file:%s?mode=ro" % server_db, uri=True)
    plan = {r["name"]: [] for r in reps}
    by_region = {}
    for r in reps:
        by_region.setdefault(r["region"], []).append(r["name"])
    for region, names in by_region.items():
        for tbl, noun, field, k in EDITABLE:
            ids = [x for (x,) in c.execute(
                "SELECT rid FROM fs_log WHERE tbl = ? AND op = 'I' AND scope = ? ORDER BY seq", (tbl, region))]
            pick = rng.sample(ids, min(len(ids), k * len(names)))
            cur = dict(c.execute('SELECT id, "%s" FROM "%s" WHERE id IN (%s)' % (
                field, tbl, ",".join("'%s'" % x for x in pick))).fetchall()) if pick else {}
            for i, rid in enumerate(pick):
                who = names[i // k] if i // k < len(names) else None
                if not who:
                    break
                if field == "stage":
                    v = rng.choice([s for s in STAGES if s != cur.get(rid)])
                elif field == "outcome":
                    v = "Follow-up %d: customer confirmed the order volume" % rng.randint(1, 99999)
                elif field == "phone":
                    v = "+86 21 6%07d" % rng.randint(0, 9999999)
                else:
                    v = "+86 139 %04d %04d" % (rng.randint(0, 9999), rng.randint(0, 9999))
                plan[who].append((tbl, noun, rid, field, v))
    return plan


def csv_quote(v):
    return '"%s"' % v.replace('"', '""') if any(ch in v for ch in ',"\n') else v


# -- the existing benchmarks, parsed ----------------------------------------

def existing(a, work, res):
    bind = os.path.join(work, "bin")
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp, exist_ok=True)
    log("capture_bench %d" % a.capture_n)
    out = run([os.path.join(bind, "capture_bench"), str(a.capture_n), tmp])
    open(os.path.join(work, "capture.txt"), "w").write(out)
    log("apply_bench 100000")
    out = run([os.path.join(bind, "apply_bench"), "100000", tmp])
    open(os.path.join(work, "apply.txt"), "w").write(out)
    log("concurrency.py -n 500 -r 100")
    r = subprocess.run([sys.executable, os.path.join(BENCH, "concurrency.py"), "-n", "500", "-r", "100",
                        "--bin", bind, "--sample", "50", "--work", os.path.join(work, "conc")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    open(os.path.join(work, "concurrency.txt"), "w").write(r.stdout)
    log("ledger_bench.sh 20000 3")
    out = run([os.path.join(BENCH, "ledger_bench.sh"), bind, "20000", "3"])
    open(os.path.join(work, "ledger.txt"), "w").write(out)
    parse_existing(work, res)


def parse_existing(work, res):
    """The outputs of the existing benchmarks (WORK/*.txt) into res."""
    def read(name):
        f = os.path.join(work, name)
        return open(f).read() if os.path.exists(f) else ""
    out = read("capture.txt")
    for ph in ("insert", "update"):
        m = re.search(r"^%s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)x" % ph, out, re.M)
        if m:
            res["capture_" + ph] = {"raw": float(m.group(1)), "shipped": float(m.group(4)),
                                    "ratio": float(m.group(5))}
    out = read("apply.txt")
    for ph in ("create", "update"):
        # the merge's line, then the floor's (raw + a bare log and clock row)
        ms = list(re.finditer(r"^%s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)\s+([\d.]+)x" % ph,
                              out, re.M))
        if ms:
            res["apply_" + ph] = {"raw": float(ms[0].group(1)), "merge": float(ms[0].group(2)),
                                  "ratio": float(ms[0].group(4))}
        if len(ms) > 1:
            res["apply_" + ph]["floor"] = float(ms[1].group(2))
            res["apply_" + ph]["floor_ratio"] = float(ms[1].group(4))
    out = read("concurrency.txt")
    rounds = []
    for m in re.finditer(r"clients succeeded\s+(\d+) / (\d+).*?client time p50 / p95 / p99 / max\s+"
                         r"([\d.]+) / ([\d.]+) / ([\d.]+) / ([\d.]+) s", out, re.S):
        rounds.append({"ok": int(m.group(1)), "n": int(m.group(2)), "p50": float(m.group(3)),
                       "p99": float(m.group(5)), "max": float(m.group(6))})
    if out:
        res["clients"] = {"rounds": rounds, "pass": "RESULT: PASS" in out}
    out = read("ledger.txt")
    m = re.search(r"push creations.*ratio on/off\s+([\d.]+)", out)
    m2 = re.search(r"push edits.*ratio on/off\s+([\d.]+)", out)
    m3 = re.search(r"end to end.*ratio on/off\s+([\d.]+)", out)
    if m:
        res["ledger"] = {"create": float(m.group(1)), "edit": float(m2.group(1)) if m2 else None,
                         "e2e": float(m3.group(1)) if m3 else None}


# -- the table --------------------------------------------------------------

def fmt_b(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e6 else "%.1f kB" % (n / 1e3) if n >= 1e4 else "%d B" % n


def table(a, res, info, pouch):
    rows = []
    add = lambda *r: rows.append(r)
    peer_note = pouch.why or ""
    for kind in ("full", "territory"):
        fs, fl, pd = res.get("boot_fs_" + kind), res.get("boot_floor_" + kind), res.get("boot_pouch_" + kind)
        if not fs:
            continue
        what = "bootstrap, %s replica (%d records)" % (kind, fs["records"])
        add(what + ": time", "%.2f s" % fs["seconds"], "floor %.2f s" % fl["seconds"],
            "%.2fx floor" % (fs["seconds"] / fl["seconds"]), "<= 2x floor",
            "met" if fs["seconds"] <= 2 * fl["seconds"] else "MISSED")
        add(what + ": bytes", fmt_b(fs["bytes"]), "floor %s" % fmt_b(fl["bytes"]),
            "%.2fx floor" % (fs["bytes"] / fl["bytes"]), "", "")
        if pd:
            sp = pd["seconds"] / fs["seconds"]
            add(what + ": time vs PouchDB", "%.2f s" % fs["seconds"], "PouchDB %.2f s" % pd["seconds"],
                "PouchDB %.1fx slower" % sp, ">= 10x faster", "met" if sp >= 10 else "MISSED")
            add(what + ": bytes vs PouchDB", fmt_b(fs["bytes"]), "PouchDB %s" % fmt_b(pd["bytes"]),
                "%.2fx PouchDB" % (fs["bytes"] / pd["bytes"]), "", "")
        else:
            add(what + ": vs PouchDB", "", "skipped", peer_note, ">= 10x faster", "not run")
    inc, pinc = res.get("inc_fs"), res.get("inc_pouch")
    if inc:
        n = inc["edits"]
        add("incremental, %d edits / %d reps: bytes per changed field" % (n, inc["reps"]),
            "%.0f B" % (inc["bytes"] / n), "PouchDB %.0f B" % (pinc["bytes"] / n) if pinc else "skipped",
            "%.3fx PouchDB" % (inc["bytes"] / pinc["bytes"]) if pinc else peer_note, "<= 0.2x PouchDB",
            ("met" if inc["bytes"] <= 0.2 * pinc["bytes"] else "MISSED") if pinc else "not run")
        add("  of which push (up) per changed field", "%.0f B" % (inc["push_up"] / n),
            "PouchDB %.0f B" % (pinc["push_up"] / n) if pinc else "",
            "%.3fx PouchDB" % (inc["push_up"] / pinc["push_up"]) if pinc else "", "", "")
        add("incremental: time, 2 sync rounds of every rep", "%.2f s" % inc["seconds"],
            "PouchDB %.2f s" % pinc["seconds"] if pinc else "skipped",
            "PouchDB %.1fx slower" % (pinc["seconds"] / inc["seconds"]) if pinc else "", "", "")
        add("incremental: fields delivered (pushed / pulled)", "%d / %d" % (inc["pushed"], inc["pulled"]),
            "PouchDB %d / %d docs" % (pinc["pushed"], pinc["pulled"]) if pinc else "", "", "", "")
    for ph in ("create", "update"):
        x = res.get("apply_" + ph)
        if x:
            add("server apply throughput, %s (100k)" % ph, "%.3f s" % x["merge"], "raw SQLite %.3f s" % x["raw"],
                "%.2fx raw" % x["ratio"], ">= 0.5x raw", "met" if x["ratio"] >= 0.5 else "MISSED")
            if "floor" in x:
                add("  floor: raw + a bare log row and clock row per change, %s" % ph,
                    "%.3f s" % x["floor"], "raw SQLite %.3f s" % x["raw"],
                    "%.2fx raw" % x["floor_ratio"], "", "")
    c = res.get("clients")
    if c:
        for i, r in enumerate(c["rounds"]):
            add("500 clients x 100 changes, round %d" % (i + 1), "%d / %d ok" % (r["ok"], r["n"]),
                "p50 %.2f s, p99 %.2f s" % (r["p50"], r["p99"]), "errors %d" % (r["n"] - r["ok"]),
                "0 errors", "met" if r["ok"] == r["n"] else "MISSED")
        add("500 clients: concurrency.py verdict (rounds + convergence)", "PASS" if c["pass"] else "FAIL", "", "", "", "")
    for ph in ("insert", "update"):
        x = res.get("capture_" + ph)
        if x:
            add("change capture, local %s (%dk)" % (ph, a.capture_n // 1000), "%.3f s" % x["shipped"],
                "raw SQLite %.3f s" % x["raw"], "%.2fx raw" % x["ratio"], "<= 1.5x raw (issue 2)",
                "met" if x["ratio"] <= 1.5 else "MISSED")
    lg = res.get("ledger")
    if lg and lg["create"]:
        add("ledger on / off, push throughput", "creations %.2f" % lg["create"], "edits %.2f" % lg["edit"],
            "end to end %.2f" % lg["e2e"], ">= 0.7 (issue 4)",
            "met" if min(lg["create"], lg["edit"]) >= 0.7 else "MISSED")
    hdr = ("scenario", "Fieldsync", "compared with", "ratio", "goal", "")
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(6)]
    print()
    print("Fieldsync vs peers and limits -- scale %g (%d records: %s), seed %d" % (
        a.scale, info["records"], ", ".join("%d %s" % (info[k], k) for k in
                                            ("customers", "contacts", "opportunities", "visits", "orders",
                                             "order_lines", "products")), a.seed))
    print("machine: %d cores, %s; %s" % (os.cpu_count(), _cpu(), peer_note or "PouchDB %s (LevelDB) on node %s"
                                         % (pouch.version, getattr(pouch, "node", "?"))))
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |")
    print()
    json.dump(res, open(os.path.join(a.work_dir, "results.json"), "w"), indent=1)


def _cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


# -- main -------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--no-peer", action="store_true", help="skip PouchDB")
    ap.add_argument("--only-peers", action="store_true",
                    help="bootstrap and incremental only (skip apply, 500 clients, capture, ledger)")
    ap.add_argument("--bootstrap-only", action="store_true",
                    help="with --only-peers: bootstrap only (at --scale 1 the incremental "
                         "scenario's PouchDB setup alone takes about half an hour)")
    ap.add_argument("--capture-n", type=int, default=100000)
    ap.add_argument("--work", help="work directory (default: a new one under /tmp)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--table-from", metavar="WORK",
                    help="print the table again from a kept work directory (results.json, *.txt)")
    a = ap.parse_args()
    if a.table_from:
        a.work_dir = a.table_from
        res = json.load(open(os.path.join(a.table_from, "results.json")))
        parse_existing(a.table_from, res)
        pouch = Pouch(a.table_from, "")
        pouch.version, pouch.node = res.get("pouch_version", "?"), res.get("pouch_node", "?")
        a.scale, a.seed = res.get("scale", a.scale), res.get("seed", a.seed)
        if "boot_pouch_full" not in res:
            pouch.why = "PouchDB not run"
        table(a, res, res["info"], pouch)
        return 0
    work = a.work or tempfile.mkdtemp(prefix="fs-peers-")
    os.makedirs(work, exist_ok=True)
    a.work_dir = work
    os.makedirs(os.path.join(work, "bin"))
    for b in ("fieldsync", "fieldsync-admin", "fieldsyncd", "capture_bench", "apply_bench"):
        shutil.copy2(os.path.join(a.bin, b), os.path.join(work, "bin", b))
    res = {}
    pouch = Pouch(work, os.environ.get("FS_BENCH_NPM",
                                       os.path.expanduser("~/.cache/fieldsync-bench/npm")))
    res["scale"], res["seed"] = a.scale, a.seed
    if a.no_peer:
        pouch.why = "PouchDB skipped (--no-peer)"
    fs = None
    ok = False
    try:
        srv = os.path.join(work, "srv")
        docs = os.path.join(work, "docs.ndjson")
        log("generating scale %g into %s" % (a.scale, srv))
        info = json.loads(run([sys.executable, os.path.join(ROOT, "tools", "gen", "gen.py"), "--dir", srv,
                               "--scale", str(a.scale), "--seed", str(a.seed), "--docs", docs,
                               "--admin", os.path.join(work, "bin", "fieldsync-admin")]))
        log("generated %d records in %.0f s" % (info["records"], info["seconds"]))
        res["info"] = info
        a.scale_info = a.scale
        fs = Fieldsync(a, work, srv)
        fs.admin("user", "add", "office.boss", "--role", "office", "--region", "*")
        reps = info["reps"]
        region0 = info["regions"][0]
        rep0 = [r for r in reps if r["region"] == region0][0]["name"]
        for r in reps:
            fs.enroll(r["name"])
        fs.enroll("office.boss")
        fs.start()
        if not a.no_peer and pouch.install():
            log("PouchDB server: loading %d documents" % info["records"])
            pouch.start(docs)
            log("PouchDB server loaded in %.0f s" % pouch.load_s)
            res["pouch_version"], res["pouch_node"] = pouch.version, pouch.node

        # -- bootstrap
        dbs = os.path.join(work, "replicas")
        os.makedirs(dbs)
        for kind, user, scope in (("full", "office.boss", None), ("territory", rep0, region0)):
            db = os.path.join(dbs, user + ".db")
            log("bootstrap %s: fieldsync" % kind)
            with Meter(fs.proxy) as m:
                en = fs.enroll(user)
                fs.cli(db, "init", "--server", fs.addr, "--enroll", en)
                j = fs.sync(db)
            res["boot_fs_" + kind] = {"seconds": m.seconds, "bytes": m.total, "up": m.up, "down": m.down,
                                      "payload_in": j["bytes_in"], "records": j["pulled"]}
            log("  %.2f s, %s, %d records" % (m.seconds, fmt_b(m.total), j["pulled"]))
            log("bootstrap %s: floor" % kind)
            res["boot_floor_" + kind] = floor(work, kind, os.path.join(srv, "server.db"), scope)
            if res["boot_floor_" + kind]["records"] != j["pulled"]:
                log("  WARNING: floor has %d records, fieldsync pulled %d"
                    % (res["boot_floor_" + kind]["records"], j["pulled"]))
            log("  %.2f s, %s" % (res["boot_floor_" + kind]["seconds"], fmt_b(res["boot_floor_" + kind]["bytes"])))
            if pouch.client:
                log("bootstrap %s: PouchDB" % kind)
                with Meter(pouch.proxy) as m:
                    r = pouch.call(op="bootstrap", name=user, url=pouch.url, scope=scope)
                res["boot_pouch_" + kind] = {"seconds": r["seconds"], "bytes": m.total, "up": m.up,
                                             "down": m.down, "docs": r["docs_written"]}
                log("  %.2f s, %s, %d docs" % (r["seconds"], fmt_b(m.total), r["docs_written"]))
                # setup, not measured: the push direction's first checkpoint
                pouch.call(op="push", name=user, url=pouch.url)
        # -- incremental (not with --bootstrap-only)
        if not a.bootstrap_only:
            log("incremental: setting up %d rep replicas (not measured)" % len(reps))
            rep_db = {r["name"]: os.path.join(dbs, r["name"] + ".db") for r in reps}
            todo = [r for r in reps if r["name"] != rep0]
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(2) as ex:
                list(ex.map(lambda r: fs.bootstrap(r["name"], rep_db[r["name"]]), todo))
            plan = plan_edits(os.path.join(srv, "server.db"), reps, a.seed)
            n_edits = sum(len(v) for v in plan.values())
            if pouch.client:
                tpl = {region0: rep0}
                for r in reps:
                    if r["region"] not in tpl:
                        log("  PouchDB template replica for region %s" % r["region"])
                        pouch.call(op="bootstrap", name=r["name"], url=pouch.url, scope=r["region"])
                        pouch.call(op="push", name=r["name"], url=pouch.url)
                        tpl[r["region"]] = r["name"]
                for r in reps:
                    if r["name"] != tpl[r["region"]]:
                        pouch.call(op="clone", **{"from": tpl[r["region"]]}, name=r["name"], url=pouch.url,
                                   scope=r["region"])
            for r in reps:
                name = r["name"]
                by_noun = {}
                for tbl, noun, rid, field, v in plan[name]:
                    by_noun.setdefault((noun, field), []).append((rid, v))
                for (noun, field), items in by_noun.items():
                    f = os.path.join(work, "edit-%s-%s.csv" % (name, noun))
                    with open(f, "w") as fh:
                        fh.write("id,%s\n" % field)
                        fh.writelines("%s,%s\n" % (rid, csv_quote(v)) for rid, v in items)
                    fs.cli(rep_db[name], noun, "import", f)
                pend = json.loads(fs.cli(rep_db[name], "status", "--json"))["pending_changes"]
                if pend != len(plan[name]):
                    log("  WARNING: %s has %d pending changes for %d edits" % (name, pend, len(plan[name])))
                if pouch.client:
                    pouch.call(op="edit", name=name, edits=[[rid, field, v] for _, _, rid, field, v in plan[name]])
            log("incremental: fieldsync, %d edits, 2 rounds" % n_edits)
            tot = {"seconds": 0.0, "bytes": 0, "push_up": 0, "pushed": 0, "pulled": 0, "payload": 0}
            for rnd in (1, 2):
                for r in reps:
                    with Meter(fs.proxy) as m:
                        j = fs.sync(rep_db[r["name"]])
                    tot["seconds"] += m.seconds
                    tot["bytes"] += m.total
                    tot["push_up"] += m.up
                    tot["pushed"] += j["pushed"]
                    tot["pulled"] += j["pulled"]
                    tot["payload"] += j["bytes_in"] + j["bytes_out"]
            tot.update(edits=n_edits, reps=len(reps))
            res["inc_fs"] = tot
            log("  %.2f s, %s, pushed %d pulled %d" % (tot["seconds"], fmt_b(tot["bytes"]), tot["pushed"],
                                                       tot["pulled"]))
            if pouch.client:
                log("incremental: PouchDB, 2 rounds")
                tot = {"seconds": 0.0, "bytes": 0, "push_up": 0, "pushed": 0, "pulled": 0}
                for rnd in (1, 2):
                    for r in reps:
                        with Meter(pouch.proxy) as m:
                            j = pouch.call(op="sync", name=r["name"], url=pouch.url, scope=r["region"])
                        tot["seconds"] += j["seconds"]
                        tot["bytes"] += m.total
                        tot["push_up"] += m.up
                        tot["pushed"] += j["pushed"]
                        tot["pulled"] += j["pulled"]
                res["inc_pouch"] = tot
                log("  %.2f s, %s, pushed %d pulled %d" % (tot["seconds"], fmt_b(tot["bytes"]), tot["pushed"],
                                                           tot["pulled"]))
        fs.stop()
        pouch.stop()
        if not a.only_peers:
            try:
                existing(a, work, res)
            except subprocess.CalledProcessError as e:
                log("FAILED: %s: %s" % (" ".join(e.cmd), (e.stderr or e.stdout or "").strip()[-300:]))
                res["failed"] = " ".join(e.cmd)
        table(a, res, info, pouch)
        ok = True
    finally:
        if fs:
            fs.stop()
        pouch.stop()
        json.dump(res, open(os.path.join(work, "results.json"), "w"), indent=1)
        if a.keep or not ok:
            log("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
