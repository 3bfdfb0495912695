#!/usr/bin/env bash
# Real-client tests: the official OpenAI SDKs (Python, Node), Anthropic's Python SDK and
# curl against a live TokenHub gateway that relays to mock-upstream (OpenAI dialect for
# mock-gpt, Anthropic dialect for claude-sonnet-4), everything on loopback.
#
#   scripts/client-tests.sh                 # SQLite database in a temp dir
#   TOKENHUB_CLIENT_TESTS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/somedb \
#     scripts/client-tests.sh               # an existing (empty) database instead
#
# Installs its own dependencies on first use: clients/python/.venv (pip) and
# clients/node/node_modules (npm ci); later runs reuse them while the pins are unchanged.
# Exits non-zero if any suite fails, printing the servers' logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STARTUP_TIMEOUT_S=30       # mock-upstream and gateway readiness
INSTALL_TIMEOUT_S=900      # pip install / npm ci
SUITE_TIMEOUT_S=300        # each client suite
SHUTDOWN_TIMEOUT_S=15      # graceful stop after SIGTERM

log() { printf '[client-tests] %s\n' "$*" >&2; }

TMP="$(mktemp -d -t tokenhub-client-tests.XXXXXX)"
MOCK_PID=""
GATEWAY_PID=""
KEEP_TMP=0

dump_logs() {
  local f
  for f in "$TMP/mock.out" "$TMP/mock.err" "$TMP/gateway.err" "$TMP/gateway.out"; do
    if [[ -s "$f" ]]; then
      printf '\n----- tail -n 60 %s -----\n' "$f" >&2
      tail -n 60 "$f" >&2
    fi
  done
  printf '\n(full logs kept in %s)\n' "$TMP" >&2
  KEEP_TMP=1
}

die() {
  printf '\n[client-tests] FAILED: %s\n' "$*" >&2
  dump_logs
  exit 1
}

# stop_process PID NAME: SIGTERM, wait (bounded), then SIGKILL. Returns 1 if it had to kill.
stop_process() {
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < SHUTDOWN_TIMEOUT_S * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for ${SHUTDOWN_TIMEOUT_S}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$GATEWAY_PID" gateway || true
  stop_process "$MOCK_PID" mock-upstream || true
  if ((status == 0 && KEEP_TMP == 0)); then
    rm -rf "$TMP"
  elif ((KEEP_TMP == 0)); then
    dump_logs
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build
# `--tests` makes cargo resolve features with the dev-dependencies, exactly as
# `cargo test --workspace` does: after a `cargo test` (scripts/test.sh) this build is a
# no-op, and the binaries are the ones the Rust integration tests ran. A plain
# `cargo build --bins` resolves some shared crates with other features and recompiles
# them (~45 s cold on 2 cores).
log "building the workspace binaries (cargo build --workspace --bins --tests)"
if ! cargo build --workspace --bins --tests; then
  # Broken Rust tests must not hide the client results: build just the binaries.
  log "WARNING: building the test targets failed (see above); building only the binaries"
  cargo build --workspace --bins || die "cargo build --workspace --bins failed"
fi
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BIN_DIR="$TARGET_DIR/debug"
for bin in tokenhub mock-upstream; do
  [[ -x "$BIN_DIR/$bin" ]] || die "$BIN_DIR/$bin was not built"
done

# ---------------------------------------------------------------- client dependencies
sha() { sha256sum "$1" | cut -d' ' -f1; }

install_python() {
  local dir="$ROOT/clients/python" venv="$ROOT/clients/python/.venv"
  local want stamp="$venv/.requirements.sha256"
  want="$(sha "$dir/requirements.txt")"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c 'import openai, anthropic, pytest, httpx' 2>/dev/null; then
    log "reusing clients/python/.venv"
    return 0
  fi
  log "installing clients/python/.venv (pip install -r requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  timeout "$INSTALL_TIMEOUT_S" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$dir/requirements.txt" || return 1
  echo "$want" >"$stamp"
}

install_node() {
  local dir="$ROOT/clients/node"
  local want stamp="$dir/node_modules/.package-lock.sha256"
  want="$(sha "$dir/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$dir/node_modules/openai" ]]; then
    log "reusing clients/node/node_modules"
    return 0
  fi
  log "installing clients/node/node_modules (npm ci)"
  (cd "$dir" && timeout "$INSTALL_TIMEOUT_S" npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
}

install_python || die "could not install the Python client dependencies"
install_node || die "could not install the Node client dependencies"

# ---------------------------------------------------------------- mock-upstream
NO_COLOR=1 "$BIN_DIR/mock-upstream" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
MOCK_BASE_URL=""
for ((i = 0; i < STARTUP_TIMEOUT_S * 10; i++)); do
  MOCK_BASE_URL="$(sed -n 's#^mock-upstream listening on \(http://[0-9.]*:[0-9]*\).*#\1#p' "$TMP/mock.out" | head -n1)"
  [[ -n "$MOCK_BASE_URL" ]] && break
  kill -0 "$MOCK_PID" 2>/dev/null || die "mock-upstream exited before listening"
  sleep 0.1
done
[[ -n "$MOCK_BASE_URL" ]] || die "mock-upstream did not report its address within ${STARTUP_TIMEOUT_S}s"
log "mock-upstream at $MOCK_BASE_URL"

# ---------------------------------------------------------------- gateway
cat >"$TMP/tokenhub.toml" <<EOF
[[channels]]
name = "mock"
type = "openai"
base_url = "$MOCK_BASE_URL"
api_key = "mock-key"
models = ["mock-gpt", "alias-model"]
model_map = { "alias-model" = "mock-gpt" }

[[models]]
id = "mock-gpt"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "2.00"

[[models]]
id = "alias-model"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "2.00"

# claude-sonnet-4 served by the mock's Anthropic dialect (its /v1/messages), at
# Anthropic's prices. The priority puts it before the preset "anthropic" channel,
# which would serve the model too if ANTHROPIC_API_KEY happened to be set.
[[channels]]
name = "mock-anthropic"
type = "anthropic"
base_url = "$MOCK_BASE_URL"
api_key = "mock-key"
models = ["claude-sonnet-4"]
model_map = { "claude-sonnet-4" = "claude-sonnet-4-20250514" }
priority = 10

[[models]]
id = "claude-sonnet-4"
provider = "Anthropic"
context = 200000
input_usd_per_mtok = "3"
output_usd_per_mtok = "15"
cached_input_usd_per_mtok = "0.30"
cache_write_usd_per_mtok = "3.75"
EOF

export TOKENHUB_CONFIG="$TMP/tokenhub.toml"
if [[ -n "${TOKENHUB_CLIENT_TESTS_DATABASE_URL:-}" ]]; then
  export TOKENHUB_DATABASE_URL="$TOKENHUB_CLIENT_TESTS_DATABASE_URL"
  DB_LABEL="${TOKENHUB_DATABASE_URL%%:*}"
else
  export TOKENHUB_DATABASE_URL="sqlite://$TMP/tokenhub.db"
  DB_LABEL="sqlite"
fi
export TOKENHUB_RELOAD_INTERVAL_MS=100
export TOKENHUB_BIN="$BIN_DIR/tokenhub"
export MOCK_BASE_URL
export NO_COLOR=1 # plain server logs
log "database: ${TOKENHUB_DATABASE_URL}"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The free port can be taken between probing and binding: retry a few times.
GATEWAY_URL=""
for attempt in 1 2 3; do
  PORT="$(free_port)"
  : >"$TMP/gateway.err"
  TOKENHUB_LISTEN="127.0.0.1:$PORT" "$TOKENHUB_BIN" serve >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
  GATEWAY_PID=$!
  for ((i = 0; i < STARTUP_TIMEOUT_S * 10; i++)); do
    if [[ "$(curl -sS --max-time 2 "http://127.0.0.1:$PORT/healthz" 2>/dev/null || true)" == ok ]]; then
      GATEWAY_URL="http://127.0.0.1:$PORT"
      break
    fi
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$GATEWAY_URL" ]] && break
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null && grep -qi 'address.*in use' "$TMP/gateway.err"; then
    log "port $PORT was taken (attempt $attempt); retrying"
    GATEWAY_PID=""
    continue
  fi
  if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    die "gateway did not answer /healthz within ${STARTUP_TIMEOUT_S}s"
  fi
  die "gateway exited during startup"
done
[[ -n "$GATEWAY_URL" ]] || die "could not start the gateway on a free port"
grep -q "TokenHub is listening on $GATEWAY_URL/v1" "$TMP/gateway.err" ||
  die "gateway did not print 'TokenHub is listening on $GATEWAY_URL/v1'"
log "gateway at $GATEWAY_URL (pid $GATEWAY_PID)"

# ---------------------------------------------------------------- account
"$TOKENHUB_BIN" users create client-tests --balance-usd 5 >&2 || die "tokenhub users create failed"
TOKENHUB_API_KEY="$("$TOKENHUB_BIN" keys create --user client-tests --name client-tests)" ||
  die "tokenhub keys create failed"
[[ "$TOKENHUB_API_KEY" =~ ^sk-[A-Za-z0-9_-]+$ ]] || die "keys create printed '$TOKENHUB_API_KEY', not just a key"
export TOKENHUB_API_KEY
export TOKENHUB_BASE_URL="$GATEWAY_URL/v1"

# The gateway picks CLI writes up within its reload interval.
status=""
for ((i = 0; i < 100; i++)); do
  status="$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TOKENHUB_API_KEY" "$TOKENHUB_BASE_URL/models" || true)"
  [[ "$status" == 200 ]] && break
  sleep 0.1
done
[[ "$status" == 200 ]] || die "the new key was not accepted within 10 s (GET /v1/models -> $status)"

# ---------------------------------------------------------------- suites
declare -A RESULT
run_suite() {
  local name="$1"
  shift
  printf '\n===== %s client tests (%s) =====\n' "$name" "$DB_LABEL"
  local rc=0
  timeout "$SUITE_TIMEOUT_S" "$@" || rc=$?
  if ((rc == 124)); then
    echo "$name: timed out after ${SUITE_TIMEOUT_S}s"
  fi
  if ((rc == 0)); then RESULT[$name]=PASS; else RESULT[$name]="FAIL (exit $rc)"; fi
}

SECONDS=0
run_suite python bash -c 'cd clients/python && exec .venv/bin/python -m pytest -v test_openai_sdk.py test_anthropic_sdk.py test_anthropic_sdk_providers.py test_openai_sdk_claude.py'
run_suite node bash -c 'cd clients/node && exec node --test --test-reporter=spec test_openai.mjs'
run_suite curl clients/curl/test_curl.sh

# The gateway must stop cleanly on SIGTERM and flush pending usage records on the way
# out: send one request, stop the gateway at once, then look its record up.
printf '\n===== graceful shutdown (%s) =====\n' "$DB_LABEL"
shutdown="PASS"
last_id=""
if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
  shutdown="FAIL (gateway died during the tests)"
else
  last_id="$(curl -sS --max-time 30 -o /dev/null -D - "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $TOKENHUB_API_KEY" -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello there"}]}' |
    tr -d '\r' | sed -n 's/^x-request-id: *//Ip' | head -n1 || true)"
  set +e
  stop_process "$GATEWAY_PID" gateway
  stopped=$?
  wait "$GATEWAY_PID" 2>/dev/null
  gateway_rc=$?
  set -e
  GATEWAY_PID=""
  if ((stopped != 0)); then
    shutdown="FAIL (did not exit within ${SHUTDOWN_TIMEOUT_S}s of SIGTERM)"
  elif ((gateway_rc != 0)); then
    shutdown="FAIL (exit status $gateway_rc after SIGTERM)"
  elif [[ -z "$last_id" ]]; then
    shutdown="FAIL (the last request returned no x-request-id)"
  elif ! record="$("$TOKENHUB_BIN" usage get "$last_id")"; then
    shutdown="FAIL (usage record of $last_id missing after shutdown)"
  else
    echo "record of $last_id after shutdown: $record"
  fi
fi
echo "graceful-shutdown: $shutdown"
RESULT[graceful-shutdown]="$shutdown"

printf '\n===== client test summary (%s, %ss) =====\n' "$DB_LABEL" "$SECONDS"
failed=0
for name in python node curl graceful-shutdown; do
  printf '  %-18s %s\n' "$name" "${RESULT[$name]}"
  [[ "${RESULT[$name]}" == PASS ]] || failed=1
done
if ((failed)); then
  die "client tests failed against $DB_LABEL"
fi
echo "client tests ($DB_LABEL): all suites passed"
