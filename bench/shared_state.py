#!/usr/bin/env python3
"""Extra latency of the shared state (Redis) per request (issue 14). Not run in CI.

    bench/shared_state.py                      # target/release binaries if built, else debug
    TOKENHUB_BIN=target/debug/tokenhub bench/shared_state.py

Starts the mock upstream, a redis-server of its own (a free port, no persistence) and one
gateway on SQLite, twice: without and with TOKENHUB_REDIS_URL. Each run sends
SHARED_REQUESTS sequential requests on one keep-alive connection with a key that has an
RPM limit, a TPM limit and a quota, to a priced model: every request is admitted by one
Redis script (limits and reservation together; its settlement's corrections follow in
the background). Prints p50/p90/p99 of both runs and the differences, and per request
the Redis scripts and
commands (INFO commandstats before and after the timed requests, heartbeats included)
and redis-server's time per script. Loopback only.
"""

import http.client
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUESTS = int(os.environ.get("SHARED_REQUESTS", "3000"))
WARMUP = 200


def binary(name):
    env = os.environ.get("TOKENHUB_BIN" if name == "tokenhub" else "MOCK_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        path = os.path.join(ROOT, "target", profile, name)
        if os.path.exists(path):
            return path
    sys.exit(f"no {name} binary: cargo build -p {name}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def command_counts(redis_port):
    """Calls per command on the bench's own redis-server (INFO commandstats: a script's
    own calls count too), and its CPU time in µs as `cpu_us`."""
    info = subprocess.run(["redis-cli", "-p", str(redis_port), "INFO", "all"],
                          capture_output=True, text=True, check=True).stdout
    counts = {"cpu_us": 0}
    for line in info.splitlines():
        if line.startswith("cmdstat_"):
            name, stats = line[len("cmdstat_"):].split(":", 1)
            fields = dict(f.split("=") for f in stats.split(","))
            counts[name] = int(fields["calls"])
            counts[f"{name}_us"] = int(fields["usec"])
        elif line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            counts["cpu_us"] += int(float(line.split(":")[1]) * 1e6)
    return counts


def run(work, mock_port, redis_url, round_no, commands):
    db = os.path.join(work, f"bench-{'redis' if redis_url else 'local'}-{round_no}.db")
    port = free_port()
    env = dict(os.environ, TOKENHUB_DATABASE_URL=f"sqlite://{db}",
               TOKENHUB_LISTEN=f"127.0.0.1:{port}", TOKENHUB_LOG="warn",
               TOKENHUB_STARTUP_MODEL_CHECK="false", TOKENHUB_ROOT_PASSWORD="bench-root")
    env.pop("TOKENHUB_REDIS_URL", None)
    if redis_url:
        env["TOKENHUB_REDIS_URL"] = redis_url
        env["TOKENHUB_REDIS_PREFIX"] = f"bench-{os.getpid()}:"
    config = os.path.join(work, "tokenhub.toml")
    with open(config, "w") as f:
        f.write(f'[[channels]]\nname = "mock"\ntype = "openai"\nbase_url = "http://127.0.0.1:{mock_port}"\n'
                'api_key = "k"\nmodels = ["mock-gpt"]\n\n[[models]]\nid = "mock-gpt"\nprovider = "Mock"\n'
                'context = 8192\ninput_usd_per_mtok = "1"\noutput_usd_per_mtok = "2"\n')
    cli = [binary("tokenhub"), "--config", config]
    def tokenhub(*args):
        done = subprocess.run(cli + list(args), env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{args}: {done.stderr}")
        return done.stdout.strip()

    tokenhub("users", "create", "bench", "--balance-usd", "1000")
    key = tokenhub("keys", "create", "--user", "bench", "--quota-usd", "500")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE api_keys SET rpm_limit = 1000000, tpm_limit = 1000000000")
    gateway = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"model": "mock-gpt", "max_tokens": 16,
                           "messages": [{"role": "user", "content": "hi"}]})
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        times = []
        redis_port = int(redis_url.rsplit(":", 1)[1]) if redis_url else None
        for n in range(WARMUP + REQUESTS):
            if n == WARMUP and redis_port:
                before = command_counts(redis_port)
            started = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                sys.exit(f"status {response.status}")
            if n >= WARMUP:
                times.append(elapsed * 1e6)
        if redis_port:
            # The writer and the background updates of the last requests land just after.
            time.sleep(0.1)
            for name, calls in command_counts(redis_port).items():
                if name != "info":
                    commands[name] = commands.get(name, 0) + calls - before.get(name, 0)
        return times
    finally:
        gateway.terminate()
        gateway.wait(10)


def quantiles(times):
    q = statistics.quantiles(times, n=100)
    return {"p50": statistics.median(times), "p90": q[89], "p99": q[98]}


def main():
    with tempfile.TemporaryDirectory() as work:
        mock_port = free_port()
        mock = subprocess.Popen([binary("mock-upstream"), "--listen", f"127.0.0.1:{mock_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                                  "--appendonly", "no", "--bind", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(mock_port)
            wait_port(redis_port)
            # Alternate runs so machine load drifts affect both alike.
            local, shared, commands = [], [], {}
            for round_no in range(2):
                local += run(work, mock_port, None, round_no, commands)
                shared += run(work, mock_port, f"redis://127.0.0.1:{redis_port}", round_no,
                              commands)
        finally:
            for process in (mock, redis):
                process.terminate()
                process.wait(10)
    a, b = quantiles(local), quantiles(shared)
    print(f"requests per mode: {len(local)} (sequential, one connection)")
    print(f"{'':6} {'local µs':>10} {'redis µs':>10} {'extra µs':>10}")
    for name in ("p50", "p90", "p99"):
        print(f"{name:6} {a[name]:10.0f} {b[name]:10.0f} {b[name] - a[name]:+10.0f}")
    per_request = {name: calls / len(shared) for name, calls in commands.items() if calls}
    cpu = per_request.pop("cpu_us", 0)
    inside = {name: per_request.pop(name) for name in list(per_request) if name.endswith("_us")}
    for name in ("evalsha", "eval"):
        if per_request.get(name):
            print(f"redis-server time in {name}: {inside[name + '_us'] / per_request[name]:.1f} µs a call")
    scripts = per_request.get("evalsha", 0) + per_request.get("eval", 0)
    print(f"Redis per request: {scripts:.2f} scripts, {cpu:.0f} µs of redis-server CPU; "
          "calls (a script's own included): " + ", ".join(
              f"{name} {n:.2f}" for name, n in sorted(per_request.items())))


if __name__ == "__main__":
    main()
