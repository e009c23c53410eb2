#!/usr/bin/env bash
# Runs the checkout-flag scenario end to end: starts the stand-in service, then
# `medic run` with the alert. Usage: examples/checkout-flag/run.sh [medic args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${MEDIC_DEMO_PORT:-18080}
tmp=$(mktemp -d)
python3 "$root/examples/checkout-flag/server.py" --scenario deploy --port "$port" > "$tmp/port" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "the stand-in service did not start on 127.0.0.1:$port" >&2; exit 1; }
sed "s#http://127.0.0.1:18080#http://127.0.0.1:$(cat "$tmp/port")#" "$here/alert.json" > "$tmp/alert.json"
medic=${MEDIC:-$root/target/debug/medic}
"$medic" --steps "${MEDIC_STEPS_DIR:-$root/target/steps}" "$@" run "$here/workflow.yaml" --alert "$tmp/alert.json"
