#!/usr/bin/env bash
# tools/bench/run.sh -- build, then run every benchmark of issue 7 in one run
# and print ONE table of ratios (tools/bench/peers.py): bootstrap and
# incremental sync against the sqlite3 .dump | gzip floor and PouchDB, on
# data from tools/gen/gen.py; server apply vs raw SQLite (apply_bench); 500
# concurrent clients (concurrency.py); change capture (capture_bench); the
# ledger on vs off (ledger_bench.sh).  About 20 minutes on 2 cores at the
# default scale 0.1 (185k records).
#
# Usage: tools/bench/run.sh [--scale S] [--no-peer] [--more] [peers.py options]
#   --scale 1   the full company (1.8M records; the PouchDB side alone
#               then takes about 40 minutes, 30 of them setting up PouchDB)
#   --scale 1 --only-peers --bootstrap-only
#               the full company's bootstrap rows only (~15 minutes)
#   --more      also the older benchmarks that are not in the table:
#               wire_bench.sh (bytes per record) and pending.sh (memory
#               with 100k and 1M pending changes, ~5 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
more=0
args=()
for x in "$@"; do
	if [ "$x" = --more ]; then more=1; else args+=("$x"); fi
done
tools/run build >/dev/null
echo "== machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "== command: tools/bench/run.sh ${*:-}"
python3 tools/bench/peers.py --bin build/bin "${args[@]}"
if [ "$more" = 1 ]; then
	echo "== bytes on the wire, TLS sync on loopback (tools/bench/wire_bench.sh)"
	tools/bench/wire_bench.sh build/bin 20000
	echo "== memory with 100k and 1M pending changes (tools/bench/pending.sh)"
	tools/bench/pending.sh build/bin 100000 1000000
fi
