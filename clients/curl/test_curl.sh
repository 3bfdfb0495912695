#!/usr/bin/env bash
# curl examples exactly as the README shows them, run against a live gateway.
# Run by scripts/client-tests.sh, which exports TOKENHUB_BASE_URL (…/v1), TOKENHUB_API_KEY,
# TOKENHUB_BIN, TOKENHUB_CONFIG and TOKENHUB_DATABASE_URL.
set -euo pipefail

: "${TOKENHUB_BASE_URL:?run through scripts/client-tests.sh}"
: "${TOKENHUB_API_KEY:?run through scripts/client-tests.sh}"
: "${TOKENHUB_BIN:?run through scripts/client-tests.sh}"

MOCK_REPLY='Hello from mock-upstream! You said: Hello there'
WORK="$(mktemp -d -t tokenhub-curl.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

passed=0
failed=0
failures=()

# run NAME FUNCTION: runs a test in a subshell (so `set -e` aborts only that test).
run() {
  local name="$1" fn="$2" rc
  # Not inside `if`: bash ignores `set -e` in a condition, even in a subshell.
  set +e
  (set -euo pipefail; "$fn") >"$WORK/$fn.log" 2>&1
  rc=$?
  set -e
  if ((rc == 0)); then
    passed=$((passed + 1))
    echo "ok   - $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL - $name"
    sed 's/^/    | /' "$WORK/$fn.log"
  fi
}

fail() {
  echo "assertion failed: $*" >&2
  exit 1
}

# Waits for the batched ledger writer and prints the usage record JSON.
usage_record() {
  local id="$1"
  for _ in $(seq 50); do
    if "$TOKENHUB_BIN" usage get "$id" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "no usage record for $id after 5 s"
}

# The README's quickstart commands, verbatim except for the address
# (http://127.0.0.1:3000/v1 there, $TOKENHUB_BASE_URL here).
KEY="$TOKENHUB_API_KEY"
DEMO_REPLY="Hello! I am TokenHub's built-in demo model, running offline inside the gateway. You said: \"Hello!\". Add a provider key (for example DEEPSEEK_API_KEY) to talk to a real model."

test_readme_chat_completion() {
  curl "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
    -d '{"model": "tokenhub-demo", "messages": [{"role": "user", "content": "Hello!"}]}' \
    -sS --max-time 30 -D headers.txt -o body.json
  cat headers.txt body.json
  grep -qE '^HTTP/[0-9.]+ 200' headers.txt || fail "status is not 200"
  assert_completion body.json "$DEMO_REPLY"
}

test_readme_streaming() {
  curl -N "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
    -d '{"model": "tokenhub-demo", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]}' \
    -sS --max-time 30 -D headers.txt -o stream.txt
  cat headers.txt stream.txt
  grep -qE '^HTTP/[0-9.]+ 200' headers.txt || fail "status is not 200"
  assert_stream stream.txt "$DEMO_REPLY"
}

test_readme_models() {
  curl "$TOKENHUB_BASE_URL/models" -H "Authorization: Bearer $KEY" \
    -sS --max-time 30 -o models.json
  cat models.json
  python3 -c '
import json
body = json.load(open("models.json"))
assert body["object"] == "list", body
ids = {m["id"] for m in body["data"]}
missing = {"mock-gpt", "alias-model", "tokenhub-demo"} - ids
assert not missing, "missing models %s in %s" % (missing, ids)
' || fail "unexpected /v1/models body"
}

# assert_completion FILE TEXT
assert_completion() {
  python3 -c '
import json, sys
body = json.load(open(sys.argv[1]))
assert body["object"] == "chat.completion", body
text = body["choices"][0]["message"]["content"]
assert text == sys.argv[2], "got %r, expected %r" % (text, sys.argv[2])
' "$1" "$2" || fail "unexpected completion body"
}

# assert_stream FILE TEXT: SSE data lines, no usage chunk, ends with data: [DONE]
assert_stream() {
  grep -qx 'data: \[DONE\]' <(tr -d '\r' <"$1") || fail "no 'data: [DONE]' line"
  python3 -c '
import json, sys
lines = open(sys.argv[1]).read().replace("\r", "").split("\n")
events = [l[len("data: "):] for l in lines if l.startswith("data: ")]
assert events and events[-1] == "[DONE]", "last event is %r, not [DONE]" % events[-1:]
chunks = [json.loads(e) for e in events[:-1]]
assert all(c["choices"] for c in chunks), "a chunk with empty choices reached the client"
text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
assert text == sys.argv[2], "got %r, expected %r" % (text, sys.argv[2])
' "$1" "$2" || fail "unexpected stream"
}

test_mock_chat_completion() {
  curl "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello there"}]}' \
    -sS --max-time 30 -D headers.txt -o body.json
  cat headers.txt body.json
  grep -qE '^HTTP/[0-9.]+ 200' headers.txt || fail "status is not 200"
  assert_completion body.json "$MOCK_REPLY"
  python3 -c '
import json
usage = json.load(open("body.json"))["usage"]
assert usage["prompt_tokens"] == 5 and usage["completion_tokens"] == 7, usage
' || fail "unexpected usage"
}

test_mock_streaming() {
  curl -N "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "stream": true, "messages": [{"role": "user", "content": "Hello there"}]}' \
    -sS --max-time 30 -D headers.txt -o stream.txt
  cat headers.txt stream.txt
  grep -qE '^HTTP/[0-9.]+ 200' headers.txt || fail "status is not 200"
  grep -qi '^content-type: text/event-stream' headers.txt || fail "content-type is not text/event-stream"
  assert_stream stream.txt "$MOCK_REPLY"
}

test_request_id() {
  # README: every response carries x-request-id; look its bill up with `tokenhub usage get`
  curl -sS --max-time 30 -i "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" \
    -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello there"}]}' \
    >response.txt
  cat response.txt
  local id
  id="$(tr -d '\r' <response.txt | sed -n 's/^x-request-id: *//Ip' | head -n1)"
  [[ "$id" == req_* ]] || fail "x-request-id header missing or malformed: '$id'"
  usage_record "$id" >record.json
  cat record.json
  python3 -c '
import json, sys
r = json.load(open("record.json"))
assert r["request_id"] == sys.argv[1], r
assert r["cost"] == 19000 and r["status"] == 200 and r["stream"] is False, r
' "$id" || fail "unexpected usage record"
}

test_bad_key() {
  # README: errors are OpenAI-shaped
  local status
  status="$(curl -sS --max-time 30 -o error.json -w '%{http_code}' "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer sk-wrong" \
    -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello there"}]}')"
  echo "HTTP $status"
  cat error.json
  [[ "$status" == 401 ]] || fail "status $status, expected 401"
  python3 -c '
import json
body = json.load(open("error.json"))
assert list(body) == ["error"], body
error = body["error"]
assert set(error) == {"message", "type", "param", "code"}, error
assert isinstance(error["message"], str) and error["message"], error
assert error["code"] == "invalid_api_key", error
' || fail "401 body is not OpenAI-shaped"
}

test_bad_json() {
  local status
  status="$(curl -sS --max-time 30 -o error.json -w '%{http_code}' "$TOKENHUB_BASE_URL/chat/completions" \
    -H "Authorization: Bearer $KEY" \
    -H "Content-Type: application/json" \
    -d '{"model": "mock-gpt", "messages": [')"
  echo "HTTP $status"
  cat error.json
  [[ "$status" == 400 ]] || fail "status $status, expected 400"
  python3 -c '
import json
error = json.load(open("error.json"))["error"]
assert error["type"] == "invalid_request_error", error
' || fail "400 body is not an invalid_request_error"
}

run "README: chat completion (tokenhub-demo)" test_readme_chat_completion
run "README: streaming with -N ends with data: [DONE]" test_readme_streaming
run "README: GET /v1/models lists the catalogue" test_readme_models
run "mock-gpt chat completion: exact text and usage" test_mock_chat_completion
run "mock-gpt streaming: exact text, data: [DONE]" test_mock_streaming
run "x-request-id header names the usage record" test_request_id
run "bad key is 401 with an OpenAI-shaped error" test_bad_key
run "malformed JSON is 400 invalid_request_error" test_bad_json

echo "curl: $passed passed, $failed failed"
if ((failed > 0)); then
  printf '  failed: %s\n' "${failures[@]}"
  exit 1
fi
