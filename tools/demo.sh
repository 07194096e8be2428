#!/usr/bin/env bash
# tools/demo.sh BIN_DIR -- Fieldsync in five minutes, on this machine only:
#  1. a rep's offline day: replica, customer, visit, quote, order (and the
#     credit limit refusing one), the change log waiting to be synced;
#  2. a head-office server on 127.0.0.1 (SQLite, company CA), two reps
#     enrolled, both editing the same customer offline, syncing: the data
#     converges everywhere and the losing value is kept as a conflict;
#  3. territories: a rep of another region never receives those customers,
#     and a rep cannot raise a credit limit (the office can);
#  4. three tiers: the west region runs its own server, which syncs with
#     head office nightly (here: now, on SIGUSR1), and a customer its rep
#     adds reaches head office and the west rep who syncs there.
# Everything lives in a temporary directory, removed at the end.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
work=$(mktemp -d)
srv_pid=
west_pid=
cleanup() {
	[ -n "$west_pid" ] && kill "$west_pid" 2>/dev/null
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
run() { echo "\$ $*" | sed "s|$BIN/||g; s|$work/||g" >&2; "$@"; }
alice() { run "$BIN/fieldsync" --db "$work/alice.db" "$@"; }
bob() { run "$BIN/fieldsync" --db "$work/bob.db" "$@"; }
carol() { run "$BIN/fieldsync" --db "$work/carol.db" "$@"; }
dave() { run "$BIN/fieldsync" --db "$work/dave.db" "$@"; }
erin() { run "$BIN/fieldsync" --db "$work/erin.db" "$@"; }
admin() { run "$BIN/fieldsync-admin" --dir "$work/hq" "$@"; }
wadmin() { run "$BIN/fieldsync-admin" --dir "$work/west" "$@"; }
# Waits until the west server has completed more than $1 upstream syncs.
west_synced() {
	local n
	for _ in $(seq 150); do
		n=$("$BIN/fieldsync-admin" --dir "$work/west" upstream status --json 2>/dev/null |
			sed -n 's/.*"syncs":\([0-9]*\).*/\1/p' || true)
		[ -n "$n" ] && [ "$n" -gt "$1" ] && return 0
		sleep 0.2
	done
	echo "the west server did not sync with head office" >&2
	cat "$work/west.log" >&2
	exit 1
}

say "1. Head office: a server directory, regions, users, their devices"
admin init --org "Hangzhou Valves"
admin dept add hq --name "Head office"
admin dept add east --name "East region" --parent hq
admin dept add west --name "West region" --parent hq
admin user add alice --role rep --region east
admin user add bob --role rep --region east
admin user add carol --role office
admin user add dave --role rep --region west
for u in alice bob carol dave; do
	admin device enroll $u --out "$work/enroll-$u" >/dev/null
done
"$BIN/fieldsyncd" --dir "$work/hq" --listen 127.0.0.1:0 >"$work/srv.out" 2>"$work/srv.log" &
srv_pid=$!
for _ in $(seq 50); do grep -q listening "$work/srv.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/srv.out")
echo "fieldsyncd listening on $addr (TLS, mutual certificates)"
for u in alice bob carol dave; do $u init --server "$addr" --enroll "$work/enroll-$u"; done

say "2. The office opens an account (level and credit limit are the office's to set)"
carol product add --sku VALVE-50 --name "Ball valve DN50" --unit pcs --list_price 86.50 --tax_rate 13 >/dev/null
carol product add --sku PIPE-6M --name "Steel pipe 6 m" --unit pcs --list_price 240 --tax_rate 13 >/dev/null
cust=$(carol customer add --name "Hangzhou Pump Works" --code HZPW --city Hangzhou \
	--phone "+86 571 5550 1234" --level A --status active --credit_limit 20000 --region east)
carol sync
alice sync

say "3. Alice's offline day"
contact=$(alice contact add --customer "$cust" --name "Li Wei" --title "Purchasing manager" \
	--mobile "+86 139 0000 1111" --birthday 1980-03-14)
alice visit log --customer "$cust" --contact "$contact" --purpose "Quarterly review" \
	--outcome "Needs 40 valves for the new line" --next_step "Send quote" \
	--next_step_due 2026-12-01 >/dev/null
quote=$(alice quote new --customer "$cust" --contact "$contact" --line VALVE-50:40 --line PIPE-6M:10:225)
alice quote show "$quote"
order=$(alice order from-quote "$quote")
alice order submit "$order"
echo "An order past the credit limit is refused:"
big=$(alice quote new --customer "$cust" --line PIPE-6M:100)
alice order from-quote "$big" || echo "(refused, exit $?)"
alice status
echo "Pending change log (what the next sync pushes):"
alice changes | cut -c1-150

say "4. Sync: Alice pushes her day, Bob's new laptop bootstraps"
alice sync
bob sync

say "5. Both edit the same customer offline"
alice customer edit "$cust" --phone "+86 571 5550 9999"
bob customer edit "$cust" --phone "+86 571 5550 7777" --email buyer@hzpw.cn

say "6. Sync in any order: everyone converges"
alice sync
bob sync
alice sync
run "$BIN/fieldsync-admin" --dir "$work/hq" dump --user alice >"$work/hq.dump"
alice dump >"$work/alice.dump"
bob dump >"$work/bob.dump"
if cmp -s "$work/hq.dump" "$work/alice.dump" && cmp -s "$work/hq.dump" "$work/bob.dump"; then
	echo "server (as the east region sees it), Alice and Bob hold byte-identical data ($(wc -l <"$work/hq.dump") records)"
else
	echo "DIVERGED" >&2
	exit 1
fi
alice customer show "$cust"

say "7. The losing phone number is kept, not dropped"
alice conflicts
echo "Alice keeps her number; the resolution syncs like any edit:"
id=$("$BIN/fieldsync" --db "$work/alice.db" conflicts --json | sed -n 's/^\[*{"id":\([0-9]*\).*/\1/p' | head -1)
alice conflicts resolve "$id" --keep mine
alice sync
bob sync
bob customer show "$cust" | grep -E '^(phone|email)'
bob conflicts

say "8. Territories: Dave (west) holds the catalogue, not the east's customers"
dave sync
dave customer list
echo "(no customers: Dave's region has none)"
dave product list
echo "Alice tries to raise the credit limit herself:"
alice customer edit "$cust" --credit_limit 90000
alice sync || echo "(sync exit $?: a change was refused)"
alice rejections
alice customer show "$cust" | grep -E '^credit_limit'

say "9. Three tiers: the west region runs its own server, synced nightly with head office"
admin user add west-office --role office --region west
admin device enroll west-office --relay --out "$work/enroll-west"
wadmin init --org "Hangzhou Valves, West"
echo "\$ fieldsyncd --dir west --listen 127.0.0.1:0 --upstream $addr --enroll enroll-west --sync-at 02:30 &"
"$BIN/fieldsyncd" --dir "$work/west" --listen 127.0.0.1:0 --upstream "$addr" \
	--enroll "$work/enroll-west" --sync-at 02:30 >"$work/west.out" 2>"$work/west.log" &
west_pid=$!
west_synced 0      # at start: head office's departments, then the region
for _ in $(seq 50); do grep -q listening "$work/west.out" 2>/dev/null && break; sleep 0.1; done
west=$(sed -n 's/^listening on //p' "$work/west.out")
echo "the west server listens on $west and has copied head office's departments"
wadmin user add erin --role rep --region west
wadmin device enroll erin --out "$work/enroll-erin" >/dev/null
erin init --server "$west" --enroll "$work/enroll-erin"
xian=$(erin customer add --name "Xi'an Boiler Co" --city "Xi'an" --region west)
erin sync
echo "Erin's customer is safe at the west server; head office gets it at 02:30:"
wadmin upstream status
echo "The nightly sync, now instead of at 02:30 (SIGUSR1):"
run kill -USR1 "$west_pid"
west_synced 1
if admin dump | grep -q "Xi'an Boiler"; then
	echo "head office now holds Xi'an Boiler Co"
else
	echo "head office did not receive Erin's customer" >&2
	exit 1
fi
dave sync
dave customer list
run "$BIN/fieldsync-admin" --dir "$work/hq" dump --user west-office >"$work/hq-west.dump"
run "$BIN/fieldsync-admin" --dir "$work/west" dump >"$work/west.dump"
if cmp -s "$work/hq-west.dump" "$work/west.dump"; then
	echo "the west server holds exactly head office's west region ($(wc -l <"$work/west.dump") records)"
else
	echo "DIVERGED" >&2
	exit 1
fi
test -n "$xian"
