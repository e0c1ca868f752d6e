#!/usr/bin/env bash
# Throughput of `tally bench` against a server with and without a backup kept current
# (`tally backup --follow`) into a directory on the same disk, and the largest backup lag
# `/metrics` showed meanwhile (sampled every 200 ms). Runs alternate: without, with, ...
#
#   bash bench/backup-follow.sh target/release/tally 3
set -euo pipefail
tally=$(realpath "${1:?the tally binary}")
rounds=${2:-3}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run() {
  local follow=$1
  rm -rf "$work/data" "$work/backups"
  "$tally" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --backup-root "$work/backups" 2>"$work/serve.log" &
  local server=$!
  until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
  local follower=
  if [ "$follow" = yes ]; then
    "$tally" backup --url "http://127.0.0.1:$port" --to live --follow >"$work/follow.log" 2>&1 &
    follower=$!
  fi
  (while kill -0 "$server" 2>/dev/null; do
     curl -s "127.0.0.1:$port/metrics" | awk '/^tally_backup_lag_seconds /{print $2}'
     sleep 0.2
   done) >"$work/lag.log" 2>/dev/null &
  local sampler=$!
  echo "backup kept current: $follow"
  "$tally" bench --url "http://127.0.0.1:$port" 2>&1 | grep -E "transfers:|batch latency"
  sleep 2
  if [ -n "$follower" ]; then
    kill "$follower"; wait "$follower" 2>/dev/null || true
    echo "largest lag seen: $(sort -g "$work/lag.log" | tail -1) s; copies made: $(wc -l <"$work/follow.log")"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true
  kill "$sampler" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
  run no
  run yes
done
