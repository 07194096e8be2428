#!/usr/bin/env bash
# smoke.sh BIN_DIR -- tools/gen/gen.py at a tiny scale: the same seed gives
# byte-identical records, log and clocks; every record has exactly one 'I'
# log entry and one creation clock pointing at it; the log's values are
# what the server's snapshot sends (json_object of the row); scopes follow
# the customer; ids are UUIDv7; the server dumps it (fieldsync-admin dump)
# and a rep's scoped dump holds only its region and the catalogue.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
GEN="$(dirname "$0")/gen.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in 1 2; do
	python3 "$GEN" --dir "$work/s$i" --scale 0.002 --seed 11 --regions 3 --reps 6 \
		--docs "$work/d$i.ndjson" --admin "$BIN/fieldsync-admin" --quiet >"$work/info$i.json"
done
q() { sqlite3 "file:$1/server.db?mode=ro" "$2"; }
recs="customer contact product price_list price_list_item visit opportunity sales_order order_line"
for i in 1 2; do
	# (fs_org rows: the admin tool's timestamped organisation markers)
	q "$work/s$i" "SELECT tbl, rid, op, val, hlc, device, author, scope FROM fs_log
	               WHERE tbl <> 'fs_org' ORDER BY seq;
	               SELECT * FROM fs_clock ORDER BY tbl, rid;" >"$work/log$i"
	for t in $recs; do q "$work/s$i" "SELECT * FROM \"$t\" ORDER BY id"; done >"$work/rec$i"
done
cmp "$work/log1" "$work/log2"
cmp "$work/rec1" "$work/rec2"
cmp "$work/d1.ndjson" "$work/d2.ndjson"
"$BIN/fieldsync-admin" --dir "$work/s1" dump >"$work/dump1"
"$BIN/fieldsync-admin" --dir "$work/s2" dump >"$work/dump2"
cmp "$work/dump1" "$work/dump2"
s="$work/s1"
n=0
for t in $recs; do n=$((n + $(q "$s" "SELECT count(*) FROM \"$t\""))); done
check() { [ "$(q "$s" "$2")" = "$3" ] || { echo "FAIL: $1: $(q "$s" "$2") != $3" >&2; exit 1; }; }
check "log entries = records" "SELECT count(*) FROM fs_log WHERE op = 'I'" "$n"
check "documents = records" "SELECT $(wc -l <"$work/d1.ndjson")" "$n"
check "dump lines = records" "SELECT $(wc -l <"$work/dump1")" "$n"
check "one creation clock per entry" \
	"SELECT count(*) FROM fs_clock c JOIN fs_log l ON l.seq = c.seq AND l.rid = c.rid AND l.tbl = c.tbl
	 AND l.hlc = c.hlc AND l.device = c.device WHERE c.col = ''" "$n"
check "hlc increases along the log" \
	"SELECT count(*) FROM fs_log a JOIN fs_log b ON b.seq = a.seq + 1
	 WHERE b.hlc <= a.hlc AND a.tbl <> 'fs_org' AND b.tbl <> 'fs_org'" 0
check "server clock = greatest hlc" \
	"SELECT (SELECT v FROM fs_meta WHERE k = 'hlc') = (SELECT max(hlc) FROM fs_log WHERE tbl <> 'fs_org')" 1
for t in $recs; do
	cols=$(q "$s" "SELECT group_concat('''' || name || ''', t.\"' || name || '\"', ', ') FROM
	               (SELECT name FROM pragma_table_info('$t') WHERE name <> 'id' ORDER BY cid)")
	check "$t: log value = json_object of the row" \
		"SELECT count(*) FROM \"$t\" t JOIN fs_log l ON l.rid = t.id AND l.tbl = '$t'
		 WHERE l.val IS NOT json_object($cols)" 0
	check "$t: ids are UUIDv7" \
		"SELECT count(*) FROM \"$t\" WHERE id NOT GLOB
		 '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-7[0-9a-f][0-9a-f][0-9a-f]-[89ab][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'" 0
done
check "customer scope = region" \
	"SELECT count(*) FROM customer c JOIN fs_log l ON l.rid = c.id WHERE l.scope IS NOT c.region" 0
for t in contact visit opportunity sales_order; do
	check "$t scope = its customer's region" \
		"SELECT count(*) FROM \"$t\" x JOIN customer c ON c.id = x.customer JOIN fs_log l ON l.rid = x.id
		 WHERE l.scope IS NOT c.region" 0
done
check "order_line scope = its order's customer's region" \
	"SELECT count(*) FROM order_line x JOIN sales_order o ON o.id = x.\"order\"
	 JOIN customer c ON c.id = o.customer JOIN fs_log l ON l.rid = x.id WHERE l.scope IS NOT c.region" 0
check "catalogue scope ''" \
	"SELECT count(*) FROM fs_log WHERE tbl IN ('product', 'price_list', 'price_list_item') AND scope <> ''" 0
check "children created after their parents" \
	"SELECT count(*) FROM contact x JOIN customer c ON c.id = x.customer WHERE x.created_at < c.created_at" 0
rep=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["reps"][0]; print(r["name"], r["region"])' "$work/info1.json")
set -- $rep
"$BIN/fieldsync-admin" --dir "$s" dump --user "$1" >"$work/rdump"
want=$(q "$s" "SELECT count(*) FROM fs_log WHERE scope IN ('$2', '')")
[ "$(wc -l <"$work/rdump")" = "$want" ] || { echo "FAIL: $1's dump has $(wc -l <"$work/rdump") records, want $want" >&2; exit 1; }
echo "gen smoke: $n records, reproducible, consistent: 1 passed, 0 failed"
