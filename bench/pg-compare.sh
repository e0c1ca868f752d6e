#!/usr/bin/env bash
# Tally on PostgreSQL beside plain-SQL baselines, in one session on one private PostgreSQL
# cluster (PostgreSQL defaults, fsync on). Prints one line per measurement.
#
#   bash bench/pg-compare.sh            # DURATION=20 s per baseline run, RUNS=3 (median)
#   DURATION=10 RUNS=1 bash bench/pg-compare.sh
#
# Needs initdb, pg_ctl, postgres, psql and pgbench on PATH, and a release build of tally
# (cargo build --release -p tally-cli).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tally=${TALLY:-$here/../target/release/tally}
DURATION=${DURATION:-20}
RUNS=${RUNS:-3}
TALLY_TRANSFERS=${TALLY_TRANSFERS:-400000}

# A private cluster: initdb refuses root, so as root it runs as `postgres`.
dir=$(mktemp -d /tmp/tally-pgbench-XXXXXX)
as_user=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; as_user=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_user[@]}" initdb -D "$dir/data" -U tally --auth=trust -E UTF8 --locale=C >/dev/null
"${as_user[@]}" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
trap '"${as_user[@]}" pg_ctl -D "$dir/data" -m fast -w stop >/dev/null; rm -rf "$dir"' EXIT
url="host=$dir port=$port user=tally dbname=postgres"
echo "private PostgreSQL $(postgres --version | awk '{print $3}') on port $port, fsync on, default settings"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

baseline() { # script accounts clients
    local per=1 runs=()
    [ "$1" = batch ] && per=100
    for _ in $(seq "$RUNS"); do
        local out
        out=$(pgbench -h "$dir" -p "$port" -U tally -n -M prepared -c "$3" -j 2 -T "$DURATION" --max-tries=1000 \
            -D accounts="$2" -f "$here/pg/$1.sql" postgres 2>&1)
        local tps failed
        tps=$(echo "$out" | awk '/^tps = / { print $3 }')
        failed=$(echo "$out" | awk '/number of failed transactions/ { print $5 }')
        runs+=("$(awk -v t="$tps" -v p="$per" 'BEGIN { printf "%.0f", t * p }') ${failed:-0}")
    done
    local best
    best=$(printf '%s\n' "${runs[@]}" | awk '{ print $1 }' | median)
    echo "baseline $1, $2 accounts, $3 clients: $best transfers/s (runs: $(printf '%s; ' "${runs[@]}"| sed 's/ \([0-9]*\);/ (failed \1);/g'))"
}

for accounts in 100000 10; do
    psql "$url" -q -v accounts=$accounts -f "$here/pg/schema.sql" >/dev/null 2>&1
    for script in lock cas optimistic serializable function batch; do
        for clients in 8 32; do
            baseline $script $accounts $clients
        done
    done
done
psql "$url" -q -c "DROP SCHEMA baseline CASCADE" >/dev/null

tally_bench() { # label, then tally bench arguments
    local label=$1
    shift
    psql "$url" -q -c "DROP SCHEMA IF EXISTS tally CASCADE" >/dev/null 2>&1
    local out
    out=$("$tally" bench --engine postgres --database-url "$url" "$@" 2>/dev/null | grep -E '^transfers:|^batch latency')
    echo "tally $label: $(echo "$out" | tr '\n' ' ')"
}

for strategy in locking optimistic serializable; do
    for nodes in 1 3; do
        tally_bench "$strategy, $nodes node(s), uniform 100,000 accounts, batches of 1,000, 4 clients" \
            --pg-concurrency $strategy --nodes $nodes --accounts 100000 --transfers "$TALLY_TRANSFERS" --batch 1000 --clients 4
        tally_bench "$strategy, $nodes node(s), 10 hot accounts, batches of 1,000, 4 clients" \
            --pg-concurrency $strategy --nodes $nodes --accounts 100000 --workload hot --hot-accounts 10 --hot-percent 100 \
            --transfers "$TALLY_TRANSFERS" --batch 1000 --clients 4
    done
done
for workload in "--accounts 100000" "--accounts 100000 --workload hot --hot-accounts 10 --hot-percent 100"; do
    # shellcheck disable=SC2086
    tally_bench "locking, 1 node, 32 clients sending single transfers ($workload)" \
        --pg-concurrency locking $workload --transfers 100000 --batch 1 --clients 32
done
