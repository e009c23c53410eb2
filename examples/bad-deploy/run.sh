#!/usr/bin/env bash
# The bad-deploy scenario end to end (see README.md): the Kubernetes API test server with a
# deployment whose latest release is bad (set up with the real kubectl), real Synapse, real
# Prometheus scraping a stand-in checkout service whose health follows the image its
# replicas run, and `medic serve` receiving the alert as Alertmanager sends it. The run
# stops at a human gate; the script shows how to decide it and waits. Then the timeline,
# the war room, the deployment, and everything stopped again.
#
# Env: MEDIC (medic binary; default: cargo build), MEDIC_STEPS (step components; default
# target/steps from scripts/build-steps), MEDIC_EXAMPLE_DECIDE=approve|reject (decide the
# gate with `medic approve|reject` as the on-call would, instead of waiting for you),
# MEDIC_EXAMPLE_HICCUP=1 (the Kubernetes API refuses the rollback once with 503: a retry),
# MEDIC_EXAMPLE_KEEP=1 (keep the services up until Enter), MEDIC_EXAMPLE_STATE=FILE (write
# the services' addresses and this run's throwaway tokens there, for the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/services.sh"

ex_init bad-deploy
ex_need_medic
case "${MEDIC_EXAMPLE_DECIDE:-}" in
  "" | approve | reject) ;;
  *) ex_die "MEDIC_EXAMPLE_DECIDE must be approve or reject, not ${MEDIC_EXAMPLE_DECIDE}" ;;
esac

ex_say "starting the services (the first start of Synapse takes a while)"
ex_start_synapse
ex_start_k8s

# The team's history: release 1.41 was fine, 1.42 just rolled out and is bad.
cat >"$EX_TMP/checkout.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  annotations:
    kubernetes.io/change-cause: "release 1.41"
spec:
  replicas: 3
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
    spec:
      containers:
      - name: app
        image: shop/checkout:1.41
YAML
ex_kubectl create --validate=false -f "$EX_TMP/checkout.yaml" >/dev/null
ex_kubectl rollout status deployment/checkout --timeout=30s >/dev/null
ex_kubectl set image deployment/checkout app=shop/checkout:1.42 >/dev/null
ex_kubectl annotate --overwrite deployment/checkout kubernetes.io/change-cause="release 1.42" >/dev/null
ex_kubectl rollout status deployment/checkout --timeout=30s >/dev/null
# Impact starts now, with 1.42 rolled out: the alert says so (`startsAt`), so the
# postmortem measures time to detect and to mitigate from here.
impact_start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ex_say "kubectl rollout history deployment/checkout"
ex_kubectl rollout history deployment/checkout

ex_start_shop --k8s "$K8S_URL" --deployment checkout --bad-image shop/checkout:1.42
ex_start_prometheus
ratio='sum(rate(http_requests_total{job="checkout",code=~"5.."}[5s])) / sum(rate(http_requests_total{job="checkout"}[5s]))'
ex_wait_prom "$ratio" '>' 0.05 60 "Prometheus sees checkout failing (the alert's condition)"

# medic serve, as in production: an intake token for Alertmanager, a personal token for
# the on-call (a gate decided with it is recorded as "oncall"), the bot's Matrix token as a
# secret in its environment.
intake_token=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
oncall_token=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
# This environment's addresses (the services' real ports) are the values of the
# workflow's vars; external_url is where people reach this medic, for the postmortem link
# the follow-up posts (known once medic serve has a port).
write_config() {
  cat >"$EX_TMP/medic.toml" <<EOF
tokens = ["$intake_token"]
users = { oncall = "$oncall_token" }
external_url = "$1"
[secrets]
from = "env"
[vars]
k8s_url = "$K8S_URL"
k8s_host = "${K8S_URL#http://}"
matrix_url = "$MATRIX_URL"
matrix_host = "${MATRIX_URL#http://}"
shop_url = "$SHOP_URL"
shop_host = "${SHOP_URL#http://}"
prometheus_url = "$PROM_URL"
prometheus_host = "${PROM_URL#http://}"
EOF
  chmod 600 "$EX_TMP/medic.toml"
}
mkdir -p "$EX_TMP/workflows"
cp "$here/workflow.yaml" "$EX_TMP/workflows/checkout-bad-deploy.yaml"
printf 'Authorization: Bearer %s\n' "$intake_token" >"$EX_TMP/intake.header"

for try in 1 2 3; do
  serve_port=$(ex_free_port)
  MEDIC_SERVER="http://127.0.0.1:$serve_port"
  write_config "$MEDIC_SERVER"
  MEDIC_SECRET_MATRIX_TOKEN="$MATRIX_BOT_TOKEN" ex_spawn medic-serve TERM \
    "$MEDIC" serve --config "$EX_TMP/medic.toml" --workflows "$EX_TMP/workflows" \
    --listen "127.0.0.1:$serve_port"
  serve_pid=$EX_LAST_PID
  rc=0
  ex_wait_http medic-serve "$MEDIC_SERVER/readyz" 120 || rc=$?
  [ "$rc" -eq 0 ] && break
  [ "$try" -lt 3 ] || ex_die "medic serve: every free port found was taken before it could bind"
done
# How the on-call decides from another shell; the token stays in this file, off the screen.
printf 'export MEDIC_SERVER=%s MEDIC_TOKEN=%s\n' "$MEDIC_SERVER" "$oncall_token" >"$EX_TMP/oncall.env"
chmod 600 "$EX_TMP/oncall.env"

# alert.json, as Alertmanager would send it now: startsAt is when 1.42 rolled out, and
# `resolved` (with endsAt) once the error rate is back down.
alert_as() {
  python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
for x in a["alerts"]:
    x["startsAt"] = sys.argv[2]
    if sys.argv[3] == "resolved":
        a["status"] = x["status"] = "resolved"
        x["endsAt"] = sys.argv[4]
print(json.dumps(a))' "$here/alert.json" "$impact_start" "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$EX_TMP/alert-$1.json"
  curl -fsS -H @"$EX_TMP/intake.header" -H 'Content-Type: application/json' \
    --data @"$EX_TMP/alert-$1.json" "$MEDIC_SERVER/intake/alertmanager"
  echo
}
if [ -n "${MEDIC_EXAMPLE_HICCUP:-}" ]; then
  # The API server answers the next change (the rollback) 503 without applying it, as an
  # overloaded kube-apiserver would: medic retries the undo to the same revision.
  ex_say "MEDIC_EXAMPLE_HICCUP: the Kubernetes API will refuse the rollback once (503)"
  curl -fsS -X POST --data '{"method": "PATCH", "status": 503, "apply": false}' \
    "$K8S_URL/_test/fail-next" >/dev/null
fi
ex_say "Alertmanager would now send: POST /intake/alertmanager (alert.json, startsAt $impact_start)"
alert_as firing

# run_state: the first run's id, status and the gate's state, one per line, from the API.
run_state() {
  python3 "$EX_LIB/runs.py" "$MEDIC_SERVER" "$EX_TMP/intake.header" resume-rollouts
}

ex_say "medic is working: history, war room, undo, rollout, checks, freeze"
started=$SECONDS
until run_state >"$EX_TMP/run.state" 2>/dev/null &&
  { [ "$(sed -n 3p "$EX_TMP/run.state")" = open ] || [ "$(sed -n 2p "$EX_TMP/run.state")" != running ]; }; do
  [ $((SECONDS - started)) -lt 600 ] || ex_die "the run did not reach its gate within 600s"
  kill -0 "$serve_pid" 2>/dev/null || ex_die "medic serve exited (log: $EX_TMP/medic-serve.log)"
  sleep 1
done
run_id=$(sed -n 1p "$EX_TMP/run.state")
if [ "$(sed -n 3p "$EX_TMP/run.state")" = open ]; then
  # Checks passed and the error rate is down: Alertmanager resolves the alert, and the
  # run (still going, at its gate) journals the incident as resolved.
  ex_say "Alertmanager would now send the resolution: POST /intake/alertmanager (resolved)"
  alert_as resolved
  ex_say "run $run_id is waiting at the gate resume-rollouts:"
  sed -n '4,$p' "$EX_TMP/run.state" | sed 's/^/    /'
  echo "    Decide in another shell (nobody answering within 30 minutes keeps rollouts paused):"
  echo "      . $EX_TMP/oncall.env"
  echo "      $MEDIC approve $run_id resume-rollouts --comment 'the fix is in the pipeline'"
  echo "      $MEDIC reject  $run_id resume-rollouts --comment 'keep frozen until the fix'"
  if [ -n "${MEDIC_EXAMPLE_DECIDE:-}" ]; then
    ex_say "MEDIC_EXAMPLE_DECIDE=$MEDIC_EXAMPLE_DECIDE: deciding as the on-call would"
    (. "$EX_TMP/oncall.env" &&
      "$MEDIC" "$MEDIC_EXAMPLE_DECIDE" "$run_id" resume-rollouts \
        --comment "decided by examples/bad-deploy/run.sh")
  fi
  until run_state >"$EX_TMP/run.state" 2>/dev/null && [ "$(sed -n 2p "$EX_TMP/run.state")" != running ]; do
    kill -0 "$serve_pid" 2>/dev/null || ex_die "medic serve exited (log: $EX_TMP/medic-serve.log)"
    sleep 1
  done
fi

# The store is free once medic serve has stopped: show the run from it.
kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
echo
ex_say "medic runs show $run_id"
"$MEDIC" runs show "$run_id"
status=0
[ "$(sed -n 2p "$EX_TMP/run.state")" = succeeded ] || status=1

echo
room=$(python3 "$EX_LIB/matrix.py" rooms "$MATRIX_URL" "$MATRIX_ONCALL_TOKEN" | head -n 1)
if [ -n "$room" ]; then
  ex_say "what the war room shows (as $MATRIX_ONCALL, who was invited)"
  python3 "$EX_LIB/matrix.py" join "$MATRIX_URL" "$MATRIX_ONCALL_TOKEN" "$room"
  python3 "$EX_LIB/matrix.py" show "$MATRIX_URL" "$MATRIX_ONCALL_TOKEN" "$room"
fi
ex_say "kubectl rollout history deployment/checkout"
ex_kubectl rollout history deployment/checkout
image=$(ex_kubectl get deployment checkout -o jsonpath='{.spec.template.spec.containers[0].image}')
paused=$(ex_kubectl get deployment checkout -o jsonpath='{.spec.paused}')
ex_say "deployment/checkout runs $image, paused: ${paused:-false}"
ex_say "Prometheus: checkout error ratio now $(ex_prom_value "$ratio")"

WAR_ROOM=$room
RUN_ID=$run_id
INTAKE_TOKEN=$intake_token
ONCALL_TOKEN=$oncall_token
ex_hold K8S_URL KUBECONFIG MATRIX_URL MATRIX_ONCALL_TOKEN MATRIX_BOT_TOKEN WAR_ROOM PROM_URL MEDIC_DATA RUN_ID \
  MEDIC_SERVER INTAKE_TOKEN ONCALL_TOKEN
ex_elapsed
exit "$status"
