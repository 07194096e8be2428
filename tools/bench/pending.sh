#!/usr/bin/env bash
# pending.sh [BIN_DIR] [N...] -- memory while syncing a replica with N pending
# changes, for each N (default: 100000 1000000), each against a fresh server.
#
# Issue 3 promises "memory stays bounded when a client has 1M pending
# changes".  For every N: a fresh server directory and fieldsyncd on
# 127.0.0.1 (port picked at run time), a fresh enrolled replica that first
# syncs once while empty (so the measured sync is the push of the pending log,
# not a snapshot of its own records coming back), then N customers created by
# `fieldsync customer import` of a generated CSV (timed; one import, or
# chunks of $CHUNK rows if CHUNK is set), then one `fieldsync sync --json`
# run under /usr/bin/time -v.  Measured:
#   - client peak RSS (Maximum resident set size of /usr/bin/time -v);
#   - server peak RSS (VmHWM of /proc/PID/status after the sync), and its
#     RSS before the sync (the baseline); its anonymous memory after the
#     sync (RssAnon: the peak counts the database pages it read through its
#     memory map, which are the kernel's page cache, not its heap);
#   - bytes on the wire and the time of the sync, from `sync --json`;
#   - checks: every change pushed, 0 pending afterwards, the server holds N
#     customers (read-only SQL count of server.db, and fieldsync-admin dump).
# Then the ratios largest N / smallest N: bounded memory means a ratio near
# 1, not near the ratio of the Ns.
#
# Data in /tmp (removed at the end unless KEEP=1).  The server is stopped
# with SIGTERM whatever happens.  Needs python3 (CSV generation, parsing) and
# /usr/bin/time (apt-get install time); without it the client's peak RSS is
# sampled from /proc/PID/status (VmHWM).
set -euo pipefail
BIN=$(cd "${1:-$(dirname "$0")/../../build/bin}" && pwd)
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(100000 1000000)
for b in fieldsync fieldsync-admin fieldsyncd; do
	[ -x "$BIN/$b" ] || { echo "pending.sh: $BIN/$b missing: build first" >&2; exit 1; }
done
TIMEV=/usr/bin/time
[ -x "$TIMEV" ] || TIMEV=
work=$(mktemp -d /tmp/fs-pending-XXXXXX)
spid=
cleanup() {
	if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# Private copies: a rebuild of BIN_DIR during the run must not swap binaries.
mkdir "$work/bin"
cp "$BIN/fieldsync" "$BIN/fieldsync-admin" "$BIN/fieldsyncd" "$work/bin/"
BIN="$work/bin"

now() { date +%s.%N; }
jfield() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# The server reads its database through a memory map (replica.c): pages it
# touched count in its RSS as file pages, the kernel's page cache, not heap.
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# Runs "$@" and prints its peak RSS in kB on fd 3; its stdout goes to stdout.
peak_rss() {
	if [ -n "$TIMEV" ]; then
		local t="$work/timev.$$"
		local rc=0
		"$TIMEV" -v -o "$t" "$@" || rc=$?
		awk -F': ' '/Maximum resident set size/ {print $2}' "$t" >&3
		return $rc
	fi
	# Fallback: sample VmHWM until the process exits.
	"$@" &
	local p=$! h=0 x
	while kill -0 $p 2>/dev/null; do
		x=$(hwm_kb $p 2>/dev/null || echo 0); [ "${x:-0}" -gt "$h" ] && h=$x
		sleep 0.05
	done
	local rc=0; wait $p || rc=$?
	echo "$h" >&3
	return $rc
}

results="$work/results.tsv"
: >"$results"
for N in "${SIZES[@]}"; do
	d="$work/n$N"; mkdir -p "$d"
	A() { "$BIN/fieldsync" --db "$d/r.db" "$@"; }
	"$BIN/fieldsync-admin" --dir "$d/srv" init --org Bench >/dev/null
	"$BIN/fieldsync-admin" --dir "$d/srv" user add rep --role office --region '*' >/dev/null
	"$BIN/fieldsync-admin" --dir "$d/srv" device enroll rep --out "$d/enroll" >/dev/null
	"$BIN/fieldsyncd" --dir "$d/srv" --listen 127.0.0.1:0 >"$d/srv.out" 2>"$d/srv.log" &
	spid=$!
	for _ in $(seq 100); do grep -q '^listening on ' "$d/srv.out" 2>/dev/null && break; sleep 0.1; done
	addr=$(sed -n 's/^listening on //p' "$d/srv.out")
	[ -n "$addr" ] || { echo "pending.sh: fieldsyncd did not start" >&2; cat "$d/srv.log" >&2; exit 1; }
	A init --server "$addr" --enroll "$d/enroll" >/dev/null
	A sync --json >/dev/null 2>&1   # empty bootstrap: the measured sync is the push

	t0=$(now)
	python3 - "$N" "$d" "${CHUNK:-0}" <<'PY'
import sys
n, d, chunk = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) or int(sys.argv[1])
hdr = "name,code,city,phone,email,level,status,credit_limit,region\n"
k = 0
for start in range(0, n, chunk):
    with open("%s/c%03d.csv" % (d, k), "w") as f:
        f.write(hdr)
        f.writelines("Pending %d Trading Co.,P%07d,Shanghai,+86 21 %08d,buyer%d@example.cn,B,active,%d,east\n"
                     % (i, i, i, i, 10000 + i % 50 * 1000) for i in range(start, min(n, start + chunk)))
    k += 1
PY
	t1=$(now)
	imp_rss=0
	for f in "$d"/c*.csv; do
		r=$( { peak_rss "$BIN/fieldsync" --db "$d/r.db" customer import "$f" >/dev/null; } 3>&1 )
		[ "$r" -gt "$imp_rss" ] && imp_rss=$r
	done
	t2=$(now)
	pend=$(jfield "$(A status --json)" pending_changes)
	[ "$pend" = "$N" ] || { echo "pending.sh: $pend pending changes, expected $N" >&2; exit 1; }
	rm -f "$d"/c*.csv

	srv_before=$(rss_kb $spid)
	t3=$(now)
	rc=0
	cli_rss=$( { peak_rss "$BIN/fieldsync" --db "$d/r.db" sync --json >"$d/sync.json" 2>"$d/sync.err"; } 3>&1 ) || rc=$?
	t4=$(now)
	srv_hwm=$(hwm_kb $spid)
	srv_anon=$(anon_kb $spid)
	s=$(grep '^{' "$d/sync.json" || echo '{}')
	after=$(jfield "$(A status --json)" pending_changes)
	kill -TERM $spid; wait $spid 2>/dev/null || true; spid=
	srv_count=$(python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro",uri=True); print(c.execute("SELECT count(*) FROM customer").fetchone()[0])' "$d/srv/server.db")
	dump_count=$("$BIN/fieldsync-admin" --dir "$d/srv" dump | grep -c '"table":"customer"' || true)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$N" "$(awk "BEGIN{print $t2 - $t1}")" "$imp_rss" "$(awk "BEGIN{print $t4 - $t3}")" "$cli_rss" \
		"$srv_before" "$srv_hwm" "$(jfield "$s" bytes_out)" "$(jfield "$s" bytes_in)" \
		"$(jfield "$s" pushed)" "$(jfield "$s" pulled)" "$rc" "$after" "$srv_count" "$dump_count" \
		"$srv_anon" >>"$results"
	if [ "$rc" -ne 0 ]; then
		echo "sync of $N pending changes failed (exit $rc):" >&2; tail -5 "$d/sync.err" >&2
		tail -5 "$d/srv.log" >&2
	fi
	echo "done N=$N" >&2
done

python3 - "$results" "${TIMEV:-/proc VmHWM sampling}" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def num(x):
    try: return float(x)
    except ValueError: return float("nan")
R = [dict(n=int(r[0]), imp_s=num(r[1]), imp_rss=num(r[2]), sync_s=num(r[3]), cli_rss=num(r[4]),
          srv_base=num(r[5]), srv_hwm=num(r[6]), out=num(r[7]), inn=num(r[8]), pushed=r[9],
          pulled=r[10], rc=r[11], after=r[12], srv_count=r[13], dump_count=r[14],
          srv_anon=num(r[15])) for r in rows]
mb = lambda kb: "%.1f MB" % (kb / 1024)
print("fieldsync pending-changes bench: one replica, N pending new customers, one sync to a fresh")
print("server over TLS on loopback (client peak RSS by %s; server VmHWM)" % sys.argv[2])
print()
hdr = ["N pending", "import", "import RSS", "sync time", "client peak RSS", "server RSS before",
       "server peak RSS", "server anon after", "bytes out", "B/change", "bytes in", "pushed", "exit", "pending after",
       "server count", "dump count"]
tab = []
for r in R:
    tab.append([str(r["n"]), "%.1f s" % r["imp_s"], mb(r["imp_rss"]), "%.1f s" % r["sync_s"],
                mb(r["cli_rss"]), mb(r["srv_base"]), mb(r["srv_hwm"]), mb(r["srv_anon"]),
                "%d" % r["out"],
                "%.1f" % (r["out"] / r["n"]), "%d" % r["inn"], r["pushed"], r["rc"], r["after"],
                r["srv_count"], r["dump_count"]])
w = [max(len(h), *(len(t[i]) for t in tab)) for i, h in enumerate(hdr)]
print("  ".join(h.rjust(w[i]) for i, h in enumerate(hdr)))
for t in tab:
    print("  ".join(c.rjust(w[i]) for i, c in enumerate(t)))
if len(R) >= 2:
    a, b = R[0], R[-1]
    print()
    print("ratios, N=%d / N=%d (N ratio %.0fx): bounded memory means ~1x" % (b["n"], a["n"], b["n"] / a["n"]))
    for name, k in [("client peak RSS", "cli_rss"), ("server peak RSS", "srv_hwm"),
                    ("server anon after", "srv_anon"),
                    ("import peak RSS", "imp_rss"), ("bytes out", "out"), ("sync time", "sync_s"),
                    ("import time", "imp_s")]:
        print("  %-16s %6.2fx" % (name, b[k] / a[k] if a[k] else float("nan")))
ok = all(r["rc"] == "0" and r["after"] == "0" and r["srv_count"] == str(r["n"]) and
         r["dump_count"] == str(r["n"]) and r["pushed"] == str(r["n"]) for r in R)
print()
print("checks (exit 0, all pushed, 0 pending after, server holds N): %s" % ("PASS" if ok else "FAIL"))
PY
