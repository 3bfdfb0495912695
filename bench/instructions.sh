#!/usr/bin/env bash
# Instructions per request, gateway and floor (issue 18). See bench/README.md.
#
#   bench/instructions.sh                     # builds release, 2,000 + 2,000 requests each
#   INSTR_SKIP_BUILD=1 bench/instructions.sh  # use the binaries in target/release
#   INSTR_REQUESTS=500 INSTR_TARGETS=gateway bench/instructions.sh
#   INSTR_EXTRA_KEYS=1000000 INSTR_ACTIVE=10000 INSTR_TARGETS=gateway bench/instructions.sh
#       # 1 M more keys in the database (bench/populate.py), 10,000 of them used before
#       # the measured batches (bench/use_keys.py); raise TOKENHUB_KEY_LOOKUPS_PER_S and
#       # TOKENHUB_KEY_LOOKUPS_PER_ADDRESS_PER_S for that warm-up (one client address)
#
# Wall-clock figures on a shared 2-core machine move with whatever else runs; the count
# of instructions a process executes does not. Each target (the floor proxy, the
# gateway) runs under `valgrind --tool=callgrind` in front of the native mock upstream,
# and a native fixed client (`load-probe`, fixed concurrency) sends it INSTR_REQUESTS
# small non-stream requests, then as many stream requests (20 chunks, no delay). The
# counters are zeroed after a warm-up and dumped after each batch, so start-up is not
# counted; the target's idle instructions per second (timers: the catalogue reloader,
# the ledger writer's tick), measured over INSTR_IDLE_S, are subtracted for the time the
# batch took. What remains, divided by the requests, is the cost of one request on every
# thread of the process: inbound HTTP, relay, metering, log line, the ledger's write.
#
# Prints one table and writes, per target and batch, the callgrind dump and its top
# functions by own cost (`callgrind_annotate`) to INSTR_OUT (bench/results/instructions).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${INSTR_BIN_DIR:-$ROOT/target/release}
REQUESTS=${INSTR_REQUESTS:-2000}
WARMUP=${INSTR_WARMUP:-300}
CONC=${INSTR_CONCURRENCY:-8}
IDLE_S=${INSTR_IDLE_S:-5}
TARGETS=${INSTR_TARGETS:-floor gateway}
OUT=${INSTR_OUT:-$ROOT/bench/results/instructions}
TOP=${INSTR_TOP:-40}

# Everything runs ~50x slower under callgrind: start-up too.
STARTUP_TIMEOUT_S=300
LOG_TAG=instructions
TMP=$(mktemp -d /tmp/tokenhub-instructions.XXXXXX)
KEEP_TMP=0
EXTRA_PIDS=()
# shellcheck source=../scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=../scripts/lib/bench-gateway.sh
source "$ROOT/scripts/lib/bench-gateway.sh"

command -v valgrind >/dev/null || die "valgrind is not installed"
if [[ ${INSTR_SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    nice -n 15 cargo build --release -p tokenhub -p mock-upstream -p floor-proxy >&2
fi

# Private copies: a concurrent cargo build cannot swap a binary mid-run.
mkdir -p "$TMP/bin" "$OUT"
for b in tokenhub mock-upstream floor-proxy load-probe; do
    [[ -x $BIN/$b ]] || die "$BIN/$b is missing: build it or unset INSTR_SKIP_BUILD"
    cp "$BIN/$b" "$TMP/bin/"
done
BIN_DIR=$TMP/bin

start_mock
MOCK=$MOCK_BASE_URL

export TOKENHUB_DATABASE_URL="sqlite://$TMP/instructions.db"
export TOKENHUB_ROOT_PASSWORD=instructions-root-password
export TOKENHUB_CONFIG=$TMP/tokenhub.toml
# Start-up's database waits run under callgrind too.
export TOKENHUB_DATABASE_ACQUIRE_TIMEOUT_MS=120000
unset TOKENHUB_LOG TOKENHUB_LOG_FORMAT
write_bench_config "$TOKENHUB_CONFIG" "$MOCK" instructions
tokenhub() { TOKENHUB_LISTEN=127.0.0.1:0 "$BIN_DIR/tokenhub" "$@"; }
KEY=$(create_bench_key instructions tokenhub)
if [[ ${INSTR_EXTRA_KEYS:-0} != 0 ]]; then
    python3 "$ROOT/bench/populate.py" "$TMP/instructions.db" "$MOCK" "$INSTR_EXTRA_KEYS" 0 0
fi

printf '%s' '{"model":"mock-gpt","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64}' \
    >"$TMP/small.json"
printf '%s' '{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64,"mock":{"chunks":20,"chunk_delay_ms":0,"reply":"w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19"}}' \
    >"$TMP/stream.json"

# load URL BODY N: N requests from the fixed client; fails on any error.
load() {
    local result
    result=$(timeout 900 "$BIN_DIR/load-probe" --url "$1/v1/chat/completions" --key "$KEY" \
        --body-file "$TMP/$2.json" --requests "$3" --concurrency "$CONC" --timeout-s 880)
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(1 if r["errors"] else 0)' \
        "$result" || die "requests failed: $result"
}

# dump PID NAME: callgrind writes its counters since the last dump (or zero) and resets.
dump() { timeout 120 callgrind_control --dump="$2" "$1" >/dev/null; }

# instructions FILE: the total instruction count of a callgrind dump.
instructions() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

now() { date +%s.%N; }

RESULTS=$TMP/results.tsv
: >"$RESULTS"

measure() { # TARGET
    local target=$1 url pid cg=$TMP/$1.cg
    local valgrind=(valgrind --tool=callgrind --callgrind-out-file="$cg" --dump-instr=no
        --compress-strings=no --compress-pos=no)
    case $target in
        floor)
            "${valgrind[@]}" "$BIN_DIR/floor-proxy" --listen 127.0.0.1:0 --upstream "$MOCK" \
                >"$TMP/floor.out" 2>"$TMP/floor.err" &
            pid=$!
            EXTRA_PIDS+=("$pid")
            url=$(listening_url floor-proxy "$pid" "$TMP/floor.out") || exit 1
            ;;
        gateway)
            GATEWAY_WRAPPER=("${valgrind[@]}")
            start_gateway
            pid=$GATEWAY_PID
            url=$GATEWAY_URL
            ;;
        *) die "unknown target $target" ;;
    esac
    log "$target under callgrind at $url (pid $pid); warming up"
    load "$url" small "$WARMUP"
    load "$url" stream "$WARMUP"
    if [[ $target == gateway && ${INSTR_ACTIVE:-0} != 0 ]]; then
        python3 "$ROOT/bench/use_keys.py" "$url" "$INSTR_ACTIVE" || die "using the populated keys failed"
    fi
    sleep 2 # the ledger writer commits the warm-up's records
    timeout 120 callgrind_control --zero "$pid" >/dev/null
    local kind started seconds
    for kind in small stream idle; do
        started=$(now)
        if [[ $kind == idle ]]; then
            sleep "$IDLE_S"
        else
            load "$url" "$kind" "$REQUESTS"
            sleep 1 # this batch's records are committed inside its window
        fi
        dump "$pid" "$kind"
        seconds=$(python3 -c "print($(now) - $started)")
        local file
        file=$(ls -t "$cg".* | head -1)
        printf '%s\t%s\t%s\t%s\n' "$target" "$kind" "$(instructions "$file")" "$seconds" >>"$RESULTS"
        cp "$file" "$OUT/$target-$kind.callgrind"
        callgrind_annotate --inclusive=no "$file" 2>/dev/null | head -n $((TOP + 25)) \
            >"$OUT/$target-$kind.top.txt"
        log "$target $kind: $(instructions "$file") instructions in ${seconds%.*} s"
    done
    kill "$pid" 2>/dev/null || true
}

log "load: $(cut -d' ' -f1-3 /proc/loadavg); $REQUESTS requests per batch, concurrency $CONC"
for target in $TARGETS; do measure "$target"; done

python3 - "$RESULTS" "$REQUESTS" <<'EOF' | tee "$OUT/summary.txt"
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
n = int(sys.argv[2])
by = {(t, k): (int(ir), float(s)) for t, k, ir, s in rows}
per = {}
print(f"{'target':8} {'batch':7} {'instr/request':>14} {'raw instr':>14} {'idle/s':>12} {'secs':>6}")
for target in dict.fromkeys(t for t, _ in by):
    idle_ir, idle_s = by[(target, "idle")]
    idle_rate = idle_ir / idle_s
    for kind in ("small", "stream"):
        ir, secs = by[(target, kind)]
        per[(target, kind)] = (ir - idle_rate * secs) / n
        print(f"{target:8} {kind:7} {per[(target, kind)]:14,.0f} {ir:14,} {idle_rate:12,.0f} {secs:6.1f}")
for kind in ("small", "stream"):
    if ("floor", kind) in per and ("gateway", kind) in per:
        f, g = per[("floor", kind)], per[("gateway", kind)]
        print(f"{kind}: gateway {g:,.0f} = floor {f:,.0f} x {g / f:.2f} (+{g - f:,.0f} per request)")
EOF
