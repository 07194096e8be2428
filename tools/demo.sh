#!/usr/bin/env bash
# tools/demo.sh BIN_DIR -- a rep's day, offline: create a replica, add a
# customer, log a visit, quote, turn the quote into an order, and show the
# change log waiting to be synced.  Runs in a fresh temporary directory.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FIELDSYNC_DB="$work/alice.db"
fs() { echo "\$ fieldsync $*" >&2; "$BIN/fieldsync" "$@"; }

fs init --user alice
fs product add --sku VALVE-50 --name "Ball valve DN50" --unit pcs --list_price 86.50 --tax_rate 13 >/dev/null
fs product add --sku PIPE-6M --name "Steel pipe 6 m" --unit pcs --list_price 240 --tax_rate 13 >/dev/null
cust=$(fs customer add --name "Hangzhou Pump Works" --code HZPW --city Hangzhou \
	--phone "+86 571 5550 1234" --level A --status active --credit_limit 20000 --region east)
contact=$(fs contact add --customer "$cust" --name "Li Wei" --title "Purchasing manager" \
	--mobile "+86 139 0000 1111" --birthday 1980-03-14)
fs visit log --customer "$cust" --contact "$contact" --purpose "Quarterly review" \
	--outcome "Needs 40 valves for the new line" --next_step "Send quote" \
	--next_step_due 2026-12-01 >/dev/null
quote=$(fs quote new --customer "$cust" --contact "$contact" --line VALVE-50:40 --line PIPE-6M:10:225)
fs quote show "$quote"
order=$(fs order from-quote "$quote")
fs order submit "$order"
fs order show "$order"
echo
echo "An order past the credit limit is refused:"
big=$(fs quote new --customer "$cust" --line PIPE-6M:100)
fs order from-quote "$big" || echo "(refused, exit $?)"
echo
fs status
echo
echo "Pending change log (to be pushed on the next sync):"
fs changes
