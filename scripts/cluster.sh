#!/usr/bin/env bash
# The docker-compose topology (deploy/) as plain processes, for tests and benchmarks:
# N gateways on consecutive loopback ports behind HAProxy (Debian's package), all on one
# PostgreSQL database, with Redis passed through when given.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/th REDIS_URL=redis://127.0.0.1:6379 \
#     scripts/cluster.sh start          # waits until every gateway and the balancer are ready
#   scripts/cluster.sh status           # each gateway's /readyz through its own port
#   scripts/cluster.sh stop             # SIGTERM (usage flushed), SIGKILL after 40 s
#
# Environment:
#   DATABASE_URL   PostgreSQL URL (required for start); the database must exist
#   REDIS_URL      Redis URL, handed to every gateway as TOKENHUB_REDIS_URL (optional)
#   GATEWAYS       number of gateways (default 2)
#   GATEWAY_PORT   port of the first gateway (default 3101; the others follow)
#   LB_PORT        HAProxy's port (default 3100)
#   CONFIG         tokenhub.toml for every gateway (optional)
#   TOKENHUB_BIN   the binary (default target/release/tokenhub, else target/debug/tokenhub)
#   CLUSTER_DIR    pid files, logs, spill files, haproxy.cfg (default target/cluster)
#   TOKENHUB_SECRET_KEY  sealing key shared by the gateways (default: generated once and
#                  kept in CLUSTER_DIR/secret-key)
# Any other TOKENHUB_* variable (e.g. TOKENHUB_LOG, TOKENHUB_DATABASE_POOL_SIZE) reaches
# every gateway unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GATEWAYS="${GATEWAYS:-2}"
GATEWAY_PORT="${GATEWAY_PORT:-3101}"
LB_PORT="${LB_PORT:-3100}"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/target/cluster}"
STOP_WAIT_S=40

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

binary() {
  if [[ -n "${TOKENHUB_BIN:-}" ]]; then echo "$TOKENHUB_BIN"
  elif [[ -x "$ROOT/target/release/tokenhub" ]]; then echo "$ROOT/target/release/tokenhub"
  elif [[ -x "$ROOT/target/debug/tokenhub" ]]; then echo "$ROOT/target/debug/tokenhub"
  else die "no tokenhub binary: cargo build --release -p tokenhub, or set TOKENHUB_BIN"
  fi
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

http_status() { # http_status URL -> the status code, or 000
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

wait_ready() { # wait_ready URL SECONDS PIDFILE
  local deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ "$(http_status "$1")" == 200 ]] && return 0
    [[ -n "${3:-}" ]] && ! alive "$3" && return 1
    sleep 0.1
  done
  return 1
}

secret_key() {
  if [[ -n "${TOKENHUB_SECRET_KEY:-}" ]]; then echo "$TOKENHUB_SECRET_KEY"; return; fi
  local file="$CLUSTER_DIR/secret-key"
  [[ -s "$file" ]] || (umask 077 && openssl rand -hex 32 >"$file")
  cat "$file"
}

haproxy_config() {
  cat <<CFG
# Written by scripts/cluster.sh; deploy/haproxy.cfg is the compose version of it.
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 15m
    timeout server 15m
    option http-keep-alive
    option forwardfor
frontend tokenhub
    bind 127.0.0.1:$LB_PORT
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
CFG
  for ((i = 0; i < GATEWAYS; i++)); do
    echo "    server gw$i 127.0.0.1:$((GATEWAY_PORT + i)) check"
  done
}

start() {
  [[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL (PostgreSQL) is required"
  command -v haproxy >/dev/null || die "haproxy not installed (apt-get install -y haproxy)"
  mkdir -p "$CLUSTER_DIR"
  local bin key
  bin="$(binary)"
  key="$(secret_key)"
  for ((i = 0; i < GATEWAYS; i++)); do
    alive "$CLUSTER_DIR/gw$i.pid" && die "gateway $i is already running (scripts/cluster.sh stop)"
  done
  local config_args=()
  [[ -n "${CONFIG:-}" ]] && config_args=(--config "$CONFIG")
  # Started together: start-up is safe in parallel (store/startup.rs).
  for ((i = 0; i < GATEWAYS; i++)); do
    local port=$((GATEWAY_PORT + i))
    env TOKENHUB_DATABASE_URL="$DATABASE_URL" \
      TOKENHUB_LISTEN="127.0.0.1:$port" \
      TOKENHUB_SECRET_KEY="$key" \
      TOKENHUB_LEDGER_SPILL_PATH="$CLUSTER_DIR/gw$i.spill" \
      TOKENHUB_TRUSTED_PROXIES="127.0.0.1" \
      ${REDIS_URL:+TOKENHUB_REDIS_URL="$REDIS_URL"} \
      "$bin" "${config_args[@]}" serve >>"$CLUSTER_DIR/gw$i.log" 2>&1 </dev/null &
    echo $! >"$CLUSTER_DIR/gw$i.pid"
  done
  for ((i = 0; i < GATEWAYS; i++)); do
    wait_ready "http://127.0.0.1:$((GATEWAY_PORT + i))/readyz" 60 "$CLUSTER_DIR/gw$i.pid" || {
      tail -n 20 "$CLUSTER_DIR/gw$i.log" >&2 || true
      stop
      die "gateway $i did not become ready"
    }
  done
  haproxy_config >"$CLUSTER_DIR/haproxy.cfg"
  haproxy -D -f "$CLUSTER_DIR/haproxy.cfg" -p "$CLUSTER_DIR/haproxy.pid" 2>>"$CLUSTER_DIR/haproxy.log" ||
    { stop; die "haproxy did not start"; }
  wait_ready "http://127.0.0.1:$LB_PORT/readyz" 20 || { stop; die "the balancer is not ready"; }
  log "$GATEWAYS gateways on ports $GATEWAY_PORT..$((GATEWAY_PORT + GATEWAYS - 1)) behind http://127.0.0.1:$LB_PORT"
}

stop() {
  local pids=() file
  if alive "$CLUSTER_DIR/haproxy.pid"; then
    kill "$(cat "$CLUSTER_DIR/haproxy.pid")" 2>/dev/null || true
  fi
  rm -f "$CLUSTER_DIR/haproxy.pid"
  for file in "$CLUSTER_DIR"/gw*.pid; do
    [[ -e "$file" ]] || continue
    if alive "$file"; then
      kill -TERM "$(cat "$file")" 2>/dev/null || true
      pids+=("$(cat "$file")")
    fi
  done
  local deadline=$((SECONDS + STOP_WAIT_S)) pid
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "gateway $pid did not stop in ${STOP_WAIT_S}s: killing it (its spill file is replayed at the next start)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$CLUSTER_DIR"/gw*.pid
  log "stopped"
}

status() {
  local i
  for ((i = 0; i < GATEWAYS; i++)); do
    local port=$((GATEWAY_PORT + i))
    printf 'gw%d :%d %s\n' "$i" "$port" "$(curl -s -m 2 "http://127.0.0.1:$port/readyz" || echo down)"
  done
  printf 'lb  :%d %s\n' "$LB_PORT" "$(http_status "http://127.0.0.1:$LB_PORT/readyz")"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/cluster.sh start|stop|status (see the header for the environment)" >&2; exit 2 ;;
esac
