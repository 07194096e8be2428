#!/usr/bin/env python3
"""kill -9 consistency.  A child process group runs a loop of CLI writes
(add, edit, delete, copy, merge, contact add, CSV import); it is SIGKILLed
at random moments, several times, and after each kill the replica is read
with python's sqlite3 (read-only) and checked:
  * PRAGMA integrity_check is ok;
  * every live record has exactly one 'I' change, and no 'D' after it;
  * every 'U' refers to a live record or one deleted later ('D');
  * every logged insert that was not deleted is a live record;
  * each field of each record equals its last logged value: the 'I' JSON
    object overridden by later 'U' rows in seq order;
  * every contact points at a live customer (merge is atomic);
  * each 50-row CSV import is all there or not at all.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import BIN, FsTestCase, main  # noqa: E402

LOOP = r'''
set +e
i=0
prev=""
while :; do
  i=$((i+1))
  id=$("$BIN" --db "$DB" customer add --name "K$i" --city "C$i" --credit_limit "$i.25" 2>/dev/null)
  [ -n "$id" ] || continue
  "$BIN" --db "$DB" customer edit "$id" --city "D$i" --credit_limit "$((i*3)).5" --email "k$i@x.example" >/dev/null 2>&1
  if [ $((i % 3)) -eq 0 ]; then
    "$BIN" --db "$DB" contact add --customer "$id" --name "P$i" >/dev/null 2>&1
  fi
  if [ $((i % 4)) -eq 0 ]; then
    "$BIN" --db "$DB" customer copy "$id" >/dev/null 2>&1
  fi
  if [ $((i % 5)) -eq 0 ]; then
    "$BIN" --db "$DB" customer delete "$id" >/dev/null 2>&1
  fi
  if [ $((i % 6)) -eq 0 ] && [ -n "$prev" ]; then
    "$BIN" --db "$DB" customer merge "$id" "$prev" >/dev/null 2>&1
  fi
  if [ $((i % 7)) -eq 0 ] && [ -n "$prev" ]; then
    "$BIN" --db "$DB" customer edit "$prev" --notes "n$i" --level B --phone "$i" >/dev/null 2>&1
  fi
  if [ $((i % 9)) -eq 0 ]; then
    "$BIN" --db "$DB" customer import "$DIR/batch$((i % 20)).csv" >/dev/null 2>&1
  fi
  prev=$id
done
'''

BATCH = 50
ROUNDS = 7


class KillWrite(FsTestCase):

    def setUp(self):
        super().setUp()
        self.r.ok("init")
        for k in range(20):
            rows = ["name,city,notes"]
            for j in range(BATCH):
                rows.append('B%d-%d,"City, %d","line1\nline2"' % (k, j, j))
            self.write("batch%d.csv" % k, "\r\n".join(rows) + "\r\n")

    def check(self, rnd):
        con = self.r.connect_ro()
        try:
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchall()[0][0], "ok",
                             "round %d: integrity_check" % rnd)
            log = con.execute("SELECT seq, tbl, rid, op, col, val, old FROM fs_change "
                              "ORDER BY seq").fetchall()
            tables = {}
            for tbl in ("customer", "contact"):
                tables[tbl] = {row["id"]: dict(row) for row in
                               con.execute('SELECT * FROM "%s"' % tbl).fetchall()}
            other = con.execute("SELECT count(*) FROM fs_change WHERE tbl NOT IN "
                                "('customer','contact')").fetchone()[0]
            self.assertEqual(other, 0)
        finally:
            con.close()

        state = {}      # (tbl, id) -> reconstructed fields or None (deleted)
        inserts = {}
        for seq, tbl, rid, op, col, val, old in log:
            key = (tbl, rid)
            where = "round %d, change %d (%s %s %s)" % (rnd, seq, op, tbl, rid)
            if op == "I":
                inserts[key] = inserts.get(key, 0) + 1
                self.assertEqual(inserts[key], 1, "%s: second insert of a record" % where)
                if val is None:
                    # Logged without its fields (sync/capture.h): the
                    # record as it is now, or as its 'D' row kept it, with
                    # each field edited since at its first edit's old value.
                    later = [x for x in log if x[0] > seq and (x[1], x[2]) == key]
                    gone = [x for x in later if x[3] == "D"]
                    if gone:
                        base = json.loads(gone[0][5])
                        later = [x for x in later if x[0] < gone[0][0]]
                    else:
                        row = tables.get(tbl, {}).get(rid)
                        self.assertIsNotNone(row, "%s: a creation without fields, "
                                             "no record and no 'D'" % where)
                        base = {k: v for k, v in row.items() if k != "id"}
                    for x in reversed([x for x in later if x[3] == "U"]):
                        base[x[4]] = json.loads(x[6])
                    val = json.dumps(base)
                obj = json.loads(val)
                self.assertIsInstance(obj, dict, where)
                state[key] = obj
            elif op == "U":
                self.assertIn(key, state, "%s: update before any insert" % where)
                self.assertIsNotNone(state[key], "%s: update after delete" % where)
                if old is not None:
                    self.assertEqual(json.loads(old), state[key].get(col),
                                     "%s: 'old' is not the value it replaced" % where)
                state[key][col] = json.loads(val)
            elif op == "D":
                self.assertIn(key, state, "%s: delete before insert" % where)
                self.assertIsNotNone(state[key], "%s: deleted twice" % where)
                state[key] = None
            else:
                self.fail("%s: unknown op" % where)

        for tbl, rows in tables.items():
            for rid, row in rows.items():
                key = (tbl, rid)
                self.assertEqual(inserts.get(key), 1,
                                 "round %d: live %s %s has %s 'I' changes"
                                 % (rnd, tbl, rid, inserts.get(key, 0)))
                logged = state[key]
                self.assertIsNotNone(logged, "round %d: live %s %s was logged as deleted"
                                     % (rnd, tbl, rid))
                for c, v in row.items():
                    if c == "id":
                        if "id" in logged:
                            self.assertEqual(logged["id"], rid)
                        continue
                    self.assertIn(c, logged, "round %d: %s.%s never logged" % (rnd, tbl, c))
                    self.assertEqual(v, logged[c], "round %d: %s %s field %s: table has %r, "
                                     "log says %r" % (rnd, tbl, rid, c, v, logged[c]))
        for (tbl, rid), logged in state.items():
            if logged is not None:
                self.assertIn(rid, tables[tbl], "round %d: logged %s %s is not in the table "
                              "(log without the write)" % (rnd, tbl, rid))
        for rid, row in tables["contact"].items():
            self.assertIn(row["customer"], tables["customer"],
                          "round %d: contact %s points at a missing customer" % (rnd, rid))
        counts = {}
        for row in tables["customer"].values():
            if row["name"].startswith("B") and "-" in row["name"]:
                k = row["name"].split("-")[0]
                counts[k] = counts.get(k, 0) + 1
        for k, n in counts.items():
            self.assertEqual(n % BATCH, 0, "round %d: import %s is partial (%d rows)"
                             % (rnd, k, n))
        return len(tables["customer"]), len(log)

    def test_kill9_consistency(self):
        seed = int(os.environ.get("FS_KILL_SEED", time.time()))
        rng = random.Random(seed)
        env = dict(os.environ, BIN=BIN, DB=self.r.path, DIR=self.tmp)
        total = 0
        for rnd in range(ROUNDS):
            p = subprocess.Popen(["bash", "-c", LOOP], env=env, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(rng.uniform(0.4, 1.6))
            finally:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            try:
                # the file as the killed writers left it (a read-only reader
                # may not yet see a commit whose WAL index update was cut)
                self.check(rnd)
                # the replica still works after the kill; opening it
                # writable recovers the WAL
                rc, out, err = self.r.run("status", "--json")
                self.assertEqual(rc, 0, "round %d: status after kill -9: %s" % (rnd, err))
                ncust, nlog = self.check(rnd)
                self.assertEqual(int(json.loads(out)["pending_changes"]), nlog)
            except AssertionError as e:
                raise AssertionError("seed %d: %s" % (seed, e))
            total = nlog
        self.assertGreater(total, 20, "the write loop made too few writes to test anything")
        self.check(ROUNDS)


if __name__ == "__main__":
    main()
