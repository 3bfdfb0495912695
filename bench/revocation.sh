#!/usr/bin/env bash
# How soon a key revoked through one instance is refused by the others (issues 13 and 14:
# "within 100 ms p99 on every instance"). Not run in CI.
#
#   bench/revocation.sh                  # 3 gateways, Redis, 200 trials
#   REVOKE_TRIALS=50 REVOKE_REDIS=0 bench/revocation.sh   # without Redis: the polling fallback
#
# scripts/cluster.sh starts the gateways on a fresh PostgreSQL database (PG_ADMIN_URL,
# default postgres://postgres@127.0.0.1:5432/test) with a redis-server of the bench's own.
# Each trial makes a key with the CLI, uses it once on every instance (so each has it
# cached), deletes it through instance 0's management API and polls instances 1 and 2
# until both answer 401. Prints the percentiles of that delay. Loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
TRIALS="${REVOKE_TRIALS:-200}"
BIN="${TOKENHUB_BIN:-$ROOT/target/release/tokenhub}"
[[ -x "$BIN" ]] || BIN="$ROOT/target/debug/tokenhub"
TMP="$(mktemp -d -t tokenhub-bench-revocation.XXXXXX)"
DB="tokenhub_revocation_$$"
REDIS_PID=""
log() { printf '[bench-revocation] %s\n' "$*" >&2; }
cleanup() {
  CLUSTER_DIR="$TMP/cluster" scripts/cluster.sh stop >/dev/null 2>&1 || true
  [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

export REDIS_URL=""
if [[ "${REVOKE_REDIS:-1}" == 1 ]]; then
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  REDIS_URL="redis://127.0.0.1:$port"
fi
psql "$PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" CLUSTER_DIR="$TMP/cluster" GATEWAYS=3
export TOKENHUB_BIN="$BIN" TOKENHUB_LOG=warn
# Every trial's new key is a lookup on each instance, all from one address: lift the
# per-address lookup budget (5/s by default) that protects against floods of invalid keys.
export TOKENHUB_KEY_LOOKUPS_PER_ADDRESS_PER_S=1000
GATEWAY_PORT=$(($(free_port) / 8 * 8)); LB_PORT="$(free_port)"
export GATEWAY_PORT LB_PORT
scripts/cluster.sh start 2>>"$TMP/cluster.log" || { tail -n 30 "$TMP/cluster.log" >&2; exit 1; }

cli() {
  TOKENHUB_DATABASE_URL="$DATABASE_URL" TOKENHUB_SECRET_KEY="$(cat "$CLUSTER_DIR/secret-key")" \
    "$BIN" --config /dev/null "$@"
}
cli users create revoker --balance-usd 1 >/dev/null
ADMIN="$(cli admin-tokens create --name bench)"
log "3 gateways from port $GATEWAY_PORT, ${REDIS_URL:-no Redis}, $TRIALS trials, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/revocation.py "$GATEWAY_PORT" "$ADMIN" "$TRIALS" "$BIN" \
  "$DATABASE_URL" "$(cat "$CLUSTER_DIR/secret-key")"
