"""Shared fixtures for the real-client tests.

scripts/client-tests.sh starts mock-upstream and a TokenHub gateway and exports:
TOKENHUB_BASE_URL, TOKENHUB_API_KEY, MOCK_BASE_URL, TOKENHUB_BIN, TOKENHUB_CONFIG,
TOKENHUB_DATABASE_URL. Running pytest without them is an error, not a skip.
"""

import json
import os
import subprocess
import time
import uuid

import httpx
import openai
import pytest

REQUIRED_ENV = (
    "TOKENHUB_BASE_URL",
    "TOKENHUB_API_KEY",
    "MOCK_BASE_URL",
    "TOKENHUB_BIN",
    "TOKENHUB_CONFIG",
    "TOKENHUB_DATABASE_URL",
)


def pytest_configure(config):
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            "missing environment: "
            + ", ".join(missing)
            + " (run these tests through scripts/client-tests.sh)"
        )


def env(name):
    return os.environ[name]


def tokenhub_cli(*args, check=True):
    """Runs the tokenhub CLI with the gateway's config and database (inherited env)."""
    proc = subprocess.run(
        [env("TOKENHUB_BIN"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"tokenhub {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def usage_record(request_id, timeout=5.0):
    """Polls `tokenhub usage get` until the batched writer has stored the record."""
    assert request_id and request_id.startswith("req_"), f"bad request id {request_id!r}"
    deadline = time.monotonic() + timeout
    while True:
        proc = tokenhub_cli("usage", "get", request_id, check=False)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no usage record for {request_id} after {timeout}s "
                f"(last exit {proc.returncode}, stderr: {proc.stderr.strip()})"
            )
        time.sleep(0.1)


def make_client(api_key=None):
    return openai.OpenAI(
        base_url=env("TOKENHUB_BASE_URL"),
        api_key=api_key or env("TOKENHUB_API_KEY"),
        max_retries=0,  # a retried 429/5xx would hide gateway behaviour
        timeout=30.0,
    )


def new_user_with_key(balance_usd):
    """Creates a fresh user and key via the CLI and waits until the gateway knows the key."""
    name = f"pytest-{uuid.uuid4().hex[:12]}"
    tokenhub_cli("users", "create", name, "--balance-usd", str(balance_usd))
    key = tokenhub_cli("keys", "create", "--user", name, "--name", name).stdout.strip()
    assert key.startswith("sk-"), f"keys create printed {key!r}"
    # The server picks up CLI writes within its reload interval (100 ms in tests).
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(
            env("TOKENHUB_BASE_URL") + "/models",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        if r.status_code == 200:
            return name, key
        if time.monotonic() > deadline:
            raise AssertionError(
                f"new key never became valid: GET /models -> {r.status_code} {r.text}"
            )
        time.sleep(0.1)


class Mock:
    """Access to mock-upstream's request journal."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def reset(self):
        httpx.post(self.base_url + "/mock/reset", timeout=10).raise_for_status()

    def journal(self):
        r = httpx.get(self.base_url + "/mock/journal", timeout=10)
        r.raise_for_status()
        return r.json()

    def chat_requests(self):
        return [e for e in self.journal() if e["path"].endswith("/chat/completions")]


@pytest.fixture
def client():
    c = make_client()
    yield c
    c.close()


@pytest.fixture
def mock():
    m = Mock(env("MOCK_BASE_URL"))
    m.reset()
    return m
