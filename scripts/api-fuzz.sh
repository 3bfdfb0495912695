#!/usr/bin/env bash
# Property-based test of the management API: schemathesis generates requests for every
# operation of /api/openapi.json, valid and invalid, and fails on any 5xx answer and on
# any answer the document does not describe (status, content type, body schema).
#
#   scripts/api-fuzz.sh                 # API_FUZZ_EXAMPLES (default 25) per operation and caller
#   API_FUZZ_SEED=1234 scripts/api-fuzz.sh   # replay a run (the seed is printed)
#   API_FUZZ_CALLERS=admin scripts/api-fuzz.sh  # one caller only (default: "user admin")
#
# Two runs against one live gateway (SQLite, mock upstream on loopback): as a user with a
# session (cookie + X-CSRF-Token), then as root with a th-admin- token. The credentials
# come from clients/schemathesis/hooks.py. Installs clients/schemathesis/.venv on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STARTUP_TIMEOUT_S=30
INSTALL_TIMEOUT_S=900
RUN_TIMEOUT_S=300          # each schemathesis run
EXAMPLES="${API_FUZZ_EXAMPLES:-25}"
SEED="${API_FUZZ_SEED:-$RANDOM$RANDOM}"
# Logins of the hooks come from here, away from the generated failed logins on 127.0.0.1.
LOGIN_SOURCE=127.0.0.2

LOG_TAG=api-fuzz
TMP="$(mktemp -d -t tokenhub-api-fuzz.XXXXXX)"
MOCK_PID=""
GATEWAY_PID=""
KEEP_TMP=0
# shellcheck source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"

build_binaries

install_schemathesis() {
  local dir="$ROOT/clients/schemathesis" venv="$ROOT/clients/schemathesis/.venv"
  local want stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/st" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "reusing clients/schemathesis/.venv"
    return 0
  fi
  log "installing clients/schemathesis/.venv (pip install -r requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  timeout "$INSTALL_TIMEOUT_S" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$dir/requirements.txt" || return 1
  echo "$want" >"$stamp"
}
install_schemathesis || die "could not install schemathesis"

start_mock

# A channel on the mock, so the channel operations (upstream models, import, test) reach
# a real upstream.
cat >"$TMP/tokenhub.toml" <<TOML
[[channels]]
name = "mock"
type = "openai"
base_url = "$MOCK_BASE_URL"
api_key = "mock-key"
models = ["mock-gpt"]

[[models]]
id = "mock-gpt"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "2.00"
TOML
export TOKENHUB_CONFIG="$TMP/tokenhub.toml"
export TOKENHUB_DATABASE_URL="sqlite://$TMP/tokenhub.db"
export TOKENHUB_RELOAD_INTERVAL_MS=100
export TOKENHUB_SIGNUP=open
export TOKENHUB_BIN="$BIN_DIR/tokenhub"
export NO_COLOR=1
start_gateway

# ---------------------------------------------------------------- the user
export API_FUZZ_USER=api-fuzz-user
API_FUZZ_PASSWORD="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export API_FUZZ_PASSWORD
status="$(curl -sS --max-time 30 --interface "$LOGIN_SOURCE" -o "$TMP/signup.json" -w '%{http_code}' \
  -H 'Content-Type: application/json' "$GATEWAY_URL/api/auth/signup" \
  -d "{\"username\":\"$API_FUZZ_USER\",\"password\":\"$API_FUZZ_PASSWORD\"}")" ||
  die "sign-up request failed"
[[ "$status" == 201 ]] || die "sign-up answered $status: $(cat "$TMP/signup.json")"
API_FUZZ_API_KEY="$("$TOKENHUB_BIN" keys create --user "$API_FUZZ_USER" --name api-fuzz)" ||
  die "tokenhub keys create failed"
export API_FUZZ_API_KEY

# ---------------------------------------------------------------- runs
export API_FUZZ_GATEWAY_URL="$GATEWAY_URL"
export API_FUZZ_LOGIN_SOURCE="$LOGIN_SOURCE"
export SCHEMATHESIS_HOOKS=hooks
export PYTHONPATH="$ROOT/clients/schemathesis"
declare -A RESULT
run_as() {
  local who="$1" rc=0
  printf '\n===== schemathesis as %s (%s examples per operation, seed %s) =====\n' "$who" "$EXAMPLES" "$SEED"
  # From TMP: schemathesis and hypothesis leave state folders in the working directory.
  (cd "$TMP" && API_FUZZ_AS="$who" exec timeout "$RUN_TIMEOUT_S" "$ROOT/clients/schemathesis/.venv/bin/st" \
    --config-file "$ROOT/clients/schemathesis/schemathesis.toml" run \
    "$GATEWAY_URL/api/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 \
    --phases examples,coverage,fuzzing \
    --generation-database none --no-color \
    --report junit --report-junit-path "$TMP/junit-$who.xml") || rc=$?
  ((rc == 124)) && echo "schemathesis as $who: timed out after ${RUN_TIMEOUT_S}s"
  if ((rc == 0)); then RESULT[$who]=PASS; else RESULT[$who]="FAIL (exit $rc)"; fi
}

SECONDS=0
# The user first: the admin run may delete the user.
for who in ${API_FUZZ_CALLERS:-user admin}; do
  run_as "$who"
done
kill -0 "$GATEWAY_PID" 2>/dev/null || RESULT[gateway]="FAIL (the gateway died)"

printf '\n===== api fuzz summary (%ss, seed %s) =====\n' "$SECONDS" "$SEED"
failed=0
for who in user admin gateway; do
  [[ -n "${RESULT[$who]:-}" ]] || continue
  printf '  %-8s %s\n' "$who" "${RESULT[$who]}"
  [[ "${RESULT[$who]}" == PASS ]] || failed=1
done
((failed == 0)) || die "the management API failed the property-based test (replay: API_FUZZ_SEED=$SEED)"
echo "api fuzz: no 5xx and no answer outside the OpenAPI document"
