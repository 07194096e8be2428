#!/usr/bin/env python3
"""fault.py -- the randomized fault harness (issue 6): seeded, reproducible
scenarios of a real fieldsyncd and 2..8 real replicas on loopback, with
faults injected, checked against the promises at the end.

usage: fault.py [--scenarios N] [--seed S] [--soak SECONDS] [--clients N]
       fault.py --replay SEED            (one scenario, verbose)

Each scenario (random.Random(seed)):
  - a server directory (copied from a template made once: `fieldsync-admin
    init`, users, enrolments), fieldsyncd on 127.0.0.1:0, and a loopback
    proxy every client talks through (so connections can be cut and the
    server restarted behind it);
  - 2..8 replicas of users with different scopes (reps of the north or
    the south region, a manager of both, office users of the whole
    company) doing random offline work on random records: creating
    customers and contacts, editing random fields, deleting, moving a
    customer to the other region (users who see both), and now and then a
    rep creating a customer outside their region (which must be refused);
  - syncs in random order, and faults: a connection cut after a random
    number of bytes either way, a sync delivered 1..64 bytes at a time
    (short reads and writes), kill -9 of a client in the middle of its
    sync, a client syncing onto a full disk (its files may grow only a
    few kB), kill -9 of the server (restarted at once or at the next step),
    SIGTERM and restart of the server.
  - in some scenarios (--tiers), a regional server for the north region in
    between: the north reps sync with it, and it syncs with head office
    (its nightly sync, triggered by SIGUSR1) through a second proxy; its
    faults: the link cut either way, kill -9 of the regional server in
    the middle of its upstream sync or of a rep's sync, kill -9 of head
    office while the regional server syncs, restarts.
At the end the faults stop, every replica syncs until quiet, and:
  1. every change a client saw acknowledged (its sync exited 0 after the
     change was made) is on the server: in the merged log (fs_log) or kept
     as a conflict loser -- never silently dropped;
  2. every replica's `dump` equals `fieldsync-admin dump --user` for its
     user (the server's view of that user's scope), byte for byte;
  3. every replica lists the server's conflicts in its scope, each exactly
     once; every refused change is listed in its `rejections` and is not
     on the server;
  4. no process died except by our kill -9; no sanitizer report anywhere;
  5. with a regional server: it holds exactly head office's view of its
     region (`dump --user` of its relay user), its reps' acknowledged
     changes are at head office too, and both tiers hold the same
     conflicts of the region (by natural key).
A failing scenario prints its seed and the command that replays it.
"""
import argparse
import concurrent.futures
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2eutil  # noqa: E402
from e2eutil import ADMIN, FS, run, sanitizer_report  # noqa: E402

USERS = ["u%d" % i for i in range(8)]
# (role, --region) of each user; a scenario of N replicas uses the first N,
# so even two replicas see different regions.
SCOPES = [("rep", "north"), ("rep", "south"), ("office", "*"), ("rep", "north"),
          ("manager", "hq"), ("rep", "south"), ("rep", "north"), ("rep", "*")]
# The regions a --region value lets a user create customers in.
REGIONS = {"north": ["north"], "south": ["south"], "hq": ["north", "south"],
           "*": ["north", "south"]}
FIELDS = {"customer": ["city", "phone", "notes", "email", "postcode", "industry"],
          "contact": ["title", "phone", "notes", "department"]}


class Failure(Exception):
    pass


REGIONAL = [0, 3, 6]     # the north reps: at the regional server when tiered


def admin(d, *args):
    rc, out, err = run([ADMIN, "--dir", d] + list(args))
    if rc:
        raise Failure("admin %s failed: %s" % (" ".join(args), err))
    return out


def make_regional_template(root, hq):
    """The north regional server's directory: the north reps enrolled
    there, and a relay device for it at head office (template hq)."""
    srv = os.path.join(root, "template-north")
    admin(hq, "user", "add", "north-office", "--role", "office", "--region", "north")
    admin(hq, "device", "enroll", "north-office", "--relay", "--out",
          os.path.join(root, "enrol-relay"))
    admin(srv, "init")
    # Its departments come from head office at each upstream sync; the
    # same codes here let its users be made before the first one.
    admin(srv, "dept", "add", "hq", "--name", "Head office")
    admin(srv, "dept", "add", "north", "--name", "North", "--parent", "hq")
    admin(srv, "dept", "add", "south", "--name", "South", "--parent", "hq")
    for i in REGIONAL:
        role, region = SCOPES[i]
        admin(srv, "user", "add", USERS[i], "--role", role, "--region", region)
        admin(srv, "device", "enroll", USERS[i], "--out",
              os.path.join(root, "enrol-north-" + USERS[i]))
    return srv


def make_template(root):
    """A server directory with 8 users and one enrolled device each."""
    srv = os.path.join(root, "template")
    rc, out, err = run([ADMIN, "--dir", srv, "init"])
    if rc:
        raise Failure("admin init failed: %s" % err)
    for args in (["dept", "add", "hq", "--name", "Head office"],
                 ["dept", "add", "north", "--name", "North", "--parent", "hq"],
                 ["dept", "add", "south", "--name", "South", "--parent", "hq"]):
        rc, out, err = run([ADMIN, "--dir", srv] + args)
        if rc:
            raise Failure("admin %s failed: %s" % (" ".join(args), err))
    for u, (role, region) in zip(USERS, SCOPES):
        for args in (["user", "add", u, "--role", role, "--region", region],
                     ["device", "enroll", u, "--out", os.path.join(root, "enrol-" + u)]):
            rc, out, err = run([ADMIN, "--dir", srv] + args)
            if rc:
                raise Failure("admin %s failed: %s" % (" ".join(args), err))
    return srv


class Tier:
    """A server directory, its fieldsyncd, and the proxy its clients (or,
    for head office, also the regional server) talk through."""

    def __init__(self, sc, name, template, extra=()):
        self.sc = sc
        self.name = name
        self.dir = os.path.join(sc.dir, name)
        shutil.copytree(template, self.dir)
        self.extra = extra
        self.log = os.path.join(sc.dir, name + ".log")
        self.server = None
        self.proxy = None

    def start(self):
        self.server = e2eutil.Server(self.dir, self.log)
        self.server.start(*self.extra)
        if self.proxy:
            self.proxy.set_upstream(self.server.port)

    def up(self):
        return self.server is not None and self.server.proc is not None

    def stop(self, sig):
        p = self.server.proc
        if sig == signal.SIGKILL:
            p.kill()
            p.wait(30)
        else:
            p.send_signal(sig)
            try:
                rc = p.wait(30)
            except subprocess.TimeoutExpired:
                raise Failure("fieldsyncd (%s) did not stop on SIGTERM" % self.name)
            if rc != 0:
                raise Failure("fieldsyncd (%s) exited %d on SIGTERM" % (self.name, rc))
        self.server.proc = None

    def sql(self, q, params=()):
        return self.server.sql(q, params)

    def upstream_lines(self):
        """The regional server's finished upstream syncs: (ok, line)."""
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            return []
        return [("synced with" in l, l) for l in text.splitlines()
                if "upstream: sync" in l]


class Replica:
    def __init__(self, sc, idx, tier):
        self.sc = sc
        self.tier = tier
        self.user = USERS[idx]
        self.role, self.scope = SCOPES[idx]
        self.regions = REGIONS[self.scope]
        self.refused = []     # customers it created outside its scope
        self.db = os.path.join(sc.dir, "r%d.db" % idx)
        self.enrol = os.path.join(sc.root, ("enrol-north-" if tier.name == "north"
                                            else "enrol-") + self.user)
        self.records = {"customer": [], "contact": []}   # ids it knows
        self.unacked = []     # changes made since its last successful sync
        self.acked = []

    def cli(self, *args, timeout=60):
        rc, out, err = run([FS, "--db", self.db] + list(args), timeout=timeout)
        self.sc.check_output(err, "fieldsync %s" % args[0])
        if rc < 0:
            raise Failure("fieldsync %s on %s died from signal %d: %s"
                          % (" ".join(args[:2]), self.user, -rc, err[-500:]))
        return rc, out, err

    def must(self, *args):
        rc, out, err = self.cli(*args)
        if rc:
            raise Failure("fieldsync %s on %s exited %d: %s"
                          % (" ".join(args), self.user, rc, err.strip()))
        return out

    def learn(self):
        """Knows every record its replica holds (others' too, after a pull),
        so replicas edit the same records and conflicts happen."""
        recs = {"customer": [], "contact": []}
        for line in self.must("dump").splitlines():
            d = json.loads(line)
            if d["table"] in recs:
                recs[d["table"]].append(d["id"])
        self.records = recs

    def sync(self):
        rc, out, err = self.cli("sync", "--json", timeout=120)
        if rc == 0:
            self.acked += self.unacked
            self.unacked = []
            self.learn()
        elif rc not in (1, 5):
            raise Failure("sync on %s exited %d: %s" % (self.user, rc, err.strip()))
        return rc

    def sync_disk_full(self, room):
        """A sync whose process may not write any file past offset `room`
        (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG as on a full disk): the WAL
        fills up after a few pages, checkpoints into a bigger database file
        fail."""
        cap = room

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        p = subprocess.run([FS, "--db", self.db, "sync"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, preexec_fn=limit, timeout=120,
                           env=e2eutil._env())
        err = p.stderr.decode("utf-8", "replace")
        self.sc.check_output(err, "sync on a full disk")
        if p.returncode < 0:
            raise Failure("a sync on a full disk died from signal %d: %s"
                          % (-p.returncode, err[-500:]))
        if p.returncode == 0:
            self.acked += self.unacked
            self.unacked = []
        elif p.returncode not in (1, 5) or not err.strip():
            raise Failure("a sync on a full disk exited %d without saying why: %s"
                          % (p.returncode, err.strip()[-400:]))
        # rc 1 for want of room says so; it may also be the network (the
        # proxy's rare reset, see finish()), which this step does not judge
        if p.returncode == 1 and "disk" in err.strip().splitlines()[-1]:
            return 1
        return 0 if p.returncode == 0 else -1

    def sync_killed(self, delay):
        """Starts a sync and kill -9s it after delay seconds."""
        p = subprocess.Popen([FS, "--db", self.db, "sync"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=e2eutil._env())
        time.sleep(delay)
        p.kill()
        out, err = p.communicate()
        self.sc.check_output(err.decode("utf-8", "replace"), "killed sync")
        if p.returncode == 0:        # finished before the kill
            self.acked += self.unacked
            self.unacked = []
        elif p.returncode not in (1, 5, -signal.SIGKILL):
            raise Failure("a sync on %s exited %d before its kill: %s"
                          % (self.user, p.returncode, err[-400:]))


class Scenario:
    def __init__(self, seed, root, templates, nclients=None, verbose=False,
                 tiers=0.0):
        self.seed = seed
        self.rnd = random.Random(seed)
        self.root = root
        self.dir = tempfile.mkdtemp(prefix="s%d-" % seed, dir=root)
        self.verbose = verbose
        self.n = nclients or self.rnd.randint(2, 8)
        self.hq = Tier(self, "hq", templates[0])
        self.srvdir = self.hq.dir
        self.north = None
        self.up_proxy = None
        if (self.rnd.random() < tiers and
                any(i in REGIONAL for i in range(self.n))):
            # nightly at a time that does not come: SIGUSR1 syncs it
            far = time.strftime("%H:%M", time.localtime(time.time() + 43200))
            self.north = Tier(self, "north", templates[1],
                              ("--upstream", None, "--enroll",
                               os.path.join(root, "enrol-relay"), "--sync-at", far))
        self.faults = {"cut": 0, "kill_client": 0, "kill_server": 0, "restart": 0}

    @property
    def server(self):
        return self.hq.server

    def say(self, text):
        if self.verbose:
            print("  [%d] %s" % (self.seed, text), flush=True)

    def check_output(self, text, what):
        rep = sanitizer_report(text)
        if rep:
            raise Failure("sanitizer report from %s:\n%s" % (what, rep))

    def start_server(self, tier=None):
        tier = tier or self.hq
        tier.start()
        if tier is self.hq and self.up_proxy:
            self.up_proxy.set_upstream(tier.server.port)

    def stop_server(self, sig, tier=None):
        (tier or self.hq).stop(sig)

    def tiers(self):
        return [self.hq] + ([self.north] if self.north else [])

    def run(self):
        try:
            self.start_server()
            self.hq.proxy = e2eutil.Proxy(self.hq.server.port)
            self.proxy = self.hq.proxy
            if self.north:
                self.up_proxy = e2eutil.Proxy(self.hq.server.port)
                self.north.extra = tuple(self.up_proxy.addr if x is None else x
                                         for x in self.north.extra)
                self.north.start()
                self.north.proxy = e2eutil.Proxy(self.north.server.port)
                self.faults["tiered"] = 1
            reps = [Replica(self, i, self.north if self.north and i in REGIONAL
                            else self.hq) for i in range(self.n)]
            for r in reps:
                r.must("init", "--server", r.tier.proxy.addr, "--enroll", r.enrol)
            steps = self.rnd.randint(6, 16) + (6 if self.north else 0)
            for _ in range(steps):
                self.step(reps)
            self.finish(reps)
        finally:
            for p in (self.hq.proxy, self.up_proxy,
                      self.north.proxy if self.north else None):
                if p:
                    p.close()
            for t in self.tiers():
                if t.server and t.server.proc:
                    t.server.proc.kill()
                    t.server.proc.wait()
        for t in self.tiers():
            log = open(t.log, errors="replace").read()
            self.check_output(log, "fieldsyncd (%s)" % t.name)
        return self.faults

    # ------------------------------------------------- the regional tier

    def up_sync(self, timeout=60):
        """Kicks the regional server (SIGUSR1) and waits for the end of an
        upstream sync that started after the kick: True if it succeeded."""
        t = self.north
        before = len(t.upstream_lines())
        t.server.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = t.upstream_lines()
            # a sync in progress at the kick may end first; the kick then
            # runs another, so wait for one that ends after two lines if
            # the first one was quick
            if len(lines) > before:
                return lines[-1][0]
            if t.server.proc.poll() is not None:
                raise Failure("the regional server died: %s" % t.server.log_tail())
            time.sleep(0.05)
        raise Failure("the regional server's upstream sync did not end in %d s"
                      % timeout)

    def up_sync_ok(self):
        """Upstream syncs until two succeed in a row (the first may have
        been in progress before what it must carry arrived)."""
        ok = 0
        for _ in range(8):
            if self.up_sync():
                ok += 1
                if ok == 2:
                    return
            else:
                ok = 0
                self.faults["final_retry"] = self.faults.get("final_retry", 0) + 1
                time.sleep(0.2)
        raise Failure("the regional server could not sync with head office: %s"
                      % self.north.upstream_lines()[-1][1])

    def tier_step(self):
        rnd = self.rnd
        t = self.north
        if not self.hq.up():
            self.start_server()
        if not t.up():
            self.start_server(t)
        what = rnd.random()
        if what < 0.4:
            self.say("the regional server syncs upstream")
            self.up_sync()
        elif what < 0.55:
            d = rnd.choice(["c2s", "s2c"])
            n = rnd.randint(0, 12000)
            self.say("the regional server syncs, link cut %s after %d bytes" % (d, n))
            self.up_proxy.cut(**{d: n})
            self.up_sync()
            self.up_proxy.heal()
            self.faults["up_cut"] = self.faults.get("up_cut", 0) + 1
        elif what < 0.62:
            self.say("the regional server syncs over a link of 1..64-byte reads")
            self.up_proxy.chunky = random.Random(rnd.random())
            self.up_sync()
            self.up_proxy.chunky = None
            self.faults["up_short_io"] = self.faults.get("up_short_io", 0) + 1
        elif what < 0.77:
            delay = rnd.uniform(0.0, 0.15)
            self.say("kill -9 of the regional server %.3fs into its sync" % delay)
            t.server.proc.send_signal(signal.SIGUSR1)
            time.sleep(delay)
            self.stop_server(signal.SIGKILL, t)
            self.faults["kill_regional"] = self.faults.get("kill_regional", 0) + 1
            if rnd.random() < 0.5:
                self.start_server(t)
        elif what < 0.9:
            delay = rnd.uniform(0.0, 0.15)
            self.say("kill -9 of head office %.3fs into the regional sync" % delay)
            t.server.proc.send_signal(signal.SIGUSR1)
            time.sleep(delay)
            self.stop_server(signal.SIGKILL)
            self.faults["kill_server"] += 1
            if rnd.random() < 0.5:
                self.start_server()
        else:
            self.say("SIGTERM and restart of the regional server")
            self.stop_server(signal.SIGTERM, t)
            self.start_server(t)
            self.faults["restart"] += 1

    # ------------------------------------------------------------- steps

    def step(self, reps):
        rnd = self.rnd
        if self.north and rnd.random() < 0.3:
            return self.tier_step()
        r = rnd.choice(reps)
        for t in self.tiers():
            if not t.up():                     # a kill -9 left it down
                self.start_server(t)
        what = rnd.random()
        if what < 0.45:
            for _ in range(rnd.randint(1, 4)):
                self.edit(r)
        elif what < 0.70:
            self.say("%s syncs" % r.user)
            r.sync()
        elif what < 0.80:
            d = rnd.choice(["c2s", "s2c"])
            n = rnd.randint(0, 6000)
            self.say("%s syncs, cut %s after %d bytes" % (r.user, d, n))
            r.tier.proxy.cut(**{d: n})
            r.sync()
            r.tier.proxy.heal()
            self.faults["cut"] += 1
        elif what < 0.84:
            self.say("%s syncs over a connection that delivers 1..64 bytes at a time"
                     % r.user)
            r.tier.proxy.chunky = random.Random(rnd.random())
            r.sync()
            r.tier.proxy.chunky = None
            self.faults["short_io"] = self.faults.get("short_io", 0) + 1
        elif what < 0.865:
            room = rnd.randint(4096, 64000)
            rc = r.sync_disk_full(room)
            self.say("%s syncs with %d bytes of room on its disk (rc %d)"
                     % (r.user, room, rc))
            self.faults["disk_full"] = self.faults.get("disk_full", 0) + 1
            if rc == 1:      # it ran out of room, and said so
                self.faults["disk_full_failed"] = self.faults.get("disk_full_failed", 0) + 1
        elif what < 0.88:
            delay = rnd.uniform(0.0, 0.15)
            self.say("%s syncs, kill -9 after %.3fs" % (r.user, delay))
            r.sync_killed(delay)
            self.faults["kill_client"] += 1
        elif what < 0.95:
            self.say("kill -9 of %s's server while %s syncs" % (r.tier.name, r.user))
            p = subprocess.Popen([FS, "--db", r.db, "sync"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=e2eutil._env())
            time.sleep(rnd.uniform(0.0, 0.1))
            self.stop_server(signal.SIGKILL, r.tier)
            out, err = p.communicate(timeout=120)
            self.check_output(err.decode("utf-8", "replace"), "sync")
            if p.returncode == 0:
                r.acked += r.unacked
                r.unacked = []
            elif p.returncode < 0:
                raise Failure("a sync died from signal %d when the server was killed"
                              % -p.returncode)
            self.faults["kill_server"] += 1
            if rnd.random() < 0.5:
                self.start_server(r.tier)
        else:
            self.say("SIGTERM and restart of %s's server" % r.user)
            self.stop_server(signal.SIGTERM, r.tier)
            self.start_server(r.tier)
            self.faults["restart"] += 1

    def edit(self, r):
        rnd = self.rnd
        known = [(t, i) for t in r.records for i in r.records[t]]
        op = rnd.random()
        if op < 0.35 or not known:
            name = "n%d-%d" % (self.seed, rnd.randrange(10 ** 9))
            region = rnd.choice(r.regions)
            outside = len(r.regions) == 1 and rnd.random() < 0.08
            if outside:                  # the server must refuse it
                region = "south" if region == "north" else "north"
            out = r.must("customer", "add", "--name", name, "--city", "c0",
                         "--region", region).strip()
            if outside:
                r.refused.append(out)
                self.faults["scope_refused"] = self.faults.get("scope_refused", 0) + 1
                self.say("%s creates customer %s in %s, outside its scope"
                         % (r.user, out[-6:], region))
                return
            r.records["customer"].append(out)
            r.unacked.append(("customer", out, "name", name))
            self.say("%s creates customer %s in %s" % (r.user, out[-6:], region))
        elif op < 0.40 and len(r.regions) > 1 and r.records["customer"]:
            rid = rnd.choice(r.records["customer"])
            region = rnd.choice(r.regions)
            rc, out, err = r.cli("customer", "edit", rid, "--region", region)
            if rc == 0:
                r.unacked.append(("customer", rid, "region", region))
                self.faults["scope_move"] = self.faults.get("scope_move", 0) + 1
                self.say("%s moves customer %s to %s" % (r.user, rid[-6:], region))
            elif "no customer with id" not in err:
                raise Failure("move on %s exited %d: %s" % (r.user, rc, err.strip()))
        elif op < 0.45:
            custs = r.records["customer"]
            if not custs:
                return
            cust = rnd.choice(custs)
            name = "k%d" % rnd.randrange(10 ** 6)
            rc, out, err = r.cli("contact", "add", "--customer", cust, "--name", name)
            if rc == 0:
                r.records["contact"].append(out.strip())
                r.unacked.append(("contact", out.strip(), "name", name))
        elif op < 0.90:
            t, rid = rnd.choice(known)
            f = rnd.choice(FIELDS[t])
            v = "%s-%s-%d" % (f[:3], r.user, rnd.randrange(10 ** 6))
            if f == "email":
                v = "x%d@%s.example" % (rnd.randrange(10 ** 6), r.user)
            rc, out, err = r.cli(t, "edit", rid, "--" + f, v)
            if rc == 0:
                r.unacked.append((t, rid, f, v))
                self.say("%s sets %s.%s" % (r.user, t, f))
            elif ("no %s with id" % t) not in err:
                raise Failure("edit on %s exited %d: %s" % (r.user, rc, err.strip()))
        else:
            t, rid = rnd.choice(known)
            rc, out, err = r.cli(t, "delete", rid)
            self.say("%s deletes %s %s (rc %d)" % (r.user, t, rid[-6:], rc))

    # ------------------------------------------------------------ checks

    def final_sync(self, r):
        """A sync that fails on the way in (the test proxy has, rarely and
        only under heavy load, reset a connection it had not yet accepted)
        is retried; three failures in a row fail the scenario.  Retries
        are counted and reported."""
        for attempt in range(3):
            rc, out, err = r.cli("sync", "--json", timeout=120)
            if rc != 1:
                break
            self.faults["final_retry"] = self.faults.get("final_retry", 0) + 1
            last = err.strip()
            time.sleep(0.2)
        else:
            raise Failure("final sync of %s failed 3 times: %s\nproxy events: "
                          "%r" % (r.user, last, r.tier.proxy.events[-8:]))
        if rc == 0:
            r.acked += r.unacked
            r.unacked = []

    def finish(self, reps):
        for p in (self.hq.proxy, self.up_proxy,
                  self.north.proxy if self.north else None):
            if p:
                p.heal()
        for t in self.tiers():
            if not t.up():
                self.start_server(t)
        # Every replica syncs until quiet; with a regional server, its
        # reps' changes go up and head office's come down in between.
        north = [r for r in reps if r.tier is self.north]
        direct = [r for r in reps if r.tier is self.hq]
        for _ in range(2):
            for r in north:
                self.final_sync(r)
            if self.north:
                self.up_sync_ok()
            for r in direct:
                self.final_sync(r)
            if self.north:
                self.up_sync_ok()
            for r in north:
                self.final_sync(r)
        for r in reps:                       # quiet: nothing left to push
            if json.loads(r.must("status", "--json"))["pending_changes"] != 0:
                raise Failure("%s still has pending changes" % r.user)
        if self.north:
            st = json.loads(admin(self.north.dir, "upstream", "status", "--json"))
            if st["pending"] != 0:
                raise Failure("the regional server still has %d change(s) for "
                              "head office" % st["pending"])
            rc, want, err = run([ADMIN, "--dir", self.hq.dir, "dump", "--user",
                                 "north-office"])
            got = admin(self.north.dir, "dump")
            if rc or got != want:
                raise Failure("the regional server's dump differs from head "
                              "office's view of its region:\n%s"
                              % e2eutil._diff(want, got, "head office", "north"))
        for r in reps:
            rc, want, err = run([ADMIN, "--dir", r.tier.dir, "dump", "--user", r.user])
            if rc:
                raise Failure("admin dump --user %s failed: %s" % (r.user, err))
            got = r.must("dump")
            if got != want:
                raise Failure("%s's dump differs from %s's view of its scope:\n%s"
                              % (r.user, r.tier.name,
                                 e2eutil._diff(want, got, r.tier.name, r.user)))
        # refused changes: listed as rejections, on no server
        for r in reps:
            if not r.refused:
                continue
            listed = {j["record"] for j in json.loads(r.must("rejections", "--json"))}
            for rid in r.refused:
                if rid not in listed:
                    raise Failure("%s's customer %s, outside its scope, is not "
                                  "listed as a rejection" % (r.user, rid))
                for t in self.tiers():
                    if t.sql("SELECT 1 FROM customer WHERE id = ?", (rid,)):
                        raise Failure("%s's customer %s, outside its scope, "
                                      "reached %s" % (r.user, rid, t.name))
        # 1. acknowledged changes are at head office (through the regional
        # server for its reps)
        for r in reps:
            for (t, rid, f, v) in r.acked:
                hit = self.hq.sql(
                    "SELECT 1 FROM fs_log WHERE tbl = ?1 AND rid = ?2 AND ("
                    "(op = 'U' AND col = ?3 AND val = json_quote(?4)) OR "
                    "(op = 'I' AND json_extract(val, '$.' || ?3) = ?4)) "
                    "UNION ALL SELECT 1 FROM fs_conflict WHERE tbl = ?1 AND "
                    "rid = ?2 AND (col = ?3 OR col = '') AND "
                    "(loser_value = json_quote(?4) OR "
                    " json_extract(loser_value, '$.' || ?3) = ?4) LIMIT 1",
                    (t, rid, f, v))
                if not hit:
                    raise Failure("%s's acknowledged change %s %s.%s = %r is not "
                                  "at head office" % (r.user, t, rid, f, v))
        # 3. conflicts: the server's in each scope, the same list for the
        # same scope on the same server, each once
        ref = {}
        for r in reps:
            regions = REGIONS[r.scope]
            srv = r.tier.sql(
                "SELECT count(*) FROM fs_conflict WHERE scope IN (%s)"
                % ",".join("?" * len(regions)), tuple(regions))[0][0]
            confs = json.loads(r.must("conflicts", "--all", "--json"))
            keys = [(c["table"], c["record"], c["field"], c["loser_hlc"],
                     c["loser_device"]) for c in confs]
            if len(set(keys)) != len(keys):
                raise Failure("%s lists a conflict twice" % r.user)
            if len(confs) != srv:
                raise Failure("%s lists %d conflicts, %s holds %d in its "
                              "scope" % (r.user, len(confs), r.tier.name, srv))
            key = (r.tier.name, tuple(regions))
            if key not in ref:
                ref[key] = (r.user, confs)
            elif confs != ref[key][1]:
                raise Failure("%s's conflict list differs from %s's"
                              % (r.user, ref[key][0]))
        # 5. both tiers hold the region's conflicts (ids differ per server)
        if self.north:
            q = ("SELECT tbl, rid, col, loser_hlc, loser_device, "
                 "resolved_at IS NOT NULL FROM fs_conflict WHERE scope = 'north' "
                 "ORDER BY 1, 2, 3, 4, 5")
            a, b = self.hq.sql(q), self.north.sql(q)
            if a != b:
                raise Failure("head office and the regional server hold "
                              "different conflicts of the region:\nonly at head "
                              "office: %r\nonly at the regional server: %r"
                              % (sorted(set(a) - set(b))[:5],
                                 sorted(set(b) - set(a))[:5]))


def one(seed, root, templates, nclients, verbose, keep, tiers):
    """Runs one scenario (in a worker process): (seed, faults, error)."""
    sc = Scenario(seed, root, templates, nclients, verbose=verbose, tiers=tiers)
    try:
        faults = sc.run()
    except (Failure, AssertionError, subprocess.TimeoutExpired, OSError) as e:
        tail = ""
        for t in sc.tiers():
            try:
                tail += "---- %s ----\n%s" % (t.name, "".join(
                    open(t.log, errors="replace").readlines()[-30:]))
            except OSError:
                pass
        return seed, None, "%s\nserver logs (last lines):\n%s" % (e, tail)
    if not keep:
        shutil.rmtree(sc.dir, ignore_errors=True)
    return seed, faults, None


def collect(fut, n, failed, totals):
    """Counts one finished scenario: (passed so far, first failure)."""
    seed, faults, err = fut.result()
    if err:
        return n, failed or (seed, err)
    for k, v in faults.items():
        totals[k] = totals.get(k, 0) + v
    return n + 1, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None,
                    help="first seed (default: from the clock; printed)")
    ap.add_argument("--replay", type=int, default=None, help="run one seed, verbose")
    ap.add_argument("--soak", type=float, default=0, help="run for this many seconds")
    ap.add_argument("--clients", type=int, default=None, help="replicas per scenario")
    ap.add_argument("--tiers", type=float, default=0.2,
                    help="share of scenarios with a regional server (0.2)")
    ap.add_argument("--keep", action="store_true", help="keep the directories")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="scenarios run at once (default: the CPU count)")
    ap.add_argument("--dir", default=None, help="where scenarios run (default "
                    "/dev/shm when writable, else the temporary directory)")
    a = ap.parse_args()
    for b in (FS, ADMIN, e2eutil.FSD):
        if not os.access(b, os.X_OK):
            sys.exit("fault.py: %s not found (set FIELDSYNC_BIN_DIR)" % b)
    # tmpfs when there is one: the faults are process deaths (kill -9),
    # which the page cache survives, so fsync buys nothing here but time.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    root = tempfile.mkdtemp(prefix="fs-fault-", dir=a.dir or shm)
    me = os.path.relpath(os.path.abspath(__file__))
    try:
        template = make_template(root)
        templates = (template, make_regional_template(root, template))
        if a.replay is not None:
            seeds = [a.replay]
        else:
            first = a.seed if a.seed is not None else int(time.time()) % 1000000
            print("fault harness: first seed %d" % first, flush=True)
            seeds = (first + i for i in range(10 ** 9))
        totals = {}
        n = 0
        t0 = time.time()
        jobs = 1 if a.replay is not None else max(1, a.jobs)
        with concurrent.futures.ProcessPoolExecutor(jobs) as ex:
            pending = set()
            failed = None
            for seed in seeds:
                if a.replay is None and not a.soak and n + len(pending) >= a.scenarios:
                    break
                if a.soak and time.time() - t0 >= a.soak:
                    break
                if failed:
                    break
                pending.add(ex.submit(one, seed, root, templates, a.clients,
                                      a.replay is not None, a.keep, a.tiers))
                if len(pending) >= jobs:
                    done, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for f in done:
                        n, failed = collect(f, n, failed, totals)
            for f in concurrent.futures.as_completed(pending):
                n, failed = collect(f, n, failed, totals)
        if failed:
            print("FAILED scenario seed %d: %s" % failed, flush=True)
            print("replay: FIELDSYNC_BIN_DIR=%s python3 %s --replay %d"
                  % (e2eutil.BIN_DIR, me, failed[0]), flush=True)
            return 1
        print("fault harness: %d scenarios passed in %.0f s; faults injected: %s"
              % (n, time.time() - t0,
                 ", ".join("%s %d" % kv for kv in sorted(totals.items()))), flush=True)
        return 0
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
