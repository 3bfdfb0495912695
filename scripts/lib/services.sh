# Shared by the scripts that run a live gateway against mock-upstream on loopback.
# Source it after setting TMP (a scratch directory) and STARTUP_TIMEOUT_S; it defines:
#   build_binaries             sets BIN_DIR (debug binaries of tokenhub and mock-upstream)
#   start_mock [ARGS...]       sets MOCK_PID, MOCK_BASE_URL
#   start_gateway              sets GATEWAY_PID, GATEWAY_URL (env configures the gateway;
#                              GATEWAY_WRAPPER, an array, prefixes its command, e.g. valgrind)
#   listening_url NAME PID OUT prints the URL of a server that writes "NAME listening on URL"
#   free_port                  prints a free loopback port
#   stop_process PID NAME      SIGTERM, bounded wait, then SIGKILL (returns 1 if killed)
#   dump_logs                  prints the tails of the servers' logs
#   npm_install DIR MODULE     `npm ci` in DIR unless node_modules matches package-lock.json
#   die MESSAGE                prints the failure and the logs, exits 1
# and installs a trap that stops both servers, and the PIDs a script adds to EXTRA_PIDS,
# at exit (removing TMP after a success).

SHUTDOWN_TIMEOUT_S="${SHUTDOWN_TIMEOUT_S:-15}"

log() { printf '[%s] %s\n' "${LOG_TAG:-services}" "$*" >&2; }

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

build_binaries() {
  # `--tests` resolves features as `cargo test --workspace` does, so after scripts/test.sh's
  # cargo test this is a no-op.
  log "building the workspace binaries (cargo build --workspace --bins --tests)"
  if ! cargo build --workspace --bins --tests; then
    log "WARNING: building the test targets failed (see above); building only the binaries"
    cargo build --workspace --bins || die "cargo build --workspace --bins failed"
  fi
  local target
  target="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  BIN_DIR="$target/debug"
  local bin
  for bin in tokenhub mock-upstream; do
    [[ -x "$BIN_DIR/$bin" ]] || die "$BIN_DIR/$bin was not built"
  done
}

start_mock() {
  # Created first: the background redirection may not have happened by the first read.
  : >"$TMP/mock.out"
  NO_COLOR=1
 "$BIN_DIR/mock-upstream" --listen 127.0.0.1:0 "$@" >"$TMP/mock.out" 2>"$TMP/mock.err" &
  MOCK_PID=$!
  MOCK_BASE_URL="$(listening_url mock-upstream "$MOCK_PID" "$TMP/mock.out")" || exit 1
  log "mock-upstream at $MOCK_BASE_URL"
}

listening_url() {
  local name="$1" pid="$2" out="$3" url="" i
  for ((i = 0; i < STARTUP_TIMEOUT_S * 10; i++)); do
    url="$(sed -n "s#^$name listening on \(http://[0-9.]*:[0-9]*\).*#\1#p" "$out" 2>/dev/null | head -n1)"
    [[ -n "$url" ]] && { echo "$url"; return 0; }
    kill -0 "$pid" 2>/dev/null || die "$name exited before listening"
    sleep 0.1
  done
  die "$name did not report its address within ${STARTUP_TIMEOUT_S}s"
}

npm_install() {
  local dir="$1" module="$2" want stamp="$1/node_modules/.package-lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$dir/node_modules/$module" ]]; then
    log "reusing ${dir#"$ROOT"/}/node_modules"
    return 0
  fi
  log "installing ${dir#"$ROOT"/}/node_modules (npm ci)"
  (cd "$dir" && timeout "${INSTALL_TIMEOUT_S:-900}" npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_gateway() {
  # The free port can be taken between probing and binding: retry a few times.
  GATEWAY_URL=""
  local attempt port i
  for attempt in 1 2 3; do
    port="$(free_port)"
    : >"$TMP/gateway.err"
    # GATEWAY_PUBLIC_URL_IS_LISTEN=1: public_url is the gateway's own URL (links in mail).
    local public=()
    [[ "${GATEWAY_PUBLIC_URL_IS_LISTEN:-}" == 1 ]] && public=(TOKENHUB_PUBLIC_URL="http://127.0.0.1:$port")
    env "${public[@]}" TOKENHUB_LISTEN="127.0.0.1:$port" ${GATEWAY_WRAPPER[@]+"${GATEWAY_WRAPPER[@]}"} \
      "$BIN_DIR/tokenhub" serve >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
    GATEWAY_PID=$!
    for ((i = 0; i < STARTUP_TIMEOUT_S * 10; i++)); do
      if [[ "$(curl -sS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null || true)" == ok ]]; then
        GATEWAY_URL="http://127.0.0.1:$port"
        break
      fi
      kill -0 "$GATEWAY_PID" 2>/dev/null || break
      sleep 0.1
    done
    [[ -n "$GATEWAY_URL" ]] && break
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null && grep -qi 'address.*in use' "$TMP/gateway.err"; then
      log "port $port was taken (attempt $attempt); retrying"
      GATEWAY_PID=""
      continue
    fi
    if kill -0 "$GATEWAY_PID" 2>/dev/null; then
      die "gateway did not answer /healthz within ${STARTUP_TIMEOUT_S}s"
    fi
    die "gateway exited during startup"
  done
  [[ -n "$GATEWAY_URL" ]] || die "could not start the gateway on a free port"
  log "gateway at $GATEWAY_URL (pid $GATEWAY_PID)"
}

die() {
  printf '\n[%s] FAILED: %s\n' "${LOG_TAG:-services}" "$*" >&2
  dump_logs
  exit 1
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "${GATEWAY_PID:-}" gateway || true
  stop_process "${MOCK_PID:-}" mock-upstream || true
  local pid
  for pid in ${EXTRA_PIDS[@]+"${EXTRA_PIDS[@]}"}; do stop_process "$pid" "process" || true; done
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
