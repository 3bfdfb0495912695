#!/usr/bin/env bash
# Throughput of 1, 2 and 3 gateways behind HAProxy on one PostgreSQL database
# (scripts/cluster.sh), plus one gateway without the balancer for reference.
#
#   bench/cluster.sh                      # 10 s per measurement, 64 connections
#   BENCH_DURATION=5 BENCH_CONCURRENCY=32 bench/cluster.sh
#   BENCH_SHARED=redis bench/cluster.sh   # only the setups with Redis (default: none redis)
#
# Needs haproxy and wrk (apt-get install -y haproxy wrk), psql and PostgreSQL at
# PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/test). Uses the release
# binaries when built (cargo build --release -p tokenhub -p mock-upstream), else debug.
# Each run gets a fresh database, dropped afterwards. Every setup runs twice: each
# gateway alone (no shared state), then with a redis-server of the bench's own as the
# shared state (limits, money, slots: what makes N instances one gateway). Prints one table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
DURATION="${BENCH_DURATION:-10}"
CONC="${BENCH_CONCURRENCY:-64}"
PROFILE=release
[[ -x target/release/tokenhub && -x target/release/mock-upstream ]] || PROFILE=debug
BIN="$ROOT/target/$PROFILE"
TMP="$(mktemp -d -t tokenhub-bench-cluster.XXXXXX)"
log() { printf '[bench-cluster] %s\n' "$*" >&2; }
for tool in haproxy wrk psql redis-server; do command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }; done

MOCK_PID=""
REDIS_PID=""
DB=""
cleanup() {
  local status=$?
  ((status != 0)) && [[ -f "$TMP/cluster.log" ]] && tail -n 30 "$TMP/cluster.log" >&2
  [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null || true
  CLUSTER_DIR="$TMP/cluster" scripts/cluster.sh stop >/dev/null 2>&1 || true
  [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null || true
  [[ -n "$DB" ]] && psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN/mock-upstream" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do
  MOCK_URL="$(sed -n 's#^mock-upstream listening on \(http://[0-9.]*:[0-9]*\).*#\1#p' "$TMP/mock.out" | head -n1)"
  [[ -n "$MOCK_URL" ]] && break
  sleep 0.1
done
cat >"$TMP/tokenhub.toml" <<TOML
[[channels]]
name = "mock"
type = "openai"
base_url = "$MOCK_URL"
api_key = "k"
models = ["mock-gpt"]

[[models]]
id = "mock-gpt"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1"
output_usd_per_mtok = "2"
TOML

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# measure LABEL GATEWAYS TARGET(lb|direct)
measure() {
  local label="$1" gateways="$2" target="$3"
  DB="tokenhub_bench_$(date +%s)_$$"
  psql "$PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null
  export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" CLUSTER_DIR="$TMP/cluster" GATEWAYS="$gateways"
  export CONFIG="$TMP/tokenhub.toml" TOKENHUB_BIN="$BIN/tokenhub" TOKENHUB_LOG=warn
  GATEWAY_PORT=$(($(free_port) / 8 * 8)); LB_PORT="$(free_port)"
  export GATEWAY_PORT LB_PORT
  scripts/cluster.sh start 2>>"$TMP/cluster.log"
  local key
  key="$(TOKENHUB_DATABASE_URL="$DATABASE_URL" TOKENHUB_SECRET_KEY="$(cat "$CLUSTER_DIR/secret-key")" \
    "$TOKENHUB_BIN" --config "$CONFIG" users create bench --balance-usd 1000000 >/dev/null &&
    TOKENHUB_DATABASE_URL="$DATABASE_URL" TOKENHUB_SECRET_KEY="$(cat "$CLUSTER_DIR/secret-key")" \
    "$TOKENHUB_BIN" --config "$CONFIG" keys create --user bench)"
  cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model": "mock-gpt", "messages": [{"role": "user", "content": "Say hello"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
  local url="http://127.0.0.1:$LB_PORT"
  [[ "$target" == direct ]] && url="http://127.0.0.1:$GATEWAY_PORT"
  sleep 1 # the gateways read the new key on first use; let the balancer's checks settle
  wrk -t2 -c"$CONC" -d2s -s "$TMP/post.lua" "$url/v1/chat/completions" >/dev/null # warm-up
  local out
  out="$(wrk -t2 -c"$CONC" -d"${DURATION}s" --latency -s "$TMP/post.lua" "$url/v1/chat/completions")"
  local rps p50 p99 errors
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  errors="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  scripts/cluster.sh stop 2>>"$TMP/cluster.log"
  local records
  records="$(psql "$DATABASE_URL" -qAtc 'SELECT COUNT(*) FROM usage_records')"
  psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null
  DB=""
  printf '| %-29s | %9s | %8s | %8s | %6s | %8s |\n' "$label" "$rps" "$p50" "$p99" "${errors:-0}" "$records"
}

log "profile $PROFILE, ${DURATION}s per run, $CONC connections, load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
printf '| %-29s | %9s | %8s | %8s | %6s | %8s |\n' "setup" "req/s" "p50" "p99" "non-2xx" "records"
printf '|%s|%s|%s|%s|%s|%s|\n' "-------------------------------" "-----------" "----------" "----------" "--------" "----------"
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
for mode in ${BENCH_SHARED:-none redis}; do # BENCH_SHARED=redis: only the shared setups
  shared=""
  [[ "$mode" == redis ]] && shared="redis://127.0.0.1:$REDIS_PORT"
  export REDIS_URL="$shared"
  suffix="${shared:+, Redis}"
  [[ -n "$shared" ]] && redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  measure "1 gateway, no balancer$suffix" 1 direct
  for n in 1 2 3; do
    [[ -n "$shared" ]] && redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    measure "$n behind HAProxy$suffix" "$n" lb
  done
done
