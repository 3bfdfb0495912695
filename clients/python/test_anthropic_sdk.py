"""The official `anthropic` Python SDK against TokenHub's `/v1/messages`, served by the
OpenAI-dialect mock channel (`mock-gpt`) through the relay's translation.

Same mock rules as test_openai_sdk.py: the reply is "Hello from mock-upstream! You
said: " + last user text; prompt = words + 3 per message; completion = reply words;
$1 / $2 per 1M tokens.
"""

import anthropic
import pytest

from conftest import env, usage_record

MESSAGES = [{"role": "user", "content": "Hello there"}]
MOCK_REPLY = "Hello from mock-upstream! You said: Hello there"
PROMPT_TOKENS = 5
COMPLETION_TOKENS = 7
COST_NANO = PROMPT_TOKENS * 1000 + COMPLETION_TOKENS * 2000


def gateway_root():
    """ANTHROPIC_BASE_URL is the gateway root: the SDK adds /v1/messages itself."""
    base = env("TOKENHUB_BASE_URL").rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


@pytest.fixture
def claude():
    c = anthropic.Anthropic(
        api_key=env("TOKENHUB_API_KEY"),
        base_url=gateway_root(),
        max_retries=0,  # a retried 429/5xx would hide gateway behaviour
        timeout=30.0,
    )
    yield c
    c.close()


def assert_billed(record, *, stream):
    assert record["model"] == "mock-gpt", record
    assert record["status"] == 200, record
    assert record["prompt_tokens"] == PROMPT_TOKENS, record
    assert record["completion_tokens"] == COMPLETION_TOKENS, record
    assert record["cost"] == COST_NANO, record
    assert record["stream"] is stream, record
    assert record["estimated"] is False, record


def test_messages_create_text_usage_and_record(claude):
    raw = claude.messages.with_raw_response.create(
        model="mock-gpt", max_tokens=100, messages=MESSAGES
    )
    request_id = raw.headers.get("x-request-id")
    message = raw.parse()

    assert message._request_id == request_id  # the SDK reads `request-id`
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_"), message.id
    assert [(b.type, b.text) for b in message.content] == [("text", MOCK_REPLY)]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == PROMPT_TOKENS
    assert message.usage.output_tokens == COMPLETION_TOKENS
    assert_billed(usage_record(request_id), stream=False)


def test_messages_stream_text_deltas_and_final_message(claude):
    with claude.messages.stream(
        model="mock-gpt",
        max_tokens=100,
        messages=MESSAGES,
        extra_body={"mock": {"chunks": 5}},
    ) as stream:
        request_id = stream.response.headers.get("x-request-id")
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) >= 2, pieces
    assert "".join(pieces) == MOCK_REPLY
    assert final.stop_reason == "end_turn"
    assert [(b.type, b.text) for b in final.content] == [("text", MOCK_REPLY)]
    assert final.usage.output_tokens == COMPLETION_TOKENS
    assert_billed(usage_record(request_id), stream=True)


def test_errors_are_anthropic_errors(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=MESSAGES)
    assert caught.value.body["error"]["type"] == "not_found_error"

    stranger = anthropic.Anthropic(
        api_key="sk-not-a-key", base_url=gateway_root(), max_retries=0, timeout=30.0
    )
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(model="mock-gpt", max_tokens=10, messages=MESSAGES)
    stranger.close()
