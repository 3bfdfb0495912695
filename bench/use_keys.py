#!/usr/bin/env python3
"""use_keys.py URL N: one small request with each of the first N keys of bench/populate.py.

Makes N keys (and their users) active in a running gateway, so a measurement that
follows runs with that many entries cached. Fails on the first answer that is not a success.
"""
import concurrent.futures
import json
import sys
import urllib.request

url, n = sys.argv[1], int(sys.argv[2])
body = json.dumps(
    {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
).encode()


def use(i):
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer sk-scale-{i}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as answer:
        return answer.status


with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(use, range(n)))  # urlopen raises on any status but 2xx
print(f"use_keys: {n} keys used once each", file=sys.stderr)
