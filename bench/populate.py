#!/usr/bin/env python3
"""Scenario 6: fill a stopped gateway's SQLite database with a large state.

populate.py DB MOCK_URL KEYS MODELS CHANNELS

Adds KEYS api keys (spread over KEYS/100 users), MODELS priced models and CHANNELS
OpenAI channels to the mock (each serving MODELS/CHANNELS of the new models), then
bumps the revision counter. The bench key and model stay as they were.
"""
import hashlib
import json
import sqlite3
import sys
import time

db, mock, n_keys, n_models, n_channels = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
now = int(time.time() * 1000)
con = sqlite3.connect(db)
cur = con.cursor()
n_users = max(1, n_keys // 100)
cur.executemany(
    "INSERT INTO users (name, role, status, balance_nano, created_at) VALUES (?, 'user', 'active', ?, ?)",
    ((f"scale-user-{i}", 10**15, now) for i in range(n_users)),
)
first_user = cur.execute("SELECT MIN(id) FROM users WHERE name LIKE 'scale-user-%'").fetchone()[0]
cur.executemany(
    "INSERT INTO api_keys (user_id, name, key_hash, key_prefix, status, created_at) "
    "VALUES (?, ?, ?, ?, 'active', ?)",
    (
        (first_user + i % n_users, f"scale-{i}",
         hashlib.sha256(f"sk-scale-{i}".encode()).hexdigest(), f"sk-scale-{i}"[:10], now)
        for i in range(n_keys)
    ),
)
models = [f"scale-model-{i:04d}" for i in range(n_models)]
cur.executemany(
    "INSERT INTO models (id, provider, context, input_price_nano, output_price_nano, enabled, created_at) "
    "VALUES (?, 'Scale', 128000, ?, ?, 1, ?)",
    ((m, 1_000 + i, 2_000 + i, now) for i, m in enumerate(models)),
)
per = max(1, n_models // max(1, n_channels))
cur.executemany(
    "INSERT INTO channels (name, kind, base_url, api_key, models, model_map, priority, weight, enabled, created_at) "
    "VALUES (?, 'openai', ?, 'scale-key', ?, '{}', 0, 1, 1, ?)",
    (
        (f"scale-channel-{c:03d}", mock, json.dumps(models[c * per:(c + 1) * per]), now)
        for c in range(n_channels)
    ),
)
cur.execute("UPDATE revision SET value = value + 1")
con.commit()
counts = {t: cur.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
          for t in ("users", "api_keys", "models", "channels")}
print(f"populate: {counts}", file=sys.stderr)
