#!/usr/bin/env python3
"""Helpers of bench/scale.sh (issue 13), standard library only.

scale.py populate DB USERS KEYS      bulk-insert users and keys (sk-scale-<i>) into SQLite
scale.py populate-sql USERS KEYS     the same as PostgreSQL SQL on stdout (for psql)
scale.py warm BASE KEYS ACTIVE       one request with each of ACTIVE distinct keys
scale.py flood BASE RATE SECONDS     requests with distinct random keys at RATE/s
scale.py until BASE KEY STATUS       [seconds, attempts] until KEY's request answers STATUS
"""
import hashlib
import http.client
import json
import secrets
import sqlite3
import sys
import threading
import time
import urllib.parse

BODY = json.dumps({"model": "tokenhub-demo", "max_tokens": 1,
                   "messages": [{"role": "user", "content": "hi"}]})


def populate(db, n_users, n_keys):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db)
    cur = con.cursor()
    cur.execute("PRAGMA journal_mode = WAL")
    cur.executemany(
        "INSERT INTO users (name, role, status, balance_nano, created_at) VALUES (?, 'user', 'active', ?, ?)",
        ((f"scale-user-{i}", 10**15, now) for i in range(n_users)))
    first = cur.execute("SELECT MIN(id) FROM users WHERE name LIKE 'scale-user-%'").fetchone()[0]
    cur.executemany(
        "INSERT INTO api_keys (user_id, name, key_hash, key_prefix, status, created_at) "
        "VALUES (?, ?, ?, ?, 'active', ?)",
        ((first + i % n_users, f"scale-{i}", hashlib.sha256(f"sk-scale-{i}".encode()).hexdigest(),
          f"sk-scale-{i}"[:10], now) for i in range(n_keys)))
    con.commit()
    print(cur.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])


def populate_sql(n_users, n_keys):
    """PostgreSQL builds the rows itself: a million keys in seconds, no driver needed."""
    now = int(time.time() * 1000)
    print(f"""
INSERT INTO users (name, role, status, balance_nano, created_at)
  SELECT 'scale-user-' || i, 'user', 'active', {10**15}, {now} FROM generate_series(0, {n_users - 1}) AS i;
INSERT INTO api_keys (user_id, name, key_hash, key_prefix, status, created_at)
  SELECT first.id + i % {n_users}, 'scale-' || i,
         encode(sha256(convert_to('sk-scale-' || i, 'UTF8')), 'hex'),
         left('sk-scale-' || i, 10), 'active', {now}
  FROM generate_series(0, {n_keys - 1}) AS i,
       (SELECT MIN(id) AS id FROM users WHERE name LIKE 'scale-user-%') AS first;
ANALYZE users; ANALYZE api_keys;
SELECT COUNT(*) FROM api_keys;""")


class Client:
    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        self.host, self.port = url.hostname, url.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def chat(self, key):
        for _ in range(2):
            try:
                self.conn.request("POST", "/v1/chat/completions", BODY, {
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
                response = self.conn.getresponse()
                response.read()
                return response.status, response.getheader("retry-after")
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        raise RuntimeError("gateway does not answer")


def warm(base, n_keys, active):
    client, step = Client(base), max(1, n_keys // active)
    ok = throttled = 0
    started = time.monotonic()
    for i in range(0, step * active, step):
        while True:
            status, retry = client.chat(f"sk-scale-{i}")
            if status != 429:
                break
            throttled += 1
            time.sleep(float(retry or 1))
        ok += status == 200
    print(json.dumps({"active": active, "ok": ok, "throttled": throttled,
                      "seconds": round(time.monotonic() - started, 2)}))


def flood(base, rate, seconds, threads=8):
    counts, lock = {}, threading.Lock()
    deadline = time.monotonic() + seconds
    per_thread = rate / threads

    def run():
        client, sent, started = Client(base), 0, time.monotonic()
        while time.monotonic() < deadline:
            status, _ = client.chat("sk-" + secrets.token_hex(24))
            with lock:
                counts[status] = counts.get(status, 0) + 1
            sent += 1
            ahead = sent / per_thread - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = sum(counts.values())
    print(json.dumps({"sent": total, "per_s": round(total / seconds), "statuses": counts}))


def until(base, key, want):
    """Prints [seconds, attempts] until KEY's request answers WANT."""
    client, started, attempts = Client(base), time.monotonic(), 0
    while True:
        status, _ = client.chat(key)
        attempts += 1
        if status == int(want):
            print(json.dumps([round(time.monotonic() - started, 4), attempts]))
            return
        if time.monotonic() - started > 30:
            sys.exit(f"still {status} after 30 s")
        time.sleep(0.002)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "populate":
        populate(args[0], int(args[1]), int(args[2]))
    elif command == "populate-sql":
        populate_sql(int(args[0]), int(args[1]))
    elif command == "warm":
        warm(args[0], int(args[1]), int(args[2]))
    elif command == "flood":
        flood(args[0], int(args[1]), float(args[2]))
    elif command == "until":
        until(args[0], args[1], args[2])
    else:
        sys.exit(__doc__)
