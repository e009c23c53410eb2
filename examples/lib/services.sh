# Shared start-up for the restore examples (examples/bad-flag, examples/bad-deploy): real
# services on free 127.0.0.1 ports, each started in the background with its log in the
# example's temp dir, and all stopped again when the example's script exits, however it
# exits (trap on EXIT; Ctrl-C included). Sourced, not run:
#
#   . "$(dirname "$0")/../lib/services.sh"
#   ex_init bad-flag
#   ex_need_medic
#   ex_start_unleash            # sets UNLEASH_URL, UNLEASH_TOKEN
#
# The tools come from the installers in scripts/deps.d (scripts/install-test-deps runs them
# all); a missing one stops the example with a message naming its installer.

EX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EX_LIB="$EX_ROOT/examples/lib"
EX_DEPS="${MEDIC_DEPS_DIR:-$HOME/.cache/medic-test-deps}"
EX_PIDS=()     # "pid signal name", stopped in reverse order
EX_DIRS=()     # removed at exit
EX_STARTED=$SECONDS

if [ -t 1 ]; then
  ex_say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
  ex_say() { printf '==> %s\n' "$*"; }
fi
ex_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# ex_init NAME: the temp dir and the exit trap.
ex_init() {
  EX_NAME=$1
  EX_TMP=$(mktemp -d "${TMPDIR:-/tmp}/medic-example-$1.XXXXXX")
  EX_DIRS+=("$EX_TMP")
  trap ex_cleanup EXIT
  # An interrupt ends the script through the EXIT trap, which stops the services.
  trap 'exit 130' INT TERM HUP
}

ex_cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  local i entry pid sig name
  for ((i = ${#EX_PIDS[@]} - 1; i >= 0; i--)); do
    read -r pid sig name <<<"${EX_PIDS[$i]}"
    kill -"$sig" "$pid" 2>/dev/null || continue
    # Up to 10 s to shut down cleanly, then no more waiting.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ "${EX_SHOW_LOGS_ON_FAILURE:-1}" = 1 ]; then
    for log in "$EX_TMP"/*.log; do
      [ -s "$log" ] || continue
      printf '\n--- last lines of %s ---\n' "$(basename "$log")" >&2
      tail -n 15 "$log" >&2
    done
  fi
  for dir in "${EX_DIRS[@]}"; do
    rm -rf "$dir"
  done
  exit "$status"
}

# ex_need COMMAND INSTALLER: fails with a message naming the installer when COMMAND is missing.
ex_need() {
  command -v "$1" >/dev/null 2>&1 ||
    ex_die "\`$1\` is not installed: run $2 (or scripts/install-test-deps)"
}

ex_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ex_spawn NAME SIGNAL COMMAND...: starts COMMAND in the background, output in NAME.log,
# stdin from EX_STDIN (default /dev/null; bash would give it /dev/null anyway), and the fd
# in EX_CLOSE_FD closed in the child.
ex_spawn() {
  local name=$1 sig=$2
  shift 2
  if [ -n "${EX_CLOSE_FD:-}" ]; then
    "$@" <"${EX_STDIN:-/dev/null}" >"$EX_TMP/$name.log" 2>&1 {EX_CLOSE_FD}>&- &
  else
    "$@" <"${EX_STDIN:-/dev/null}" >"$EX_TMP/$name.log" 2>&1 &
  fi
  EX_PIDS+=("$! $sig $name")
  EX_LAST_PID=$!
}

# Words a server's log uses when another process took its port between ex_free_port and
# the bind (Node, Python, Go, PostgreSQL).
EX_PORT_TAKEN='EADDRINUSE|[Aa]ddress already in use|could not create any TCP/IP sockets'

# ex_port_lost NAME: NAME exited because its port was taken (worth a retry on another one).
ex_port_lost() {
  ! kill -0 "$EX_LAST_PID" 2>/dev/null && grep -Eq "$EX_PORT_TAKEN" "$EX_TMP/$1.log"
}

# ex_wait_http NAME URL SECONDS: waits until URL answers 200, or fails showing NAME's log.
# Returns 2 (for the caller to retry) when NAME exited because its port was taken.
ex_wait_http() {
  local name=$1 url=$2 limit=$3 started=$SECONDS
  until curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; do
    if ! kill -0 "$EX_LAST_PID" 2>/dev/null; then
      ex_port_lost "$name" && return 2
      ex_die "$name exited before it was ready (log: $EX_TMP/$name.log)"
    fi
    [ $((SECONDS - started)) -lt "$limit" ] ||
      ex_die "$name did not answer $url within ${limit}s (log: $EX_TMP/$name.log)"
    sleep 0.2
  done
  [[ "$url" =~ ^(https?://[^/]+) ]]
  ex_say "$name ready on ${BASH_REMATCH[1]} ($((SECONDS - started))s)"
}

# ex_port_from_stdout NAME: the port a server printed as its first line (shop.py, server.py).
ex_port_from_stdout() {
  local name=$1 port=""
  for _ in $(seq 100); do
    port=$(head -n 1 "$EX_TMP/$name.log" 2>/dev/null || true)
    [[ "$port" =~ ^[0-9]+$ ]] && break
    kill -0 "$EX_LAST_PID" 2>/dev/null || ex_die "$name exited: $(cat "$EX_TMP/$name.log")"
    sleep 0.1
  done
  [[ "$port" =~ ^[0-9]+$ ]] || ex_die "$name printed no port (log: $EX_TMP/$name.log)"
  EX_PORT=$port
}

# --- medic ----------------------------------------------------------------------------------

# MEDIC (the binary) and MEDIC_STEPS (the step components) from the environment, as the tests
# pass them; otherwise the debug build of this checkout and target/steps (scripts/build-steps),
# building what is missing.
ex_need_medic() {
  ex_need curl "your system's package manager (apt-get install curl)"
  ex_need python3 "your system's package manager (apt-get install python3)"
  if [ -z "${MEDIC:-}" ]; then
    ex_say "building medic (set MEDIC=/path/to/medic to skip)"
    (cd "$EX_ROOT" && cargo build --quiet -p medic-cli)
    MEDIC="${CARGO_TARGET_DIR:-$EX_ROOT/target}/debug/medic"
  fi
  [ -x "$MEDIC" ] || ex_die "MEDIC=$MEDIC is not an executable medic binary"
  if [ -z "${MEDIC_STEPS:-}" ]; then
    MEDIC_STEPS="$EX_ROOT/target/steps"
    if [ ! -f "$MEDIC_STEPS/flags-unleash.wasm" ]; then
      ex_say "building the step components (scripts/build-steps)"
      "$EX_ROOT/scripts/build-steps" >/dev/null
    fi
  fi
  # medic reads MEDIC_STEPS itself (colon-separated directories).
  export MEDIC_STEPS
  MEDIC_DATA="$EX_TMP/medic"
  export MEDIC_DATA
}

# --- PostgreSQL and Unleash (scripts/deps.d/20-unleash) -------------------------------------

ex_start_postgres() {
  local installer="scripts/deps.d/20-unleash"
  local initdb
  initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)
  [ -n "$initdb" ] || ex_die "PostgreSQL (initdb) is not installed: run $installer (or scripts/install-test-deps)"
  local bin
  bin=$(dirname "$initdb")
  # PostgreSQL refuses to run as root: then it runs as nobody, in a dir of its own.
  local as=()
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/medic-example-pg.XXXXXX")
  EX_DIRS+=("$dir")
  if [ "$(id -u)" -eq 0 ]; then
    chown "$(id -u nobody):$(id -g nobody)" "$dir"
    as=(setpriv "--reuid=$(id -u nobody)" "--regid=$(id -g nobody)" --clear-groups)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U unleash --auth=trust --no-sync -E UTF8 \
    >"$EX_TMP/initdb.log" 2>&1 || ex_die "initdb failed: $(tail -n 5 "$EX_TMP/initdb.log")"
  local try started
  for try in 1 2 3; do
    PG_PORT=$(ex_free_port)
    # SIGINT: PostgreSQL's fast shutdown.
    ex_spawn postgres INT "${as[@]}" "$bin/postgres" -D "$dir/data" -k "$dir" -h 127.0.0.1 \
      -p "$PG_PORT" -F
    started=$SECONDS
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
      if ! kill -0 "$EX_LAST_PID" 2>/dev/null; then
        ex_port_lost postgres && [ "$try" -lt 3 ] && continue 2
        ex_die "postgres exited (log: $EX_TMP/postgres.log)"
      fi
      [ $((SECONDS - started)) -lt 60 ] || ex_die "postgres not ready within 60s"
      sleep 0.2
    done
    ex_say "postgres ready on 127.0.0.1:$PG_PORT"
    return 0
  done
}

# Sets UNLEASH_URL and UNLEASH_TOKEN (an admin API token made up for this run).
ex_start_unleash() {
  local installer="scripts/deps.d/20-unleash"
  ex_need node "$installer"
  [ -f "$EX_DEPS/unleash/node_modules/unleash-server/package.json" ] ||
    ex_die "unleash-server is not installed in $EX_DEPS/unleash: run $installer (or scripts/install-test-deps)"
  ex_start_postgres
  UNLEASH_TOKEN="*:*.medic-example-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  # launch.mjs stops Unleash when its stdin closes: a FIFO whose only writer is this shell
  # (the fd is closed in Unleash itself), so Unleash stops with the script even if the
  # script is killed before its trap runs.
  mkfifo "$EX_TMP/unleash.stdin"
  exec {EX_UNLEASH_FD}<>"$EX_TMP/unleash.stdin"
  local port try rc
  for try in 1 2 3; do
    port=$(ex_free_port)
    UNLEASH_DIR="$EX_DEPS/unleash" DATABASE_URL="postgres://unleash@127.0.0.1:$PG_PORT/postgres" \
      HTTP_PORT="$port" INIT_ADMIN_API_TOKENS="$UNLEASH_TOKEN" \
      EX_STDIN="$EX_TMP/unleash.stdin" EX_CLOSE_FD=$EX_UNLEASH_FD \
      ex_spawn unleash TERM node "$EX_ROOT/tests/unleash/launch.mjs"
    UNLEASH_URL="http://127.0.0.1:$port"
    # A cold start runs Unleash's database migrations: ~15 s on an idle machine.
    rc=0
    ex_wait_http unleash "$UNLEASH_URL/health" 180 || rc=$?
    [ "$rc" -eq 0 ] && return 0
  done
  ex_die "unleash: every free port found was taken before it could bind"
}

# ex_unleash METHOD PATH [JSON]: one Admin API call; fails on an error status.
ex_unleash() {
  curl -fsS -X "$1" -H "Authorization: $UNLEASH_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$UNLEASH_URL$2"
}

# --- Synapse (scripts/deps.d/40-synapse) ----------------------------------------------------

# Sets MATRIX_URL, MATRIX_BOT (@medic:medic.test) with MATRIX_BOT_TOKEN, and MATRIX_ONCALL
# (@oncall:medic.test, the human) with MATRIX_ONCALL_TOKEN.
ex_start_synapse() {
  local python="$EX_DEPS/synapse-venv/bin/python"
  [ -x "$python" ] ||
    ex_die "Synapse is not installed ($python is missing): run scripts/deps.d/40-synapse (or scripts/install-test-deps)"
  local dir="$EX_TMP/synapse" port secret try rc
  mkdir -p "$dir"
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
  for try in 1 2 3; do
    port=$(ex_free_port)
    python3 "$EX_LIB/matrix.py" config "$dir" "$port" "$secret"
    ex_spawn synapse TERM "$python" -m synapse.app.homeserver --config-path "$dir/homeserver.yaml"
    MATRIX_URL="http://127.0.0.1:$port"
    # A cold start creates the SQLite schema: seconds when idle, much longer on a busy machine.
    rc=0
    ex_wait_http synapse "$MATRIX_URL/_matrix/client/versions" 300 || rc=$?
    [ "$rc" -eq 0 ] && break
    [ "$try" -lt 3 ] || ex_die "synapse: every free port found was taken before it could bind"
  done
  local creds
  creds=$(python3 "$EX_LIB/matrix.py" users "$MATRIX_URL" "$secret")
  MATRIX_BOT_TOKEN=$(sed -n 's/^MATRIX_BOT_TOKEN=//p' <<<"$creds")
  MATRIX_ONCALL_TOKEN=$(sed -n 's/^MATRIX_ONCALL_TOKEN=//p' <<<"$creds")
  MATRIX_BOT="@medic:medic.test"
  MATRIX_ONCALL="@oncall:medic.test"
}

# --- The Kubernetes API test server and kubectl (scripts/deps.d/30-kubectl) ------------------

# Sets K8S_URL and KUBECONFIG (exported, so `kubectl` in the script talks to this server).
ex_start_k8s() {
  ex_need kubectl scripts/deps.d/30-kubectl
  ex_spawn k8s-api TERM python3 "$EX_ROOT/tests/k8s-api/server.py" --port 0 \
    --rollout-delay-ms "${EX_ROLLOUT_DELAY_MS:-1500}"
  ex_port_from_stdout k8s-api
  K8S_URL="http://127.0.0.1:$EX_PORT"
  KUBECONFIG="$EX_TMP/kubeconfig"
  export KUBECONFIG
  cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: example
  cluster: {server: $K8S_URL}
users:
- name: example
  user: {}
contexts:
- name: example
  context: {cluster: example, user: example, namespace: default}
current-context: example
EOF
  ex_say "Kubernetes API (tests/k8s-api/server.py) on $K8S_URL; KUBECONFIG=$KUBECONFIG"
}

ex_kubectl() {
  kubectl --cache-dir "$EX_TMP/kube-cache" --request-timeout=20s "$@"
}

# --- The stand-in checkout service and Prometheus (scripts/deps.d/10-prometheus) -------------

# ex_start_shop ARGS...: examples/lib/shop.py with ARGS; sets SHOP_URL.
ex_start_shop() {
  ex_spawn shop TERM python3 "$EX_LIB/shop.py" --port 0 "$@"
  ex_port_from_stdout shop
  SHOP_URL="http://127.0.0.1:$EX_PORT"
  ex_say "checkout stand-in (examples/lib/shop.py) on $SHOP_URL"
}

# Prometheus scraping the stand-in every second as job "checkout"; sets PROM_URL.
ex_start_prometheus() {
  ex_need prometheus scripts/deps.d/10-prometheus
  local dir="$EX_TMP/prometheus" port try rc
  mkdir -p "$dir"
  cat >"$dir/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: checkout
    static_configs: [{targets: ["${SHOP_URL#http://}"]}]
EOF
  for try in 1 2 3; do
    port=$(ex_free_port)
    ex_spawn prometheus TERM prometheus "--config.file=$dir/prometheus.yml" \
      "--storage.tsdb.path=$dir/tsdb" "--web.listen-address=127.0.0.1:$port"
    PROM_URL="http://127.0.0.1:$port"
    rc=0
    ex_wait_http prometheus "$PROM_URL/-/ready" 60 || rc=$?
    [ "$rc" -eq 0 ] && return 0
  done
  ex_die "prometheus: every free port found was taken before it could bind"
}

# ex_prom_value QUERY: the first value of an instant query, or "none".
ex_prom_value() {
  curl -fsS --get --data-urlencode "query=$1" "$PROM_URL/api/v1/query" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "none")'
}

# ex_wait_prom QUERY OP VALUE SECONDS WHAT: waits until the query's value OP VALUE holds.
ex_wait_prom() {
  local query=$1 op=$2 value=$3 limit=$4 what=$5 started=$SECONDS v
  while :; do
    v=$(ex_prom_value "$query" || echo none)
    if [ "$v" != none ] && [ "$v" != NaN ] &&
      python3 -c "import sys; sys.exit(0 if float('$v') $op $value else 1)"; then
      break
    fi
    [ $((SECONDS - started)) -lt "$limit" ] || ex_die "$what: still $v after ${limit}s ($query)"
    sleep 0.5
  done
  ex_say "$what: $query = $v"
}

# --- The end ---------------------------------------------------------------------------------

# Keeps the services up for a look around when asked (MEDIC_EXAMPLE_KEEP=1, or a terminal on
# stdin), until Enter or end of input; writes the addresses to $MEDIC_EXAMPLE_STATE if set.
ex_hold() {
  if [ -n "${MEDIC_EXAMPLE_STATE:-}" ]; then
    local var
    : >"$MEDIC_EXAMPLE_STATE.tmp"
    for var in "$@"; do
      printf '%s=%s\n' "$var" "${!var}" >>"$MEDIC_EXAMPLE_STATE.tmp"
    done
    mv "$MEDIC_EXAMPLE_STATE.tmp" "$MEDIC_EXAMPLE_STATE"
  fi
  if [ "${MEDIC_EXAMPLE_KEEP:-0}" = 1 ] || [ -t 0 ]; then
    ex_say "the services are still up; press Enter (or close stdin) to stop them"
    read -r _ || true
  fi
}

ex_elapsed() {
  ex_say "$EX_NAME: done in $((SECONDS - EX_STARTED))s"
}
