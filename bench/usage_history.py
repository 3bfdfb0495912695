#!/usr/bin/env python3
"""Helpers of bench/usage_history.sh (issue 13), standard library only (psql for PostgreSQL).

usage_history.py populate DB_URL RECORDS BENCH_USER BENCH_KEY
    RECORDS usage records over the last 60 days, in the database: 1 in 100 is the bench
    key's, the rest spread over 1,000 users and 10,000 keys, 4 models, 2 channels, 5 % 429.
    Then the rollups are rebuilt by the backfill of migration 0018 (what an upgrade runs).
usage_history.py time BASE ADMIN_TOKEN BENCH_KEY BENCH_USER RUNS
    median and max latency (ms) of every summary, chart and billing endpoint, as JSON.
"""
import http.client
import json
import pathlib
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse

DAY = 86_400_000
ROOT = pathlib.Path(__file__).resolve().parent.parent
MIGRATION = str(ROOT / "crates/tokenhub/migrations/{}/0018_usage_rollups.sql")


def backfill_sql(backend):
    text = pathlib.Path(MIGRATION.format(backend)).read_text()
    return text[text.index("-- Backfill"):]


def records_sql(backend, n, bench_user, bench_key, start, step):
    series = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
              if backend == "sqlite" else "")
    source = "n" if backend == "sqlite" else "generate_series(0::bigint, {last}) AS n(i)"
    concat = "'bench-' || i" if backend == "sqlite" else "'bench-' || i::text"
    model = "'bench-model-' || (i % 4)" if backend == "sqlite" else "'bench-model-' || (i % 4)::text"
    return (
        "INSERT INTO usage_records (request_id, user_id, key_id, model, channel_id, prompt_tokens, "
        "cached_tokens, cache_write_tokens, completion_tokens, cost_nano, status, error, stream, "
        "estimated, latency_ms, ttft_ms, created_at, cache_write_1h_tokens, explicit_cached_tokens, "
        "price_tier) " + series +
        f"SELECT {concat}, "
        f"CASE WHEN i % 100 = 0 THEN {bench_user} ELSE 1000000 + i % 1000 END, "
        f"CASE WHEN i % 100 = 0 THEN {bench_key} ELSE 1000000 + i % 10000 END, "
        f"{model}, 1 + i % 2, 100 + i % 500, 0, 0, 10 + i % 200, 1000 + i % 5000, "
        "CASE WHEN i % 20 = 0 THEN 429 ELSE 200 END, NULL, i % 2, 0, 50 + (i * 7919) % 3000, NULL, "
        f"{start} + i * {step}, 0, 0, 'standard' FROM " + source
    ).format(last=n - 1)


def populate(url, n, bench_user, bench_key):
    now = int(time.time() * 1000)
    start = now - 60 * DAY
    step = max(1, 60 * DAY // n)
    began = time.time()
    if url.startswith("sqlite://"):
        con = sqlite3.connect(url[len("sqlite://"):].split("?")[0])
        con.execute("PRAGMA journal_mode = WAL")
        con.execute(records_sql("sqlite", n, bench_user, bench_key, start, step))
        con.commit()
        inserted = time.time()
        con.executescript("DELETE FROM usage_rollups; DELETE FROM usage_rollups_global;"
                          + backfill_sql("sqlite"))
        con.commit()
        rows = con.execute("SELECT (SELECT COUNT(*) FROM usage_rollups), "
                           "(SELECT COUNT(*) FROM usage_rollups_global)").fetchone()
        con.execute("ANALYZE")
        con.close()
    else:
        def psql(sql):
            done = subprocess.run(["psql", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"psql: {done.stderr}")
            return done.stdout.strip()
        psql(records_sql("postgres", n, bench_user, bench_key, start, step))
        inserted = time.time()
        psql("DELETE FROM usage_rollups; DELETE FROM usage_rollups_global; " + backfill_sql("postgres"))
        psql("VACUUM ANALYZE")
        rows = psql("SELECT (SELECT COUNT(*) FROM usage_rollups) || ' ' || "
                    "(SELECT COUNT(*) FROM usage_rollups_global)").split()
    print(json.dumps({"records": n, "insert_s": round(inserted - began, 1),
                      "backfill_s": round(time.time() - inserted, 1),
                      "owner_rollup_rows": int(rows[0]), "global_rollup_rows": int(rows[1])}))


def timed(base, path, token):
    parsed = urllib.parse.urlparse(base)
    con = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    began = time.perf_counter()
    con.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = con.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - began) * 1000
    con.close()
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {body[:200]!r}")
    return elapsed


def time_endpoints(base, admin, key, user, runs):
    now = int(time.time() * 1000)
    today = now // DAY * DAY
    iso = lambda ms: time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
    endpoints = {
        "billing_usage_60d": (f"/v1/dashboard/billing/usage?start_date={iso(now - 60 * DAY)}"
                              f"&end_date={iso(now + DAY)}", key),
        "usage_key": ("/api/usage/key", key),
        "admin_summary_day_all": ("/api/admin/usage/summary?group_by=day", admin),
        "admin_summary_model_all": ("/api/admin/usage/summary?group_by=model", admin),
        "admin_dashboard_day_14d": (f"/api/admin/usage/summary?group_by=day&from={today - 13 * DAY}", admin),
        "admin_dashboard_model_14d": (f"/api/admin/usage/summary?group_by=model&from={today - 13 * DAY}", admin),
        "admin_dashboard_user_14d": (f"/api/admin/usage/summary?group_by=user&from={today - 13 * DAY}", admin),
        "console_chart_30d": (f"/api/admin/usage/summary?group_by=day&user_id={user}&from={today - 29 * DAY}", admin),
        "summary_unaligned_range": (f"/api/admin/usage/summary?group_by=day&from={now - 7 * DAY - 1234}&to={now - 1234}", admin),
        "listing_page": ("/api/admin/usage?limit=50", admin),
    }
    results = {}
    for name, (path, token) in endpoints.items():
        timed(base, path, token)  # warm the caches once
        samples = [timed(base, path, token) for _ in range(runs)]
        results[name] = {"median_ms": round(statistics.median(samples), 1),
                         "max_ms": round(max(samples), 1)}
    print(json.dumps(results))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "populate":
        populate(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif command == "time":
        time_endpoints(args[0], args[1], args[2], int(args[3]), int(args[4]))
    else:
        raise SystemExit(__doc__)
