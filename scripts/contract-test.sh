#!/usr/bin/env bash
# API contract test: drives a fresh server from its own OpenAPI document with generated
# requests (schemathesis, from PyPI) and requires no 5xx answer, and no status code, content
# type, header or body outside what the document promises. It runs with an admin key.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/contract-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
cargo build --quiet --locked -p tally-cli
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The contract holds for a client with a key, as a deployment with keys serves it.
made=$(target/debug/tally keys create --scope admin --name contract --data-dir "$work/data")
key=${made%%$'\n'*}
target/debug/tally serve --data-dir "$work/data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do
  python3 -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$port/healthz', headers={'Authorization': 'Bearer $key'}))" 2>/dev/null && break
  sleep 0.1
done
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" --header "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
  --max-examples "${TALLY_CONTRACT_EXAMPLES:-100}" --seed "${TALLY_CONTRACT_SEED:-1}" --no-color
