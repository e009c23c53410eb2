#!/usr/bin/env bash
# The guarded-rollout scenario end to end (see README.md): real Unleash on PostgreSQL, real
# Prometheus scraping a stand-in checkout service whose errors follow the share of users the
# flag lets in; then `medic run` raises the flag 5% → 25% → 100% with a check between stages,
# and undoes it (0%) on a regression.
#
# Env: MEDIC (medic binary; default: cargo build), MEDIC_STEPS (step components; default
# target/steps from scripts/build-steps), GUARDED_ROLLOUT_BUG_SHARE (share of the requests of
# the users on the new code that fail; default 0.3, a regression at 25%; 0: a healthy release
# that reaches 100%), MEDIC_EXAMPLE_KEEP=1 (keep the services up until Enter),
# MEDIC_EXAMPLE_STATE=FILE (write the services' addresses and this run's throwaway token
# there, for the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/services.sh"

ex_init guarded-rollout
ex_need_medic

ex_say "starting the services (the first start of Unleash takes a while)"
ex_start_unleash

# The team's setup: the release shipped new-checkout dark; the flag exists and is off in
# production.
ex_unleash POST /api/admin/projects/default/features \
  '{"name": "new-checkout", "type": "release", "description": "The new checkout flow"}' >/dev/null
ex_say "Unleash: new-checkout exists, off in production"

bug=${GUARDED_ROLLOUT_BUG_SHARE:-0.3}
ex_start_shop --unleash "$UNLEASH_URL" --unleash-token "$UNLEASH_TOKEN" --feature new-checkout \
  --gradual "$bug"
ex_say "checkout: the new code fails $bug of the requests of the users it reaches"
ex_start_prometheus
ratio='sum(rate(http_requests_total{job="checkout",code=~"5.."}[5s])) / sum(rate(http_requests_total{job="checkout"}[5s]))'
ex_wait_prom "$ratio" '<' 0.01 60 "Prometheus sees checkout healthy before the rollout"

# The workflow as written, with the services' real ports.
sed -e "s#127.0.0.1:4242#${UNLEASH_URL#http://}#g" \
  -e "s#127.0.0.1:9090#${PROM_URL#http://}#g" \
  "$here/workflow.yaml" >"$EX_TMP/workflow.yaml"

ex_say "medic run workflow.yaml --alert alert.json"
status=0
# Secrets reach medic as MEDIC_SECRET_<NAME>, only in its own environment.
MEDIC_SECRET_UNLEASH_TOKEN="$UNLEASH_TOKEN" \
  "$MEDIC" run "$EX_TMP/workflow.yaml" --alert "$here/alert.json" || status=$?

echo
ex_say "Unleash: new-checkout in production: $(ex_unleash GET /api/admin/projects/default/features/new-checkout |
  python3 -c '
import json, sys
env = next(e for e in json.load(sys.stdin)["environments"] if e["name"] == "production")
pct = [s["parameters"].get("rollout") for s in env.get("strategies", []) if s["name"] == "flexibleRollout"]
print("enabled=%s, rollout=%s%%" % (env["enabled"], pct[0] if pct else None))')"
ex_say "Prometheus: checkout error ratio now $(ex_prom_value "$ratio")"

ex_hold UNLEASH_URL UNLEASH_TOKEN PROM_URL MEDIC_DATA
ex_elapsed
exit "$status"
