#!/usr/bin/env bash
# wire_bench.sh BIN_DIR [N] -- bytes on the wire per changed field, over a
# real TLS sync on loopback: N customers created and pushed (bootstrap of a
# second replica measured too), then 1000 single-field edits pushed by one
# rep and pulled by another.  Reports bytes per record and per changed field
# from `fieldsync sync --json` (TLS payload bytes, frames included).
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
N=${2:-20000}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
A() { "$BIN/fieldsync" --db "$work/a.db" "$@"; }
B() { "$BIN/fieldsync" --db "$work/b.db" "$@"; }
"$BIN/fieldsync-admin" --dir "$work/srv" init >/dev/null
for u in a b; do
	"$BIN/fieldsync-admin" --dir "$work/srv" user add $u --role office --region '*' >/dev/null
	"$BIN/fieldsync-admin" --dir "$work/srv" device enroll $u --out "$work/en_$u" >/dev/null
done
"$BIN/fieldsyncd" --dir "$work/srv" --listen 127.0.0.1:0 >"$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/out")
A init --server "$addr" --enroll "$work/en_a" >/dev/null
B init --server "$addr" --enroll "$work/en_b" >/dev/null
python3 - "$N" >"$work/c.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("name,code,city,phone,email,level,status,credit_limit,region")
for i in range(n):
    print(f"Customer {i} Trading Co.,C{i:06d},Shanghai,+86 21 {i:08d},buyer{i}@example.cn,B,active,{10000+i%50*1000},east")
PY
A customer import "$work/c.csv" >/dev/null
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
t0=$(date +%s.%N); s=$(A sync --json 2>/dev/null); t1=$(date +%s.%N)
push_out=$(field "$s" bytes_out)
t2=$(date +%s.%N); s=$(B sync --json 2>/dev/null); t3=$(date +%s.%N)
boot_in=$(field "$s" bytes_in)
ids=$(A customer list --json --limit 1000 | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)]')
printf 'id,phone\n' >"$work/e.csv"
i=0
for id in $ids; do i=$((i+1)); printf '%s,+86 10 %08d\n' "$id" "$i" >>"$work/e.csv"; done
A customer import "$work/e.csv" >/dev/null
edits=$(A status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])')
s=$(A sync --json 2>/dev/null); e_out=$(field "$s" bytes_out)
s=$(B sync --json 2>/dev/null); e_in=$(field "$s" bytes_in)
python3 - <<PY
n, edits = $N, $edits
print(f"sync over TLS on loopback, {n} customers, {edits} single-field edits")
print(f"  push {n} new customers:        {$push_out:>10} bytes  {$push_out/n:7.1f} B/record   {$t1-$t0:6.2f} s")
print(f"  bootstrap a second replica:  {$boot_in:>10} bytes  {$boot_in/n:7.1f} B/record   {$t3-$t2:6.2f} s")
print(f"  push {edits} field edits:          {$e_out:>10} bytes  {$e_out/edits:7.1f} B/changed field")
print(f"  pull them on another replica: {$e_in:>9} bytes  {$e_in/edits:7.1f} B/changed field")
PY
