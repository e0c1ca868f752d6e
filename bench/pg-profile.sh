#!/usr/bin/env bash
# Where a Tally node's time goes on PostgreSQL: one private cluster (fsync on, defaults, with
# pg_stat_statements), one `tally serve --engine postgres` node, and for each workload:
#   - the statements by total execution time (pg_stat_statements),
#   - what the backends waited on (pg_stat_activity sampled every 10 ms during the run),
#   - each batch transaction's phases (tally_pg_batch_phase_seconds from /metrics), the
#     time requests waited for their batch (tally_queue_wait_seconds) and requests per batch.
#
#   bash bench/pg-profile.sh                     # both workloads below
#   WORKLOADS=single bash bench/pg-profile.sh    # only one
#
# Needs initdb, pg_ctl, postgres and psql on PATH, and a release build of tally
# (cargo build --release -p tally-cli).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tally=${TALLY:-$here/../target/release/tally}
WORKLOADS=${WORKLOADS:-"batched single"}

dir=$(mktemp -d /tmp/tally-pgprofile-XXXXXX)
as_user=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; as_user=(runuser -u postgres --); fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
"${as_user[@]}" initdb -D "$dir/data" -U tally --auth=trust -E UTF8 --locale=C >/dev/null
"${as_user[@]}" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 \
    -c max_connections=200 -c shared_preload_libraries=pg_stat_statements -c track_io_timing=on" start >/dev/null
node=""
cleanup() {
    [ -n "$node" ] && kill "$node" 2>/dev/null && wait "$node" 2>/dev/null
    "${as_user[@]}" pg_ctl -D "$dir/data" -m fast -w stop >/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
url="host=$dir port=$port user=tally dbname=postgres"
sql() { psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE EXTENSION pg_stat_statements"
echo "private PostgreSQL $(postgres --version | awk '{print $3}') on port $port, fsync on, default settings"

profile() { # label, then tally bench arguments
    local label=$1
    shift
    sql -c "DROP SCHEMA IF EXISTS tally CASCADE" 2>/dev/null
    local http
    http=$(free_port)
    RUST_LOG=warn "$tally" serve --engine postgres --database-url "$url" --listen "127.0.0.1:$http" 2>"$dir/node.log" &
    node=$!
    until curl -sf "http://127.0.0.1:$http/healthz" >/dev/null; do sleep 0.1; done
    sql -c "SELECT pg_stat_statements_reset()" >/dev/null
    sql -c "CREATE UNLOGGED TABLE IF NOT EXISTS public.waits (wait text); TRUNCATE public.waits"
    # Samples in one session, committed at the end: cheap, and out of the node's way.
    sql -c "DO \$\$ BEGIN
        FOR i IN 1..100000 LOOP
            INSERT INTO public.waits SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'on CPU')
                    ELSE 'idle in transaction: waiting for the node' END
                FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                    AND state IN ('active', 'idle in transaction');
            PERFORM pg_stat_clear_snapshot();
            PERFORM pg_sleep(0.01);
            EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'profile-stop');
        END LOOP; END \$\$" &
    local sampler=$!
    echo
    echo "== $label"
    "$tally" bench --url "http://127.0.0.1:$http" "$@" 2>/dev/null | grep -E '^transfers:|^batch latency'
    PGAPPNAME=profile-stop psql "$url" -X -q -c "SELECT pg_sleep(0.2)" >/dev/null
    wait "$sampler"
    echo "-- statements by total time (ms), calls, mean (ms), rows, shared blocks hit / read / dirtied, WAL bytes"
    sql -A -F ' | ' -c "SELECT round(total_exec_time) AS total_ms, calls, round((total_exec_time / calls)::numeric, 3) AS mean_ms,
            rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied, wal_bytes,
            regexp_replace(left(query, 90), '\s+', ' ', 'g') AS statement
        FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' AND query NOT LIKE '%public.waits%'
        ORDER BY total_exec_time DESC LIMIT 14"
    echo "-- what the backends in a transaction were doing (share of samples)"
    sql -A -F ' | ' -c "SELECT wait, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent
        FROM public.waits GROUP BY wait ORDER BY count(*) DESC LIMIT 10"
    echo "-- the node: mean per batch of each phase (ms), queue wait and batch size"
    curl -s "http://127.0.0.1:$http/metrics" | awk '
        /^tally_pg_batch_phase_seconds_sum/ { match($0, /phase="[a-z]+"/); p = substr($0, RSTART + 7, RLENGTH - 8); sum[p] = $2 }
        /^tally_pg_batch_phase_seconds_count/ { match($0, /phase="[a-z]+"/); p = substr($0, RSTART + 7, RLENGTH - 8); n[p] = $2 }
        /^tally_queue_wait_seconds_sum/ { qs = $2 } /^tally_queue_wait_seconds_count/ { qn = $2 }
        END {
            for (p in sum) if (n[p] > 0) printf "phase %-6s %8.3f ms over %d batches\n", p, 1000 * sum[p] / n[p], n[p]
            if (qn > 0) printf "queue wait %.3f ms mean over %d requests\n", 1000 * qs / qn, qn
            if (n["lock"] > 0) printf "requests per batch %.1f mean (the accounts set up before the run included)\n", qn / n["lock"]
        }'
    kill "$node"
    wait "$node" 2>/dev/null || true
    node=""
}

for workload in $WORKLOADS; do
    case $workload in
        batched) profile "uniform 100,000 accounts, batches of 1,000, 4 clients" \
            --accounts 100000 --transfers 300000 --batch 1000 --clients 4 ;;
        single) profile "uniform 100,000 accounts, 32 clients sending single transfers" \
            --accounts 100000 --transfers 100000 --batch 1 --clients 32 ;;
        *) echo "unknown workload $workload (batched, single)" >&2; exit 2 ;;
    esac
done
