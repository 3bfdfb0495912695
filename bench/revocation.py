#!/usr/bin/env python3
"""Trials of bench/revocation.sh, standard library only.

revocation.py FIRST_PORT ADMIN_TOKEN TRIALS TOKENHUB_BIN DATABASE_URL SECRET_KEY
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

BODY = json.dumps({"model": "tokenhub-demo", "max_tokens": 1,
                   "messages": [{"role": "user", "content": "hi"}]})


def status(conn, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    response.read()
    return response.status


def main():
    first_port, admin, trials, binary, database_url, secret = sys.argv[1:7]
    first_port, trials = int(first_port), int(trials)
    env = dict(os.environ, TOKENHUB_DATABASE_URL=database_url, TOKENHUB_SECRET_KEY=secret)

    def cli(*args):
        return subprocess.run([binary, "--config", "/dev/null", *args], env=env, check=True,
                              capture_output=True, text=True).stdout

    conns = [http.client.HTTPConnection("127.0.0.1", first_port + i, timeout=10) for i in range(3)]
    delays = []
    for trial in range(trials):
        name = f"r{trial}"
        key = cli("keys", "create", "--user", "revoker", "--name", name).strip()
        key_id = next(line.split("\t")[0] for line in cli("keys", "list", "--user", "revoker").splitlines()
                      if line.split("\t")[2:3] == [name])
        for port, conn in enumerate(conns, first_port):
            answer = status(conn, "POST", "/v1/chat/completions", key, BODY)
            if answer != 200:
                sys.exit(f"trial {trial}: a new key answered {answer} on port {port}")
        refused_at = [None, None]

        def poll(index, started):
            conn = http.client.HTTPConnection("127.0.0.1", first_port + 1 + index, timeout=10)
            while status(conn, "POST", "/v1/chat/completions", key, BODY) != 401:
                if time.monotonic() - started > 5:
                    sys.exit(f"instance {index + 1} still accepts a key revoked 5 s ago")
            refused_at[index] = time.monotonic()

        assert status(conns[0], "DELETE", f"/api/admin/keys/{key_id}", admin) == 204
        started = time.monotonic()
        pollers = [threading.Thread(target=poll, args=(i, started)) for i in range(2)]
        for p in pollers:
            p.start()
        for p in pollers:
            p.join()
        delays.append((max(refused_at) - started) * 1000)

    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
    print(json.dumps({"trials": trials, "p50_ms": round(pick(0.5), 1), "p90_ms": round(pick(0.9), 1),
                      "p99_ms": round(pick(0.99), 1), "max_ms": round(delays[-1], 1),
                      "mean_ms": round(statistics.mean(delays), 1)}))


if __name__ == "__main__":
    main()
