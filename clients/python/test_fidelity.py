"""Every client's default path (#15), with the real SDKs against claude-sonnet-4 (the
mock's Anthropic dialect) and mock-gpt:

- openai `.parse` (structured output) on a Claude-served model, validated by pydantic;
- anthropic `messages.stream` with `message_start` input tokens and the cost;
- anthropic `count_tokens` (no `max_tokens`);
- a `cache_control` round trip: the markers reach the mock's Anthropic journal;
- `usage.cost` equal to the usage record, in answers and in the header.
"""

from decimal import Decimal

import anthropic
import pytest
from pydantic import BaseModel

from conftest import env, usage_record

CLAUDE = "claude-sonnet-4"


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


@pytest.fixture
def claude():
    c = anthropic.Anthropic(
        base_url=env("TOKENHUB_BASE_URL").removesuffix("/v1"),
        api_key=env("TOKENHUB_API_KEY"),
        max_retries=0,
        timeout=30.0,
    )
    yield c
    c.close()


def usd(nanos):
    return Decimal(nanos) / Decimal(1_000_000_000)


def test_parse_gives_a_validated_object_from_claude(client, mock):
    raw = client.chat.completions.with_raw_response.parse(
        model=CLAUDE,
        messages=[{"role": "user", "content": "Ada, 36, likes maths"}],
        response_format=Person,
    )
    completion = raw.parse()
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person), completion
    sent = mock.journal()[-1]["body"]
    assert sent["output_config"]["format"]["type"] == "json_schema", sent
    record = usage_record(raw.headers["x-request-id"])
    assert Decimal(raw.headers["x-tokenhub-cost-usd"]) == usd(record["cost"])
    assert Decimal(str(completion.usage.model_extra["cost"])) == usd(record["cost"])


def test_messages_stream_reports_input_tokens_first_and_the_cost_last(claude):
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=50,
        messages=[{"role": "user", "content": "hello there"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.input_tokens > 0, start
    record = usage_record(request_id)
    assert final.usage.input_tokens == record["prompt_tokens"], final.usage
    delta = next(e for e in events if e.type == "message_delta")
    assert Decimal(str(delta.usage.model_extra["cost"])) == usd(record["cost"])


def test_count_tokens_needs_no_max_tokens(claude):
    counted = claude.messages.count_tokens(
        model=CLAUDE,
        messages=[{"role": "user", "content": "how many tokens is this"}],
    )
    assert counted.input_tokens > 0


def test_cache_control_reaches_anthropic(claude, mock):
    mark = {"type": "ephemeral"}
    message = claude.messages.create(
        model=CLAUDE,
        max_tokens=30,
        system=[{"type": "text", "text": "a long shared context", "cache_control": mark}],
        tools=[{"name": "lookup", "input_schema": {"type": "object"}, "cache_control": mark}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello", "cache_control": mark}],
            }
        ],
    )
    assert message.id.startswith("msg_") and not message.id.startswith("msg_msg_")
    sent = mock.journal()[-1]["body"]
    assert sent["system"][-1]["cache_control"] == mark, sent
    assert sent["tools"][0]["cache_control"] == mark, sent
    assert sent["messages"][0]["content"][0]["cache_control"] == mark, sent
