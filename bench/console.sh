#!/usr/bin/env bash
# How the console stays responsive on a big ledger: `tally bench` fills a ledger (ACCOUNTS
# accounts, TRANSFERS transfers), then a server is started on it and bench/console.mjs times
# each view's first render and a page turn in headless Chromium.
#
#   bash bench/console.sh target/release/tally            # 1,000,000 accounts, 10,000,000 transfers
#   ENGINE=postgres bash bench/console.sh target/release/tally   # the same on a private PostgreSQL
#   ACCOUNTS=10000 TRANSFERS=100000 bash bench/console.sh target/release/tally
#
# Needs tests/browser's packages (cd tests/browser && npm ci) and Chromium (CHROMIUM, default
# /usr/bin/chromium); with ENGINE=postgres, initdb, pg_ctl and postgres on PATH.
set -euo pipefail
tally=$(realpath "${1:?the tally binary}")
accounts=${ACCOUNTS:-1000000}
transfers=${TRANSFERS:-10000000}
engine=${ENGINE:-embedded}
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
store=(--data-dir "$work/data")
cleanup=()
trap 'kill $(jobs -p) 2>/dev/null || true; wait; for c in "${cleanup[@]}"; do eval "$c"; done; rm -rf "$work"' EXIT
if [ "$engine" = postgres ]; then
  # A private cluster: initdb refuses root, so as root it runs as `postgres`.
  as_user=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; as_user=(runuser -u postgres --); fi
  pg_port=$(free_port)
  "${as_user[@]}" initdb -D "$work/pg" -U tally --auth=trust -E UTF8 --locale=C >/dev/null
  "${as_user[@]}" pg_ctl -D "$work/pg" -l "$work/pg.log" -w -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
  cleanup+=("${as_user[*]} pg_ctl -D $work/pg -m fast -w stop >/dev/null")
  store=(--engine postgres --database-url "host=$work port=$pg_port user=tally dbname=postgres")
fi
echo "== filling a ledger ($engine): $accounts accounts, $transfers transfers"
"$tally" bench --accounts "$accounts" --transfers "$transfers" "${store[@]}" | tail -3
echo "== serving it"
started=$(date +%s.%N)
"$tally" serve "${store[@]}" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
echo "started in $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s: $(curl -s "127.0.0.1:$port/healthz")"
node "$(dirname "$0")/console.mjs" "http://127.0.0.1:$port"
