#!/usr/bin/env bash
# Builds the step, runs it once on the sample invocation (params.json, incident.json)
# and checks what it did; then checks that bad params are refused.
# MEDIC: the medic binary (default: `medic` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
medic="${MEDIC:-medic}"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$medic" step build .

out=$("$medic" step test dist/{{name}}.wasm --params params.json --incident incident.json --json) \
  || { echo "$out"; fail "the step failed on the sample invocation"; }
echo "$out"
grep -q '"wit_version": "{{wit}}"' <<<"$out" || fail "not built against medic:step@{{wit}}"
grep -q '"echo": "hello from the sample invocation"' <<<"$out" || fail "output lacks the echoed message"
grep -q '"message": "{{name}}: hello from the sample invocation"' <<<"$out" \
  || fail "no timeline annotation"

if bad=$("$medic" step test dist/{{name}}.wasm --params '{"message": ""}' --json); then
  echo "$bad"
  fail "an empty message was accepted"
fi
grep -q '"retryable": false' <<<"$bad" || fail "bad params should be a non-retryable error"

echo "ok: {{name}} passed its test"
