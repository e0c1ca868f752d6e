#!/bin/bash
# How tests/data/ledger-v1 was written: a small ledger with every kind of event, a snapshot
# (clean stop), and journal records after it (the second run is killed, so its tail has no
# snapshot). Usage: make-ledger-v1.sh DIR PORT, with TALLY_BIN naming the build to use.
# The committed directory must never be rewritten: it is what a format-version-1 build wrote.
set -euo pipefail
bin=${TALLY_BIN:-target/release/tally}
dir=$1; port=$2
rm -rf "$dir"
u=http://127.0.0.1:$port
post() { curl -sf -X POST "$u$1" -d "$2"; echo; }
patch() { curl -sf -X PATCH "$u$1" -d "$2"; echo; }
start() { $bin serve --data-dir "$dir" --listen 127.0.0.1:$port 2>/dev/null & pid=$!; for i in $(seq 100); do curl -sf $u/healthz >/dev/null && break; sleep 0.1; done; }
start
post /v1/assets '{"code":"USD","scale":2}'
post /v1/assets '{"code":"JOB","scale":0}'
post /v1/accounts '{"accounts":[{"id":"world:usd","asset":"USD","min_balance":null},{"id":"alice","asset":"USD","metadata":{"name":"Alice","tier":1}},{"id":"bob","asset":"USD","max_balance":"1000.00"},{"id":"org","asset":"USD","min_balance":"-50.00"},{"id":"org:design","asset":"USD","parent":"org","min_balance":null},{"id":"org:infra","asset":"USD","parent":"org","min_balance":null},{"id":"bank:usd","asset":"USD","min_balance":null}]}'
post /v1/accounts '{"accounts":[{"id":"job:7:slots","asset":"JOB","min_balance":"0"},{"id":"job:7:issuer","asset":"JOB","min_balance":null}]}'
post /v1/transfers '{"transfers":[{"id":"fund-1","debit":"world:usd","credit":"alice","amount":"100.00","metadata":{"ref":"wire 1"}},{"id":"fund-2","debit":"world:usd","credit":"bob","amount":"20.50"},{"id":"slots","debit":"job:7:issuer","credit":"job:7:slots","amount":"2"}]}'
post /v1/transfers '{"transfers":[{"id":"wd-1","debit":"alice","credit":"bank:usd","amount":"80.00","pending":true,"timeout_ms":3600000},{"id":"wd-2","debit":"alice","credit":"bank:usd","amount":"80.00","pending":true}]}'
post /v1/transfers '{"transfers":[{"id":"wd-1-post","post":"wd-1","amount":"75.00"}]}'
post /v1/transfers '{"transfers":[{"id":"hold-short","debit":"bob","credit":"bank:usd","amount":"5.00","pending":true,"timeout_ms":1}]}'
sleep 1.2
post /v1/transfers '{"transfers":[{"id":"chain-a","debit":"bob","credit":"alice","amount":"1.00","linked":true},{"id":"chain-b","debit":"alice","credit":"bob","amount":"9999.00"}]}'
post /v1/transfers '{"transfers":[{"id":"team-1","debit":"org:design","credit":"org:infra","amount":"30.00"},{"id":"team-2","debit":"org:infra","credit":"world:usd","amount":"40.00"}]}'
patch /v1/accounts/bob '{"max_balance":"2000.00","metadata":{"note":"raised"}}'
kill -TERM $pid; wait $pid || true
start
post /v1/transfers '{"transfers":[{"id":"apply-1","debit":"job:7:slots","credit":"job:7:issuer","amount":"1","pending":true},{"id":"apply-2","debit":"job:7:slots","credit":"job:7:issuer","amount":"1","pending":true},{"id":"apply-3","debit":"job:7:slots","credit":"job:7:issuer","amount":"1","pending":true}]}'
post /v1/transfers '{"transfers":[{"id":"apply-1-reject","void":"apply-1"},{"id":"wd-2-void","void":"wd-2"}]}'
post /v1/transfers '{"transfers":[{"id":"fund-1","debit":"world:usd","credit":"alice","amount":"100.00","metadata":{"ref":"wire 1"}}]}'
kill -KILL $pid; wait $pid 2>/dev/null || true
rm -f "$dir/tally.lock"
