#!/usr/bin/env bash
# TokenHub side-by-side benchmark (issue 6). See bench/README.md.
#
#   bench/run.sh            # every scenario, 15 s per target in 3 rounds
#   BENCH_QUICK=1 bench/run.sh   # 3 s smoke run
#   bench/run.sh --soak     # also the 10-minute soak (scenario 7)
#   BENCH_PGO=1 bench/run.sh     # the gateway built as it ships: profile-guided
#                                # (scripts/release-pgo.sh); the other binaries plain
#
# Every scenario runs three ways: direct to the mock upstream, through the floor
# (bench/floor-proxy, a bare hyper forwarder), and through the gateway, in
# BENCH_ROUNDS (3) interleaved rounds whose per-round ratios are taken at their median.
# Prints one table and writes bench/results/latest.json. Loopback only; every server
# is killed on exit and every wait is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/release
OUT_DIR=$ROOT/bench/results
# shellcheck source=../scripts/lib/bench-gateway.sh
source "$ROOT/scripts/lib/bench-gateway.sh"

SOAK=0
for arg in "$@"; do
    case $arg in
        --soak) SOAK=1 ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    DUR=${BENCH_DURATION:-3s}
    WARMUP=${BENCH_WARMUP:-1s}
    OPEN_STREAMS=${BENCH_OPEN_STREAMS:-1000}
    SOAK_DUR=${BENCH_SOAK_DURATION:-30s}
else
    DUR=${BENCH_DURATION:-15s}
    WARMUP=${BENCH_WARMUP:-2s}
    OPEN_STREAMS=${BENCH_OPEN_STREAMS:-5000}
    SOAK_DUR=${BENCH_SOAK_DURATION:-10m}
fi
CONC=${BENCH_CONCURRENCY:-64}
# A measurement is split into rounds, the targets taking turns within each, so that the
# machine's drift (the direct target's own throughput moved by a fifth between runs
# minutes apart) falls on floor and gateway alike (README.md, "Method").
ROUNDS=${BENCH_ROUNDS:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS must be a positive integer" >&2; exit 2; }
RATE=${BENCH_RATE:-1000}
LARGE_RATE=${BENCH_LARGE_RATE:-200}
SOAK_RATE=${BENCH_SOAK_RATE:-300}
SETTLE=${BENCH_SETTLE:-1}
SCENARIOS=" ${BENCH_SCENARIOS:-1 2 3 4 5 6} "
want() { [[ $SCENARIOS == *" $1 "* ]]; }
SCALE_KEYS=${BENCH_SCALE_KEYS:-100000}
SCALE_MODELS=${BENCH_SCALE_MODELS:-1000}
SCALE_CHANNELS=${BENCH_SCALE_CHANNELS:-100}
secs() { # 15s / 2m / 500ms -> seconds (float)
    python3 -c 'import sys,re
v=sys.argv[1]; m=re.fullmatch(r"([0-9.]+)(ms|s|m|h)?",v)
n=float(m.group(1)); u=m.group(2) or "s"
print(n*{"ms":0.001,"s":1,"m":60,"h":3600}[u])' "$1"
}
DUR_S=$(secs "$DUR")
SEGMENT_MS=$(python3 -c 'import sys; print(max(1000, round(float(sys.argv[1]) * 1000 / int(sys.argv[2]))))' "$DUR_S" "$ROUNDS")
SEGMENT_S=$(python3 -c 'import sys; print(int(sys.argv[1]) / 1000)' "$SEGMENT_MS")

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- build, tools
if [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
    log "BENCH_SKIP_BUILD=1: using the binaries already in $BIN"
else
    log "building release binaries (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    cargo build --release -p tokenhub -p mock-upstream -p floor-proxy >&2
    if [[ ${BENCH_PGO:-0} == 1 ]]; then scripts/release-pgo.sh; fi
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! oha --version >/dev/null 2>&1; then
    log "installing oha (cargo install --locked oha)"
    cargo install --locked oha >&2
fi
log "$(oha --version)"

# 5,000 streams need ~3 descriptors each across the processes; children inherit this.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ $(ulimit -n) == unlimited || $(ulimit -n) -ge $((OPEN_STREAMS * 2 + 1000)) ]] ||
    log "warning: ulimit -n is $(ulimit -n); scenario 5 may hit EMFILE"

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d /tmp/tokenhub-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    [[ ${BENCH_KEEP_WORK:-0} == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies, so a concurrent cargo build cannot swap a binary mid-run.
mkdir -p "$WORK/bin"
for b in tokenhub mock-upstream floor-proxy stream-probe; do
    [[ -x $BIN/$b ]] || die "$BIN/$b is missing: build it or unset BENCH_SKIP_BUILD"
    cp "$BIN/$b" "$WORK/bin/"
done
if [[ ${BENCH_PGO:-0} == 1 ]]; then
    [[ -x $ROOT/target/pgo/tokenhub ]] || die "target/pgo/tokenhub is missing: run scripts/release-pgo.sh"
    cp "$ROOT/target/pgo/tokenhub" "$WORK/bin/"
    log "BENCH_PGO=1: the gateway is target/pgo/tokenhub (profile-guided)"
fi
BIN=$WORK/bin

start_mock() {
    "$BIN/mock-upstream" --listen 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    MOCK=$(wait_line "$WORK/mock.out" 'http://127\.0\.0\.1:[0-9]+' 20 "$MOCK_PID")
}

start_floor() {
    "$BIN/floor-proxy" --listen 127.0.0.1:0 --upstream "$MOCK" >"$WORK/floor.out" 2>&1 &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID")
    FLOOR=$(wait_line "$WORK/floor.out" 'http://127\.0\.0\.1:[0-9]+' 20 "$FLOOR_PID")
}

export TOKENHUB_DATABASE_URL="sqlite://$WORK/bench.db"
export TOKENHUB_ROOT_PASSWORD=bench-root-password
unset TOKENHUB_LOG TOKENHUB_LOG_FORMAT TOKENHUB_CONFIG
CONFIG=$WORK/tokenhub.toml
tokenhub() { TOKENHUB_LISTEN=127.0.0.1:0 "$BIN/tokenhub" --config "$CONFIG" "$@"; }

GW_LOG_N=0
start_gateway() {
    GW_LOG_N=$((GW_LOG_N + 1))
    serve_bench_gateway "$BIN/tokenhub" "$CONFIG" "$WORK" "gateway.$GW_LOG_N"
}

stop_gateway() {
    kill "$GW_PID"
    for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$GW_PID" 2>/dev/null || true
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------- set up
log "work dir $WORK"
start_mock
log "mock-upstream $MOCK (pid $MOCK_PID)"
write_bench_config "$CONFIG" "$MOCK" bench
# Idle memory as a new user first meets it: the very first start, on a new database,
# where migrations, seeds and the root password's hash all run in the gateway itself.
TOKENHUB_DATABASE_URL="sqlite://$WORK/first-start.db" start_gateway
sleep 1
GW_RSS_FIRST_START=$(rss_kib "$GW_PID")
stop_gateway
log "gateway idle RSS after a first start ${GW_RSS_FIRST_START} KiB"
KEY=$(create_bench_key bench tokenhub)
start_floor
log "floor-proxy $FLOOR (pid $FLOOR_PID)"
start_gateway
log "gateway $GW (pid $GW_PID)"
sleep 1
GW_RSS_IDLE=$(rss_kib "$GW_PID")
GW_RSS_AFTER_LOAD=null GW_RSS_AFTER_STREAMS=null GW_RSS_IDLE_SCALED=null
log "gateway idle RSS ${GW_RSS_IDLE} KiB"

# Request bodies.
B=$WORK/bodies
mkdir -p "$B" "$WORK/raw"
python3 - "$B" <<'EOF'
import json, sys
d = sys.argv[1]
msg = [{"role": "user", "content": "Say hello to the benchmark."}]
small = {"model": "mock-gpt", "messages": msg, "max_tokens": 64}
words = " ".join(f"w{i}" for i in range(20))
stream = {"model": "mock-gpt", "stream": True, "messages": msg, "max_tokens": 64,
          "mock": {"chunks": 20, "chunk_delay_ms": 5, "reply": words}}
# ~100 KB prompt: plain words so the mock's token count stays cheap and deterministic.
text = ("lorem ipsum dolor sit amet " * 4000)[:100 * 1024]
large = {"model": "mock-gpt", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
held = dict(stream, mock={"chunks": 10, "chunk_delay_ms": 2000, "reply": words})
for name, body in [("small", small), ("stream", stream), ("large", large), ("held", held)]:
    with open(f"{d}/{name}.json", "w") as f:
        json.dump(body, f)
EOF

# The same request (path, headers, body) goes to every target.
url_of() {
    case $1 in
        direct) echo "$MOCK/v1/chat/completions" ;;
        floor) echo "$FLOOR/v1/chat/completions" ;;
        gateway) echo "$GW/v1/chat/completions" ;;
    esac
}
pid_of() {
    case $1 in
        direct) echo "$MOCK_PID" ;;
        floor) echo "$FLOOR_PID" ;;
        gateway) echo "$GW_PID" ;;
    esac
}

LOADS=$WORK/loads.tsv
: >"$LOADS"
note_load() { printf '%s\t%s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOADS"; }

# Round K's order: reversed every other round, so that floor and gateway take turns
# going first and a steady drift does not favour either.
round_order() {
    if (($1 % 2)); then echo direct floor gateway; else echo gateway floor direct; fi
}

# oha_run NAME TARGET ROUND BODY ARGS...: warm up, then measure one segment; JSON in
# raw/NAME-TARGET-rROUND.json
oha_run() {
    local name=$1 target=$2 round=$3 body=$4
    shift 4
    local url raw=$WORK/raw/$name-$target-r$round.json
    url=$(url_of "$target")
    local common=(--no-tui --output-format json -m POST -H 'content-type: application/json'
        -H "authorization: Bearer $KEY" -D "$B/$body.json")
    timeout 120 oha "${common[@]}" -z "$WARMUP" -c "$CONC" "$url" >/dev/null
    sleep "$SETTLE" # let the target drain what the warm-up left queued
    note_load "$name-$target-r$round"
    timeout $((SEGMENT_MS / 1000 + 120)) oha "${common[@]}" -z "${SEGMENT_MS}ms" "$@" "$url" >"$raw"
    log "$name $target round $round: $(python3 "$ROOT/bench/summarize.py" brief "$raw")"
}

interleaved() { # NAME BODY OHA-ARGS...
    local name=$1 body=$2 round t
    shift 2
    for ((round = 1; round <= ROUNDS; round++)); do
        for t in $(round_order "$round"); do oha_run "$name" "$t" "$round" "$body" "$@"; done
    done
}

probe_run() { # NAME TARGET ROUND ARGS...
    local name=$1 target=$2 round=$3
    shift 3
    local raw=$WORK/raw/$name-$target-r$round.json
    note_load "$name-$target-r$round"
    timeout 300 "$BIN/stream-probe" --url "$(url_of "$target")" --key "$KEY" "$@" >"$raw"
    log "$name $target round $round: $(cut -c1-300 "$raw")"
}

# ---------------------------------------------------------------- scenarios
if want 1; then
    log "1: throughput, small body, $CONC connections, $ROUNDS rounds of ${SEGMENT_S} s"
    interleaved s1 small -c "$CONC"
    GW_RSS_AFTER_LOAD=$(rss_kib "$GW_PID")
fi

if want 2; then
    log "2: added latency at $RATE req/s"
    interleaved s2 small -c "$CONC" -q "$RATE" --latency-correction
fi

if want 3; then
    log "3: streaming, 20 chunks 5 ms apart, $CONC connections"
    for ((round = 1; round <= ROUNDS; round++)); do
        for t in $(round_order "$round"); do
            timeout 60 "$BIN/stream-probe" --url "$(url_of "$t")" --key "$KEY" \
                --body-file "$B/stream.json" --concurrency "$CONC" --duration-s 1 >/dev/null
            probe_run s3 "$t" "$round" --body-file "$B/stream.json" --concurrency "$CONC" \
                --duration-s "$SEGMENT_S" --gap-events 20 --expect-gap-ms 5
        done
    done
fi

if want 4; then
    log "4: 100 KB prompt at $LARGE_RATE req/s"
    interleaved s4 large -c "$CONC" -q "$LARGE_RATE" --latency-correction
fi

if want 5; then
    log "5: $OPEN_STREAMS open streams held by a slow mock"
    for t in direct floor gateway; do
        probe_run s5 "$t" 1 --body-file "$B/held.json" --streams "$OPEN_STREAMS" \
            --open-concurrency 250 --rss-pid "$(pid_of $t)" --timeout-s 120 \
            --gap-events 0
        sleep 1
    done
    GW_RSS_AFTER_STREAMS=$(rss_kib "$GW_PID")
fi

if want 6; then
    log "6: $SCALE_KEYS keys, $SCALE_MODELS models, $SCALE_CHANNELS channels; scenario 2 again"
    stop_gateway
    python3 "$ROOT/bench/populate.py" "$WORK/bench.db" "$MOCK" \
        "$SCALE_KEYS" "$SCALE_MODELS" "$SCALE_CHANNELS" >&2
    start_gateway
    sleep 1
    GW_RSS_IDLE_SCALED=$(rss_kib "$GW_PID")
    log "gateway (scaled state) $GW, idle RSS ${GW_RSS_IDLE_SCALED} KiB"
    interleaved s6 small -c "$CONC" -q "$RATE" --latency-correction
fi

SOAK_JSON=null
if ((SOAK)); then
    log "7: soak, $SOAK_RATE req/s through the gateway for $SOAK_DUR"
    records() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from usage_records").fetchone()[0])' "$WORK/bench.db"; }
    before=$(records)
    rss_series=$WORK/soak-rss.txt
    : >"$rss_series"
    (while kill -0 "$GW_PID" 2>/dev/null; do rss_kib "$GW_PID" >>"$rss_series"; sleep 10; done) &
    sampler=$!
    PIDS+=("$sampler")
    note_load soak
    timeout $(($(secs "$SOAK_DUR" | cut -d. -f1) + 300)) oha --no-tui --output-format json \
        -m POST -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
        -D "$B/small.json" -z "$SOAK_DUR" -c 16 -q "$SOAK_RATE" "$(url_of gateway)" \
        >"$WORK/raw/s7-gateway.json"
    kill "$sampler" 2>/dev/null || true
    sleep 3 # the ledger writer flushes in batches
    after=$(records)
    SOAK_JSON=$(python3 - "$WORK/raw/s7-gateway.json" "$rss_series" "$before" "$after" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rss = [int(x) for x in open(sys.argv[2]).read().split()]
ok = r["statusCodeDistribution"].get("200", 0)
aborted = r["errorDistribution"].get("aborted due to deadline", 0)
sent = sum(r["statusCodeDistribution"].values()) + sum(r["errorDistribution"].values())
print(json.dumps({"requests": sent, "ok": ok, "aborted_at_deadline": aborted,
    "status": r["statusCodeDistribution"],
    "errors": r["errorDistribution"], "usage_records_added": int(sys.argv[4]) - int(sys.argv[3]),
    "rss_kib_series": rss}))
EOF
)
fi

# ---------------------------------------------------------------- report
mkdir -p "$OUT_DIR"
python3 "$ROOT/bench/summarize.py" report "$WORK/raw" "$OUT_DIR/latest.json" <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "git": "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+dirty')",
  "quick": $([[ ${BENCH_QUICK:-0} == 1 ]] && echo 1 || echo 0), "pgo": $([[ ${BENCH_PGO:-0} == 1 ]] && echo 1 || echo 0),
  "duration": "$DUR", "rounds": $ROUNDS, "segment_ms": $SEGMENT_MS, "concurrency": $CONC, "rate": $RATE, "large_rate": $LARGE_RATE,
  "open_streams": $OPEN_STREAMS,
  "scale": {"keys": $SCALE_KEYS, "models": $SCALE_MODELS, "channels": $SCALE_CHANNELS},
  "machine": {"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')",
              "kernel": "$(uname -r)", "mem_total_kib": $(awk '/MemTotal/ {print $2}' /proc/meminfo)},
  "loads": $(python3 -c 'import json,sys; print(json.dumps({l.split("\t")[0]: l.split("\t")[1].strip() for l in open(sys.argv[1]) if l.strip()}))' "$LOADS"),
  "gateway_rss_kib": {"idle": $GW_RSS_IDLE, "first_start": $GW_RSS_FIRST_START,
                      "after_load": $GW_RSS_AFTER_LOAD,
                      "after_streams": $GW_RSS_AFTER_STREAMS, "idle_scaled_state": $GW_RSS_IDLE_SCALED},
  "soak": $SOAK_JSON
}
EOF
