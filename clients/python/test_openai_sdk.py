"""The official `openai` Python SDK against a TokenHub gateway relaying to mock-upstream.

mock-upstream's rules (crates/mock-upstream): the reply is
"Hello from mock-upstream! You said: " + last user text; prompt_tokens = words + 3 per
message; completion_tokens = words in the reply. Prices are $1 / $2 per 1M tokens, so
cost in nano-USD = prompt * 1000 + completion * 2000.
"""

import httpx
import openai
import pytest

from conftest import env, make_client, new_user_with_key, usage_record

PROMPT = "Hello there"
MESSAGES = [{"role": "user", "content": PROMPT}]
MOCK_REPLY = "Hello from mock-upstream! You said: Hello there"
PROMPT_TOKENS = 5  # 2 words + 3 for the one message
COMPLETION_TOKENS = 7  # words in MOCK_REPLY
COST_NANO = PROMPT_TOKENS * 1000 + COMPLETION_TOKENS * 2000  # 19000

DEMO_REPLY = (
    "Hello! I am TokenHub's built-in demo model, running offline inside the gateway. "
    'You said: "Hello there". Add a provider key (for example DEEPSEEK_API_KEY) to talk '
    "to a real model."
)


def assert_billed(record, *, stream):
    assert record["status"] == 200, record
    assert record["prompt_tokens"] == PROMPT_TOKENS, record
    assert record["completion_tokens"] == COMPLETION_TOKENS, record
    assert record["cost"] == COST_NANO, record
    assert record["cost_usd"] == "0.000019", record
    assert record["stream"] is stream, record
    assert record["estimated"] is False, record
    assert record["error"] is None, record


def collect_stream(stream):
    chunks = list(stream)
    text = "".join(
        (c.choices[0].delta.content or "") for c in chunks if c.choices
    )
    return chunks, text


# (a) non-streaming
def test_non_stream_text_usage_and_cost(client):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=MESSAGES
    )
    request_id = raw.headers.get("x-request-id")
    completion = raw.parse()

    assert completion.choices[0].message.content == MOCK_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == PROMPT_TOKENS
    assert completion.usage.completion_tokens == COMPLETION_TOKENS
    assert completion.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS

    record = usage_record(request_id)
    assert record["request_id"] == request_id
    assert record["model"] == "mock-gpt"
    assert_billed(record, stream=False)


# (b) streaming without stream_options: the client must not see the usage chunk
def test_stream_without_usage_option(client):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=MESSAGES, stream=True
    )
    request_id = raw.headers.get("x-request-id")
    chunks, text = collect_stream(raw.parse())

    assert text == MOCK_REPLY
    assert chunks, "no chunks received"
    empty = [c for c in chunks if not c.choices]
    assert not empty, f"client saw {len(empty)} chunk(s) with empty choices: {empty}"
    with_usage = [c for c in chunks if c.usage is not None]
    assert not with_usage, f"client saw usage it did not ask for: {with_usage}"

    assert_billed(usage_record(request_id), stream=True)


def test_stream_without_usage_option_plain_create(client):
    """The same via the non-raw API, reading the request id from stream.response."""
    stream = client.chat.completions.create(
        model="mock-gpt", messages=MESSAGES, stream=True
    )
    request_id = stream.response.headers.get("x-request-id")
    _, text = collect_stream(stream)
    assert text == MOCK_REPLY
    assert_billed(usage_record(request_id), stream=True)


# (c) streaming with include_usage: the last chunk carries usage and no choices
def test_stream_with_include_usage(client):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    request_id = raw.headers.get("x-request-id")
    chunks, text = collect_stream(raw.parse())

    assert text == MOCK_REPLY
    last = chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None, last
    assert last.usage.prompt_tokens == PROMPT_TOKENS
    assert last.usage.completion_tokens == COMPLETION_TOKENS
    assert last.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1, f"expected one usage chunk, got {usage_chunks}"

    assert_billed(usage_record(request_id), stream=True)


# (d) model_map, pass-through of unknown fields, stream_options injection
def test_alias_model_is_mapped_and_extra_fields_pass_through(client, mock):
    completion = client.chat.completions.create(
        model="alias-model",
        messages=MESSAGES,
        extra_body={"x_custom": {"a": 1}},
    )
    assert completion.choices[0].message.content == MOCK_REPLY

    sent = mock.chat_requests()
    assert len(sent) == 1, sent
    body = sent[-1]["body"]
    assert body["model"] == "mock-gpt", body
    assert body["x_custom"] == {"a": 1}, body
    assert body["messages"] == MESSAGES, body


def test_stream_options_injected_upstream(client, mock):
    stream = client.chat.completions.create(
        model="alias-model", messages=MESSAGES, stream=True
    )
    request_id = stream.response.headers.get("x-request-id")
    chunks, text = collect_stream(stream)
    assert text == MOCK_REPLY
    assert all(c.choices for c in chunks), "usage chunk leaked to the client"

    body = mock.chat_requests()[-1]["body"]
    assert body["model"] == "mock-gpt", body
    assert body.get("stream") is True, body
    assert body.get("stream_options", {}).get("include_usage") is True, body

    # Billed from the real upstream usage, not an estimate.
    assert_billed(usage_record(request_id), stream=True)


# (e) errors
def test_bad_key_is_authentication_error():
    bad = make_client(api_key="sk-this-key-does-not-exist")
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(model="mock-gpt", messages=MESSAGES)
    assert exc.value.status_code == 401
    assert exc.value.code == "invalid_api_key"
    assert exc.value.response.headers.get("x-request-id")


def test_missing_key_is_401():
    r = httpx.post(
        env("TOKENHUB_BASE_URL") + "/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        timeout=10,
    )
    assert r.status_code == 401, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    assert error["code"] == "invalid_api_key", error


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert exc.value.status_code == 404
    assert exc.value.code == "model_not_found"


def test_unknown_model_stream_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as exc:
        stream = client.chat.completions.create(
            model="no-such-model", messages=MESSAGES, stream=True
        )
        list(stream)
    assert exc.value.status_code == 404
    assert exc.value.code == "model_not_found"


def test_bad_json_is_invalid_request_error():
    r = httpx.post(
        env("TOKENHUB_BASE_URL") + "/chat/completions",
        content=b'{"model": "mock-gpt", "messages": [',
        headers={
            "Authorization": f"Bearer {env('TOKENHUB_API_KEY')}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error", error
    assert set(error) >= {"message", "type", "param", "code"}, error


# (f) the built-in demo model
def test_demo_model_streams_exact_text(client):
    stream = client.chat.completions.create(
        model="tokenhub-demo", messages=MESSAGES, stream=True
    )
    _, text = collect_stream(stream)
    assert text == DEMO_REPLY


def test_readme_snippet_trailing_slash_base_url():
    """The README's Python snippet, whose base_url ends in "/v1/"."""
    from openai import OpenAI

    client = OpenAI(
        api_key=env("TOKENHUB_API_KEY"),
        base_url=env("TOKENHUB_BASE_URL") + "/",
        max_retries=0,
        timeout=30.0,
    )
    text = ""
    for chunk in client.chat.completions.create(
        model="tokenhub-demo",
        stream=True,
        messages=[{"role": "user", "content": "Hello!"}],
    ):
        text += chunk.choices[0].delta.content or ""
    assert text == DEMO_REPLY.replace('"Hello there"', '"Hello!"')
    client.close()


def test_demo_model_non_stream(client):
    completion = client.chat.completions.create(model="tokenhub-demo", messages=MESSAGES)
    assert completion.choices[0].message.content == DEMO_REPLY


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"mock-gpt", "alias-model", "tokenhub-demo"} <= ids, ids


# (g) an exhausted balance is a 429 insufficient_quota
def test_zero_balance_is_rate_limit_error():
    _, key = new_user_with_key(balance_usd=0)
    broke = make_client(api_key=key)
    with pytest.raises(openai.RateLimitError) as exc:
        broke.chat.completions.create(model="mock-gpt", messages=MESSAGES)
    assert exc.value.status_code == 429
    assert exc.value.code == "insufficient_quota"
    broke.close()
