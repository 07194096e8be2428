#!/usr/bin/env bash
# ledger_bench.sh BIN_DIR [N] [ROUNDS] -- what the git ledger costs sync.
#
# Side by side in one run, on two fresh servers (fieldsyncd with its
# ledger, and with --no-ledger), the same work: one rep creates N
# customers and pushes them (batches of 2000), then edits one field of
# 2000 of them and pushes again.  Reported per server: the time of each
# `fieldsync sync` (what a rep waits for), and the time until the ledger
# holds everything (SIGTERM returns once the writer drained its queue).
# The ratio is throughput with the ledger over throughput without it.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
N=${2:-20000}
ROUNDS=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }

python3 - "$N" >"$work/c.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("name,code,city,phone,email,level,status,credit_limit,region")
for i in range(n):
    print(f"Customer {i} Trading Co.,C{i:06d},Shanghai,+86 21 {i:08d},buyer{i}@example.cn,B,active,{10000+i%50*1000},east")
PY

# one_run MODE ROUND -> prints "push_s edit_s drain_s"
one_run() {
	local mode=$1 r=$2 d="$work/$1-$2" flag=() pid addr t0 t1 t2 t3 t4 t5
	[ "$mode" = off ] && flag=(--no-ledger)
	mkdir -p "$d"
	"$BIN/fieldsync-admin" --dir "$d/srv" init >/dev/null
	"$BIN/fieldsync-admin" --dir "$d/srv" user add a --role office --region '*' >/dev/null
	"$BIN/fieldsync-admin" --dir "$d/srv" device enroll a --out "$d/en" >/dev/null
	"$BIN/fieldsyncd" --dir "$d/srv" --listen 127.0.0.1:0 "${flag[@]}" >"$d/out" 2>"$d/log" &
	pid=$!
	# one_run runs in a subshell (the read below), so the main shell's
	# EXIT trap never saw this pid: the subshell stops its own server when
	# it exits, a failed step included.
	trap "kill $pid 2>/dev/null || true" EXIT
	for _ in $(seq 100); do grep -q listening "$d/out" 2>/dev/null && break; sleep 0.05; done
	addr=$(sed -n 's/^listening on //p' "$d/out")
	"$BIN/fieldsync" --db "$d/a.db" init --server "$addr" --enroll "$d/en" >/dev/null
	"$BIN/fieldsync" --db "$d/a.db" customer import "$work/c.csv" >/dev/null
	t0=$(now); "$BIN/fieldsync" --db "$d/a.db" sync >/dev/null 2>&1; t1=$(now)
	"$BIN/fieldsync" --db "$d/a.db" customer list --json --limit 2000 |
	    python3 -c 'import json,sys
print("id,phone")
for i, r in enumerate(json.load(sys.stdin)): print("%s,+86 10 %08d" % (r["id"], i))' >"$d/e.csv"
	"$BIN/fieldsync" --db "$d/a.db" customer import "$d/e.csv" >/dev/null
	t2=$(now); "$BIN/fieldsync" --db "$d/a.db" sync >/dev/null 2>&1; t3=$(now)
	t4=$(now); kill -TERM "$pid"; wait "$pid" || true; t5=$(now)
	echo "$t0 $t1 $t2 $t3 $t4 $t5" | awk '{printf "%.3f %.3f %.3f\n", $2-$1, $4-$3, $6-$5}'
}

echo "ledger overhead: $N customers created + 2000 field edits, pushed over TLS on loopback; $ROUNDS rounds"
echo "  $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for r in $(seq "$ROUNDS"); do
	for m in off on; do
		read -r p e dr < <(one_run "$m" "$r")
		echo "$m $p $e $dr" >>"$work/results"
		printf '  round %d ledger %-3s  push %6.2f s   edits %6.2f s   stop (drain) %5.2f s\n' "$r" "$m" "$p" "$e" "$dr"
	done
done
python3 - "$work/results" "$N" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
n = int(sys.argv[2])
def best(mode, col):
    return min(float(r[col]) for r in rows if r[0] == mode)
for col, what, count in ((1, "push creations", n), (2, "push edits", 2000)):
    off, on = best("off", col), best("on", col)
    print(f"  {what:15s}: off {count/off:8.0f}/s   on {count/on:8.0f}/s   ratio on/off {off/on:5.2f}")
off = best("off", 1) + best("off", 2) + best("off", 3)
on = best("on", 1) + best("on", 2) + best("on", 3)
print(f"  end to end, ledger fully written (push + edits + stop): ratio on/off {off/on:5.2f}")
PY
