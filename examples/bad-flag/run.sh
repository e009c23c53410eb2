#!/usr/bin/env bash
# The bad-flag scenario end to end (see README.md): real Unleash on PostgreSQL, real Synapse,
# real Prometheus scraping a stand-in checkout service that fails while the flag is on; then
# `medic run` with the alert, the timeline, what the incidents room shows, and everything
# stopped again.
#
# Env: MEDIC (medic binary; default: cargo build), MEDIC_STEPS (step components; default
# target/steps from scripts/build-steps), MEDIC_EXAMPLE_KEEP=1 (keep the services up until
# Enter), MEDIC_EXAMPLE_STATE=FILE (write the services' addresses and this run's throwaway
# tokens there, for the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/services.sh"

ex_init bad-flag
ex_need_medic

ex_say "starting the services (the first start of Unleash and Synapse takes a while)"
ex_start_unleash
ex_start_synapse

# The team's setup: the flag exists and someone just switched it on in production; the
# incidents room exists and the medic bot is in it.
ex_unleash POST /api/admin/projects/default/features \
  '{"name": "new-checkout", "type": "release", "description": "The new checkout flow"}' >/dev/null
ex_unleash POST /api/admin/projects/default/features/new-checkout/environments/production/on >/dev/null
ex_say "Unleash: new-checkout switched on in production"
eval "$(python3 "$EX_LIB/matrix.py" room "$MATRIX_URL" "$MATRIX_ONCALL_TOKEN" incidents "$MATRIX_BOT")"
python3 "$EX_LIB/matrix.py" join "$MATRIX_URL" "$MATRIX_BOT_TOKEN" "$MATRIX_ROOM_ID"
ex_say "Matrix: #incidents:medic.test ($MATRIX_ROOM_ID), $MATRIX_ONCALL and $MATRIX_BOT in it"

ex_start_shop --unleash "$UNLEASH_URL" --unleash-token "$UNLEASH_TOKEN" --feature new-checkout
ex_start_prometheus
ratio='sum(rate(http_requests_total{job="checkout",code=~"5.."}[5s])) / sum(rate(http_requests_total{job="checkout"}[5s]))'
ex_wait_prom "$ratio" '>' 0.05 60 "Prometheus sees checkout failing (the alert's condition)"

# The workflow as written; this environment's addresses (the services' real ports) are
# the values of its vars, in this environment's medic.toml.
cat >"$EX_TMP/medic.toml" <<EOF
[vars]
unleash_url = "$UNLEASH_URL"
unleash_host = "${UNLEASH_URL#http://}"
matrix_url = "$MATRIX_URL"
matrix_host = "${MATRIX_URL#http://}"
prometheus_url = "$PROM_URL"
prometheus_host = "${PROM_URL#http://}"
EOF

ex_say "medic run workflow.yaml --alert alert.json --config medic.toml"
status=0
# Secrets reach medic as MEDIC_SECRET_<NAME>, only in its own environment.
MEDIC_SECRET_UNLEASH_TOKEN="$UNLEASH_TOKEN" MEDIC_SECRET_MATRIX_TOKEN="$MATRIX_BOT_TOKEN" \
  "$MEDIC" run "$here/workflow.yaml" --alert "$here/alert.json" --config "$EX_TMP/medic.toml" || status=$?

echo
ex_say "what the incidents room shows (as $MATRIX_ONCALL)"
python3 "$EX_LIB/matrix.py" show "$MATRIX_URL" "$MATRIX_ONCALL_TOKEN" "$MATRIX_ROOM_ID"
ex_say "Unleash: new-checkout in production is enabled=$(ex_unleash GET /api/admin/projects/default/features/new-checkout |
  python3 -c 'import json,sys; print(next(e["enabled"] for e in json.load(sys.stdin)["environments"] if e["name"] == "production"))')"
ex_say "Prometheus: checkout error ratio now $(ex_prom_value "$ratio")"

ex_hold UNLEASH_URL UNLEASH_TOKEN MATRIX_URL MATRIX_ONCALL_TOKEN MATRIX_ROOM_ID PROM_URL MEDIC_DATA
ex_elapsed
exit "$status"
