#!/usr/bin/env bash
# How the console stays responsive on a big ledger: `tally bench` fills a data directory
# (ACCOUNTS accounts, TRANSFERS transfers), then a server is started on it and
# bench/console.mjs times each view's first render and a page turn in headless Chromium.
#
#   bash bench/console.sh target/release/tally            # 1,000,000 accounts, 10,000,000 transfers
#   ACCOUNTS=10000 TRANSFERS=100000 bash bench/console.sh target/release/tally
#
# Needs tests/browser's packages (cd tests/browser && npm ci) and Chromium (CHROMIUM, default
# /usr/bin/chromium).
set -euo pipefail
tally=$(realpath "${1:?the tally binary}")
accounts=${ACCOUNTS:-1000000}
transfers=${TRANSFERS:-10000000}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
echo "== filling a ledger: $accounts accounts, $transfers transfers"
"$tally" bench --accounts "$accounts" --transfers "$transfers" --data-dir "$work/data" | tail -3
echo "== serving it"
started=$(date +%s.%N)
"$tally" serve --data-dir "$work/data" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
echo "started in $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s: $(curl -s "127.0.0.1:$port/healthz")"
node "$(dirname "$0")/console.mjs" "http://127.0.0.1:$port"
