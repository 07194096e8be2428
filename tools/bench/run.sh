#!/usr/bin/env bash
# tools/bench/run.sh -- build and run every benchmark, printing ratios
# measured side by side in one run (about 15 minutes on 2 cores).
# Usage: tools/bench/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/run build >/dev/null
N=${1:-100000}
echo "== machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== change capture on local writes (tools/bench/capture_bench.c)"
build/bin/capture_bench "$N" "${TMPDIR:-/tmp}"
echo "== server apply throughput vs raw SQLite (tools/bench/apply_bench.c)"
build/bin/apply_bench 20000 "${TMPDIR:-/tmp}"
echo "== bytes on the wire, TLS sync on loopback (tools/bench/wire_bench.sh)"
tools/bench/wire_bench.sh build/bin 20000
echo "== the git ledger's cost: sync with / without it (tools/bench/ledger_bench.sh)"
tools/bench/ledger_bench.sh build/bin 20000 3
echo "== 500 concurrent clients (tools/bench/concurrency.py)"
python3 tools/bench/concurrency.py -n 500 --bin build/bin
echo "== memory with 100k and 1M pending changes (tools/bench/pending.sh)"
tools/bench/pending.sh build/bin 100000 1000000
