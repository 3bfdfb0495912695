#!/usr/bin/env bash
# Fuzzes every parser and translator that reads outside input (the cargo-fuzz targets in
# fuzz/fuzz_targets/), each for a fixed time, and reports executions and crashes per
# target. Not part of CI (scripts/test.sh): run it by hand, e.g. before a release.
#
#   scripts/fuzz.sh                 # 60 s per target
#   scripts/fuzz.sh 300             # 300 s per target
#   scripts/fuzz.sh 30 sse_decoder  # some targets only
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz needs nightly features;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them. Builds are release builds
# with debug assertions (so an arithmetic overflow is a crash) and without a sanitizer
# (the code under test is safe Rust; ASan would halve the executions).
#
# The seed corpus is fuzz/corpus/<target>/ and the dictionary fuzz/json.dict (kept in
# git, written by fuzz/seed_corpus.py);
# what the fuzzer learns goes to fuzz/target/corpus/<target>/ (kept between runs, not in
# git). A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/<file>
# Exits non-zero if any target crashed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECONDS_PER_TARGET="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
FLAGS=(--sanitizer none --debug-assertions)

command -v cargo-fuzz >/dev/null 2>&1 || {
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
  exit 2
}

if (($# > 0)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

echo "[fuzz] building ${#TARGETS[@]} targets"
cargo fuzz build "${FLAGS[@]}"
# The binaries are run directly: `cargo fuzz run` would rebuild them in the middle of a
# run whenever a source file changed.
BIN_DIR="$ROOT/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

declare -A RUNS CRASHES
failed=0
for target in "${TARGETS[@]}"; do
  work="$ROOT/fuzz/target/corpus/$target"
  mkdir -p "$work" "$ROOT/fuzz/artifacts/$target"
  log="$ROOT/fuzz/target/fuzz-$target.log"
  printf '\n===== %s (%ss) =====\n' "$target" "$SECONDS_PER_TARGET"
  # The dictionary (fuzz/json.dict: member names, type values, integer edges) helps
  # every JSON and SSE target; the TOML target finds its keys in its seeds.
  dict=()
  [[ "$target" == config ]] || dict=(-dict="$ROOT/fuzz/json.dict")
  rc=0
  # -timeout: an input taking over 10 s is reported as a hang (a crash) too.
  "$BIN_DIR/$target" "$work" "$ROOT/fuzz/corpus/$target" \
    -artifact_prefix="$ROOT/fuzz/artifacts/$target/" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || rc=$?
  RUNS[$target]="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  if ((rc == 0)); then
    CRASHES[$target]=0
  else
    CRASHES[$target]="1 (exit $rc)"
    failed=1
    grep -E "^(thread '|SUMMARY|==[0-9]+== ERROR|artifact_prefix|Test unit written)" "$log" | head -n 8 || true
    echo "(full log: $log)"
  fi
  echo "executions: ${RUNS[$target]:-?}, crash: ${CRASHES[$target]}"
done

printf '\n===== fuzz summary (%ss per target) =====\n' "$SECONDS_PER_TARGET"
printf '  %-28s %14s  %s\n' target executions crash
for target in "${TARGETS[@]}"; do
  printf '  %-28s %14s  %s\n' "$target" "${RUNS[$target]:-?}" "${CRASHES[$target]}"
done
if ((failed)); then
  echo "FUZZING FOUND CRASHES (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "no crashes"
