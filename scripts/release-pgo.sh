#!/usr/bin/env bash
# A profile-guided release build of the gateway (issue 18): target/pgo/tokenhub.
#
#   scripts/release-pgo.sh                 # 2 release builds of the gateway + ~15 s of training
#   PGO_KEEP_WORK=1 scripts/release-pgo.sh # keep the training's logs and database
#
# 1. Builds the gateway instrumented (`-Cprofile-generate`, in target/pgo-generate) and
#    the mock upstream and load tools (plain release, target/release).
# 2. Trains it: the instrumented gateway serves the benchmark's request mix in front of
#    the mock upstream (SQLite ledger, info logs, as production runs): small chat
#    requests, 20-chunk streams, and a few hundred each of the other relayed surfaces
#    (Anthropic Messages, Responses, a wrong key, an unknown model), so that no surface
#    is laid out as if it were never used. Then it stops gracefully, which writes the
#    profile.
# 3. Merges the profile (llvm-profdata, from rustup's llvm-tools component, added if
#    missing) and builds the gateway with it (`-Cprofile-use`, in target/pgo-use).
#
# What it buys is code layout: the hot path of a request packed together, cold branches
# moved out of it. The serving threads' user CPU per request fell by 38-49 % at 1,000
# req/s, and the whole gateway's CPU per request by ~15 % at saturation
# (bench/RESULTS.md, addendum 25). The program is the same source;
# only the compiler's placement and inlining choices differ, so every test of a plain
# build holds for it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=lib/bench-gateway.sh
source "$ROOT/scripts/lib/bench-gateway.sh"
GENERATE_DIR=$ROOT/target/pgo-generate
USE_DIR=$ROOT/target/pgo-use
OUT=$ROOT/target/pgo
PROFILES=$OUT/profiles

log() { printf '[release-pgo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

host=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $PROFDATA ]]; then
    log "adding rustup's llvm-tools component (for llvm-profdata)"
    rustup component add llvm-tools >&2
fi
[[ -x $PROFDATA ]] || die "no llvm-profdata at $PROFDATA"

log "building the tools and the instrumented gateway"
# The same package set as bench/run.sh builds, so both share the artifacts.
cargo build --release --locked -p tokenhub -p mock-upstream -p floor-proxy >&2
rm -rf "$PROFILES"
mkdir -p "$PROFILES"
# Build scripts run instrumented too and write profiles of their own: cleared below.
RUSTFLAGS="-Cprofile-generate=$PROFILES" \
    cargo build --release --locked -p tokenhub --target-dir "$GENERATE_DIR" >&2
rm -f "$PROFILES"/*
TOOLS=$ROOT/target/release
TRAINEE=$GENERATE_DIR/release/tokenhub

WORK=$(mktemp -d /tmp/tokenhub-pgo.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ ${PGO_KEEP_WORK:-0} == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$TOOLS/mock-upstream" --listen 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
PIDS+=($!)
MOCK=$(wait_line "$WORK/mock.out" 'http://127\.0\.0\.1:[0-9]+' 20 $!)

export TOKENHUB_DATABASE_URL="sqlite://$WORK/train.db"
export TOKENHUB_ROOT_PASSWORD=pgo-training-root-password
export LLVM_PROFILE_FILE="$PROFILES/tokenhub-%p-%m.profraw"
unset TOKENHUB_LOG TOKENHUB_LOG_FORMAT TOKENHUB_CONFIG
write_bench_config "$WORK/tokenhub.toml" "$MOCK" pgo
tokenhub() { TOKENHUB_LISTEN=127.0.0.1:0 "$TRAINEE" --config "$WORK/tokenhub.toml" "$@"; }
KEY=$(create_bench_key pgo tokenhub)
serve_bench_gateway "$TRAINEE" "$WORK/tokenhub.toml" "$WORK"

B=$WORK/bodies
mkdir -p "$B"
hello='[{"role":"user","content":"Say hello to the benchmark."}]'
words=$(seq -f 'w%g' 0 19 | paste -sd' ')
printf '%s' "{\"model\":\"mock-gpt\",\"messages\":$hello,\"max_tokens\":64}" >"$B/small.json"
printf '%s' "{\"model\":\"mock-gpt\",\"stream\":true,\"messages\":$hello,\"max_tokens\":64,\"mock\":{\"chunks\":20,\"chunk_delay_ms\":5,\"reply\":\"$words\"}}" >"$B/stream.json"
printf '%s' "{\"model\":\"mock-gpt\",\"max_tokens\":64,\"messages\":$hello}" >"$B/messages.json"
printf '%s' '{"model":"mock-gpt","input":"Say hello to the benchmark.","max_output_tokens":64}' >"$B/responses.json"
printf '%s' "{\"model\":\"no-such-model\",\"messages\":$hello}" >"$B/unknown-model.json"

# load PATH BODY REQUESTS answered|refused [KEY]: a load-probe run whose requests must
# all be answered (2xx) or all refused; otherwise the profile would describe other paths
# than the ones meant (a gateway that failed every request trains its error path).
load() {
    local report want='"errors":0[,}]'
    [[ $4 == refused ]] && want='"ok":0[,}]'
    report=$(timeout 300 "$TOOLS/load-probe" --url "$GW$1" --key "${5:-$KEY}" \
        --body-file "$B/$2" --requests "$3" --concurrency 64 --timeout-s 280)
    grep -qE "$want" <<<"$report" || die "training $1 with $2, expected all $4: $report"
}
log "training: small requests, streams, other surfaces"
load /v1/chat/completions small.json 30000 answered
streams=$(timeout 120 "$TOOLS/stream-probe" --url "$GW/v1/chat/completions" --key "$KEY" \
    --body-file "$B/stream.json" --concurrency 64 --duration-s 8)
grep -q '"errors":{}' <<<"$streams" || die "training streams failed: ${streams:0:400}"
load /v1/messages messages.json 500 answered
load /v1/responses responses.json 500 answered
load /v1/chat/completions small.json 500 refused sk-not-a-key
load /v1/chat/completions unknown-model.json 500 refused

kill -TERM "$GW_PID"
wait "$GW_PID" || die "the instrumented gateway did not stop cleanly"
compgen -G "$PROFILES/tokenhub-*.profraw" >/dev/null || die "the training wrote no profile"
"$PROFDATA" merge -o "$OUT/tokenhub.profdata" "$PROFILES"/tokenhub-*.profraw

log "building the gateway with the profile"
RUSTFLAGS="-Cprofile-use=$OUT/tokenhub.profdata" \
    cargo build --release --locked -p tokenhub --target-dir "$USE_DIR" >&2
cp "$USE_DIR/release/tokenhub" "$OUT/tokenhub"
log "done: $OUT/tokenhub"
