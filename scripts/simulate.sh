#!/usr/bin/env bash
# The long ledger simulation (crates/tokenhub/src/ledger/simulation.rs; docs/simulation.md):
# a seeded schedule of reservations, settlements, disconnects, credits, debits,
# redemptions, quota changes and reloads over the real money path, with writer faults,
# writer restarts, crashes, database outages and duplicate batches injected, and the
# ledger's invariants checked after every step. Prints, per run, the operations, the
# faults injected by kind and the invariant checks; a failure prints its seed, its step
# and the command that replays it, and the script exits 1. Not part of CI (`cargo test`
# runs the short one).
#
#   scripts/simulate.sh                                # 1,000,000 steps, random seed, SQLite
#   scripts/simulate.sh --seed 42 --steps 20000        # replay a seed
#   scripts/simulate.sh --runs 4 --steps 250000        # four random seeds
#   scripts/simulate.sh --backend postgres             # or both; needs TOKENHUB_TEST_POSTGRES_URL
#   scripts/simulate.sh --shared redis                 # 3 processes sharing money in Redis
#   scripts/simulate.sh --shared redis --instances 2 --redis-url redis://127.0.0.1:6379/
#   scripts/simulate.sh --release ...                  # optimised build (slow to build once)
#
# Each run gets a database of its own (SQLite under /dev/shm when it exists, or a fresh
# PostgreSQL database beside the one TOKENHUB_TEST_POSTGRES_URL names), removed after it,
# and with --shared redis a redis-server of its own (or a private key prefix on the
# server --redis-url names, its keys removed after the run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE=()
if [[ "${1:-}" == "--release" ]]; then
  PROFILE=(--release)
  shift
fi

cargo build --quiet "${PROFILE[@]}" -p tokenhub --features simulation --example simulate
DIR=debug
((${#PROFILE[@]})) && DIR=release
start=$(date +%s)
status=0
"$ROOT/target/$DIR/examples/simulate" "$@" || status=$?
echo "wall time: $(($(date +%s) - start)) s"
exit "$status"
