#!/usr/bin/env bash
# The 20 trials of issue 14: three gateway processes started together on an empty
# database, on SQLite and (when TOKENHUB_TEST_POSTGRES_URL is set) PostgreSQL. CI runs
# the same test with 3 trials (PostgreSQL) and 1 (SQLite); this takes ~2 minutes.
#   TOKENHUB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test scripts/startup-trials.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOKENHUB_STARTUP_TRIALS="${TOKENHUB_STARTUP_TRIALS:-20}" exec cargo test -p tokenhub --test it \
  startup::instances_started_together_on_an_empty_database_all_come_up -- --nocapture
