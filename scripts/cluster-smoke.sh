#!/usr/bin/env bash
# Smoke test of scripts/cluster.sh (a step of scripts/test.sh): two gateways behind
# HAProxy on a fresh PostgreSQL database. Requests through the balancer reach both
# gateways and are all billed; `stop` leaves no process behind.
# Skipped outside CI when PostgreSQL, psql or haproxy is missing; a failure in CI.
# BIN_DIR=target/debug skips the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STARTUP_TIMEOUT_S=30
LOG_TAG=cluster-smoke
TMP="$(mktemp -d -t tokenhub-cluster-smoke.XXXXXX)"
KEEP_TMP=0
# shellcheck source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
PG_ADMIN_URL="${TOKENHUB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
REQUESTS=20

skip() {
  if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then die "$1 (required in CI)"; fi
  log "skipped: $1"
  exit 0
}
command -v haproxy >/dev/null || skip "haproxy is not installed"
command -v psql >/dev/null || skip "psql is not installed"
psql "$PG_ADMIN_URL" -qAtc 'SELECT 1' >/dev/null 2>&1 || skip "PostgreSQL does not answer at $PG_ADMIN_URL"

if [[ -z "${BIN_DIR:-}" ]]; then build_binaries; fi
start_mock

DB="tokenhub_cluster_$(date +%s)_$$"
psql "$PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB"
export CLUSTER_DIR="$TMP/cluster" GATEWAYS=2 TOKENHUB_BIN="$BIN_DIR/tokenhub"
GATEWAY_PORT="$(free_port)"
LB_PORT="$(free_port)"
export GATEWAY_PORT LB_PORT
# Two consecutive ports: the second may be taken; the start fails loudly then.
finish() {
  scripts/cluster.sh stop || true
  psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'finish; cleanup' EXIT

export CONFIG="$TMP/tokenhub.toml"
cat >"$CONFIG" <<TOML
[[channels]]
name = "mock"
type = "openai"
base_url = "$MOCK_BASE_URL"
api_key = "mock-upstream-key"
models = ["mock-gpt"]

[[models]]
id = "mock-gpt"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1"
output_usd_per_mtok = "2"
TOML

scripts/cluster.sh start || die "scripts/cluster.sh start failed"
KEY="$(cat "$CLUSTER_DIR/secret-key")"
cli() { TOKENHUB_DATABASE_URL="$DATABASE_URL" TOKENHUB_SECRET_KEY="$KEY" "$TOKENHUB_BIN" --config "$CONFIG" "$@"; }
cli users create smoke --balance-usd 5 >&2
API_KEY="$(cli keys create --user smoke)"
LB="http://127.0.0.1:$LB_PORT"

ok=0
for ((i = 0; i < REQUESTS * 10 && ok < REQUESTS; i++)); do
  status="$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$LB/v1/chat/completions" \
    -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    -d "{\"model\": \"mock-gpt\", \"messages\": [{\"role\": \"user\", \"content\": \"hello $i\"}]}" || true)"
  if [[ "$status" == 200 ]]; then ok=$((ok + 1)); else sleep 0.1; fi
done
((ok == REQUESTS)) || die "only $ok of $REQUESTS requests through the balancer answered 200"

# Each gateway names itself in /readyz; round robin reaches both.
ids="$(for _ in 1 2 3 4; do curl -s -m 5 "$LB/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"]["id"])'; done | sort -u | wc -l)"
((ids == 2)) || die "the balancer reached $ids distinct gateway(s), not 2"

scripts/cluster.sh stop
for pidfile in "$CLUSTER_DIR"/gw*.pid "$CLUSTER_DIR/haproxy.pid"; do
  [[ -e "$pidfile" ]] && die "$pidfile is left after stop"
done
curl -s -m 2 "$LB/readyz" >/dev/null && die "the balancer still answers after stop"
records="$(psql "$DATABASE_URL" -qAtc 'SELECT COUNT(*) FROM usage_records WHERE status = 200')"
((records >= REQUESTS)) || die "$records usage records for $REQUESTS answered requests"
log "PASS: $REQUESTS requests over 2 gateways, $records usage records, clean stop"
