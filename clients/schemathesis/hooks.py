"""Credentials for scripts/api-fuzz.sh's schemathesis runs (loaded via SCHEMATHESIS_HOOKS).

API_FUZZ_AS picks who calls the management API:
  admin  `Authorization: Bearer th-admin-…`, minted for root by `tokenhub admin-tokens create`
  user   the `th_session` cookie of API_FUZZ_USER, with its `X-CSRF-Token`

The key-authenticated balance lookups (`security: api_key`) get API_FUZZ_API_KEY, an
`sk-` key of the user, whoever the caller.

The run itself may revoke the token (DELETE /api/admin/tokens/{id}) or end the session
(POST /api/auth/logout): on a 401 schemathesis asks again, and a fresh credential is made.
Logins go out from API_FUZZ_LOGIN_SOURCE (another loopback address): the generated
requests fail logins from 127.0.0.1 by the hundred, and the login throttle would soon
refuse the good password too.
"""

import http.client
import json
import os
import subprocess
import urllib.parse

import schemathesis

AS = os.environ["API_FUZZ_AS"]
GATEWAY = urllib.parse.urlsplit(os.environ["API_FUZZ_GATEWAY_URL"])
KEY_PATHS = ("/api/usage/key", "/v1/dashboard/billing/")


def login(username, password):
    connection = http.client.HTTPConnection(
        GATEWAY.hostname, GATEWAY.port, timeout=30,
        source_address=(os.environ["API_FUZZ_LOGIN_SOURCE"], 0),
    )
    body = json.dumps({"username": username, "password": password})
    connection.request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"login as {username} answered {response.status}: {answer[:300]!r}")
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    return {"cookie": cookie, "csrf": json.loads(answer)["csrf_token"]}


def admin_token():
    token = subprocess.run(
        [os.environ["TOKENHUB_BIN"], "admin-tokens", "create", "--user", "root", "--name", "api-fuzz"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    if not token.startswith("th-admin-"):
        raise RuntimeError(f"tokens create printed {token!r}")
    return token


# Kept until a 401 says it is dead (schemathesis then asks again).
@schemathesis.auth(refresh_interval=3600)
class ManagementAuth:
    def get(self, case, ctx):
        if AS == "admin":
            return {"bearer": admin_token()}
        return login(os.environ["API_FUZZ_USER"], os.environ["API_FUZZ_PASSWORD"])

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        if case.operation.path.startswith(KEY_PATHS):
            case.headers["Authorization"] = f"Bearer {os.environ['API_FUZZ_API_KEY']}"
        elif "bearer" in data:
            case.headers["Authorization"] = f"Bearer {data['bearer']}"
        else:
            case.headers["Cookie"] = data["cookie"]
            case.headers["X-CSRF-Token"] = data["csrf"]
