#!/usr/bin/env bash
# Usage history at scale (issue 13): every summary, chart and billing endpoint over
# 1 M and 10 M usage records, SQLite and PostgreSQL. Not run in CI.
#
#   bench/usage_history.sh                          # SQLite then PostgreSQL, 1M and 10M
#   USAGE_RECORDS="1000000" USAGE_BACKENDS=sqlite bench/usage_history.sh
#   TOKENHUB_BIN=target/debug/tokenhub bench/usage_history.sh   # an existing binary
#
# PostgreSQL: USAGE_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) names
# a server where a database `th_bench_usage_<pid>` is created and dropped.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${USAGE_RECORDS:-1000000 10000000}
BACKENDS=${USAGE_BACKENDS:-sqlite postgres}
RUNS=${USAGE_RUNS:-15}
PORT=${USAGE_PORT:-39613}
PG_ADMIN=${USAGE_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
BASE=http://127.0.0.1:$PORT

log() { printf '[usage %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
if [[ -z ${TOKENHUB_BIN:-} ]]; then
    cargo build --release -p tokenhub >&2
    TOKENHUB_BIN=$ROOT/target/release/tokenhub
fi
BIN=$(realpath "$TOKENHUB_BIN")
WORK=$(mktemp -d)
GW_PID=
PG_DB=
stop_gateway() {
    if [[ -n $GW_PID ]]; then kill "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null || true; fi
    GW_PID=
}
drop_pg() {
    [[ -n $PG_DB ]] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    PG_DB=
}
cleanup() { stop_gateway; drop_pg; rm -rf "$WORK"; }
trap cleanup EXIT

export TOKENHUB_LISTEN=127.0.0.1:$PORT
export TOKENHUB_ROOT_PASSWORD=usage-root-password
export TOKENHUB_SECRET_KEY=5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7
export TOKENHUB_LOG=warn
tokenhub() { "$BIN" --config /dev/null "$@"; }
scalar() { # the first column of the first row of a query
    if [[ $TOKENHUB_DATABASE_URL == sqlite://* ]]; then
        python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
            "${TOKENHUB_DATABASE_URL#sqlite://}" "$1"
    else
        psql -At "$TOKENHUB_DATABASE_URL" -c "$1"
    fi
}

for backend in $BACKENDS; do
    for records in $SIZES; do
        if [[ $backend == sqlite ]]; then
            rm -f "$WORK"/usage.db*
            export TOKENHUB_DATABASE_URL=sqlite://$WORK/usage.db
        else
            PG_DB=th_bench_usage_$$
            psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
            export TOKENHUB_DATABASE_URL=${PG_ADMIN%/*}/$PG_DB
        fi
        # An admin, so that a token of its own reads its `/api/me/usage…` (the console's).
        tokenhub users create bench-user --balance-usd 1000 --role admin >/dev/null
        KEY=$(tokenhub keys create --user bench-user --name bench)
        ADMIN=$(tokenhub admin-tokens create)
        ME=$(tokenhub admin-tokens create --user bench-user)
        USER_ID=$(scalar "SELECT id FROM users WHERE name = 'bench-user'")
        KEY_ID=$(scalar "SELECT id FROM api_keys WHERE name = 'bench'")
        log "$backend: populating $records records"
        POPULATED=$(python3 bench/usage_history.py populate "$TOKENHUB_DATABASE_URL" "$records" "$USER_ID" "$KEY_ID")
        log "$backend: $POPULATED"
        "$BIN" --config /dev/null serve >"$WORK/gateway.log" 2>&1 &
        GW_PID=$!
        until curl -s -o /dev/null "$BASE/healthz"; do sleep 0.05; done
        TIMES=$(python3 bench/usage_history.py time "$BASE" "$ADMIN" "$KEY" "$USER_ID" "$ME" "$RUNS")
        echo "{\"backend\": \"$backend\", \"populated\": $POPULATED, \"endpoints\": $TIMES}"
        stop_gateway
        [[ $backend == postgres ]] && drop_pg
    done
done
