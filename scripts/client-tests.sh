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

LOG_TAG=client-tests
TMP="$(mktemp -d -t tokenhub-client-tests.XXXXXX)"
MOCK_PID=""
GATEWAY_PID=""
KEEP_TMP=0
# shellcheck source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"

# ---------------------------------------------------------------- build
build_binaries

# ---------------------------------------------------------------- client dependencies
sha() { sha256sum "$1" | cut -d' ' -f1; }

install_python() {
  local dir="$ROOT/clients/python" venv="$ROOT/clients/python/.venv"
  local want stamp="$venv/.requirements.sha256"
  want="$(sha "$dir/requirements.txt")"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c 'import openai, anthropic, pytest, httpx, agents' 2>/dev/null; then
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

install_python || die "could not install the Python client dependencies"
npm_install "$ROOT/clients/node" openai || die "could not install the Node client dependencies"

# ---------------------------------------------------------------- mock-upstream
start_mock

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
model_map = { "claude-sonnet-4" = "claude-sonnet-4-6" }
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
  # PostgreSQL needs the key that seals channel keys (SQLite makes a key file itself).
  TOKENHUB_SECRET_KEY="${TOKENHUB_SECRET_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"
  export TOKENHUB_SECRET_KEY
else
  export TOKENHUB_DATABASE_URL="sqlite://$TMP/tokenhub.db"
  DB_LABEL="sqlite"
fi
export TOKENHUB_RELOAD_INTERVAL_MS=100
export TOKENHUB_BIN="$BIN_DIR/tokenhub"
export MOCK_BASE_URL
export NO_COLOR=1 # plain server logs
log "database: ${TOKENHUB_DATABASE_URL}"

start_gateway
# /healthz answers as soon as the serving threads run, which can be just before the
# start-up line is written: give it five seconds.
for ((i = 0; i < 50; i++)); do
  grep -q "TokenHub is listening on $GATEWAY_URL/v1" "$TMP/gateway.err" && break
  sleep 0.1
done
grep -q "TokenHub is listening on $GATEWAY_URL/v1" "$TMP/gateway.err" ||
  die "gateway did not print 'TokenHub is listening on $GATEWAY_URL/v1'"

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
run_suite python bash -c 'cd clients/python && exec .venv/bin/python -m pytest -v test_openai_sdk.py test_anthropic_sdk.py test_anthropic_sdk_providers.py test_openai_sdk_claude.py test_openai_responses.py test_fidelity.py'
run_suite node bash -c 'cd clients/node && exec node --test --test-reporter=spec test_openai.mjs test_responses.mjs'
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
