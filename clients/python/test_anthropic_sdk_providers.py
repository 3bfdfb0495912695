"""The official `anthropic` Python SDK against TokenHub's `/v1/messages`, with each kind
of upstream behind it:

- `claude-sonnet-4`: an Anthropic-dialect channel (type "anthropic", pointed at the
  mock's /v1/messages). Prices $3 input, $0.30 cache read, $3.75 cache write, $15 output
  per 1M tokens.
- `mock-gpt`: an OpenAI-dialect channel. Prices $1 input, $2 output per 1M tokens.

Both speak the mock's rules (crates/mock-upstream): prompt = the words of the text of
each message + 3 per message (tool_use and tool_result blocks carry no text words);
output = the reply's words, or per tool call the words of its name and of its compact
arguments JSON. The reply is "Hello from mock-upstream! You said: " + the last user
text, or with the `echo_tool_result` knob "The tool said: " + the last tool result.
"""

from dataclasses import dataclass

import anthropic
import pytest

from conftest import env, usage_record

HELLO = [{"role": "user", "content": "Hello there"}]
HELLO_REPLY = "Hello from mock-upstream! You said: Hello there"
HELLO_PROMPT = 5  # 2 words + 3
HELLO_OUTPUT = 7

ASK = {"role": "user", "content": "What is the weather in Paris?"}  # 6 words + 3
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL_KNOB = {"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3}
CALL_OUTPUT = 2  # "get_weather" + '{"city":"Paris"}'
TOOL_RESULT = "21 C and sunny"
TOOL_REPLY = "The tool said: 21 C and sunny"
TOOL_REPLY_OUTPUT = 7


@dataclass(frozen=True)
class Upstream:
    model: str
    # nano-USD per token
    input: int
    cache_read: int
    cache_write: int
    output: int
    # knobs that make the upstream report cache reads/writes, and how many
    cache_knobs: dict
    cache_read_tokens: int
    cache_write_tokens: int
    # prompt tokens of [ASK, assistant tool_use, user tool_result] by the mock's rule:
    # the Anthropic dialect sees the result as a block (3), OpenAI's as a tool
    # message whose text is counted (4 words + 3)
    round_trip_prompt: int

    def cost(self, prompt, completion, read=0, write=0):
        plain = prompt - read - write
        return (
            plain * self.input
            + read * self.cache_read
            + write * self.cache_write
            + completion * self.output
        )


ANTHROPIC = Upstream(
    model="claude-sonnet-4",
    input=3000,
    cache_read=300,
    cache_write=3750,
    output=15000,
    cache_knobs={"cache_read_tokens": 1, "cache_write_tokens": 2},
    cache_read_tokens=1,
    cache_write_tokens=2,
    round_trip_prompt=9 + 3 + 3,
)
OPENAI = Upstream(
    model="mock-gpt",
    input=1000,
    cache_read=1000,
    cache_write=1000,
    output=2000,
    cache_knobs={},
    cache_read_tokens=0,
    cache_write_tokens=0,
    round_trip_prompt=9 + 3 + 7,
)
UPSTREAMS = [pytest.param(ANTHROPIC, id="anthropic-dialect"), pytest.param(OPENAI, id="openai-dialect")]


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


def assert_record(request_id, upstream, *, stream, prompt, completion, read=0, write=0):
    record = usage_record(request_id)
    assert record["model"] == upstream.model, record
    assert (record["status"], record["stream"], record["estimated"]) == (200, stream, False), record
    assert record["error"] is None, record
    assert record["prompt_tokens"] == prompt, record
    assert record["cached_tokens"] == read, record
    assert record["cache_write_tokens"] == write, record
    assert record["completion_tokens"] == completion, record
    assert record["cost"] == upstream.cost(prompt, completion, read, write), record


def assert_hello_usage(usage, upstream):
    read, write = upstream.cache_read_tokens, upstream.cache_write_tokens
    assert usage.input_tokens == HELLO_PROMPT - read - write, usage
    assert (usage.cache_read_input_tokens or 0) == read, usage
    assert (usage.cache_creation_input_tokens or 0) == write, usage
    assert usage.output_tokens == HELLO_OUTPUT, usage


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_text_answer_usage_and_billing(claude, upstream):
    raw = claude.messages.with_raw_response.create(
        model=upstream.model,
        max_tokens=100,
        messages=HELLO,
        extra_body={"mock": upstream.cache_knobs},
    )
    request_id = raw.headers.get("x-request-id")
    message = raw.parse()

    assert message.type == "message" and message.role == "assistant"
    assert [(b.type, b.text) for b in message.content] == [("text", HELLO_REPLY)]
    assert message.stop_reason == "end_turn"
    assert_hello_usage(message.usage, upstream)
    assert_record(
        request_id,
        upstream,
        stream=False,
        prompt=HELLO_PROMPT,
        completion=HELLO_OUTPUT,
        read=upstream.cache_read_tokens,
        write=upstream.cache_write_tokens,
    )


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_streamed_text_usage_and_billing(claude, upstream):
    with claude.messages.stream(
        model=upstream.model,
        max_tokens=100,
        messages=HELLO,
        extra_body={"mock": {"chunks": 4, "split_events": True, **upstream.cache_knobs}},
    ) as stream:
        request_id = stream.response.headers.get("x-request-id")
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) >= 2, pieces
    assert "".join(pieces) == HELLO_REPLY
    assert final.stop_reason == "end_turn"
    assert [(b.type, b.text) for b in final.content] == [("text", HELLO_REPLY)]
    assert_hello_usage(final.usage, upstream)
    assert_record(
        request_id,
        upstream,
        stream=True,
        prompt=HELLO_PROMPT,
        completion=HELLO_OUTPUT,
        read=upstream.cache_read_tokens,
        write=upstream.cache_write_tokens,
    )


def ask_for_the_tool(claude, upstream, *, stream):
    """The first leg: the model asks for get_weather(city=Paris). Returns (request id,
    the assistant message, the input_json fragments seen when streamed)."""
    request = dict(
        model=upstream.model,
        max_tokens=200,
        messages=[ASK],
        tools=[WEATHER_TOOL],
        extra_body={"mock": {"tool_call": CALL_KNOB}},
    )
    if not stream:
        raw = claude.messages.with_raw_response.create(**request)
        return raw.headers.get("x-request-id"), raw.parse(), []
    with claude.messages.stream(**request) as events:
        request_id = events.response.headers.get("x-request-id")
        fragments = [e.partial_json for e in events if e.type == "input_json"]
        return request_id, events.get_final_message(), fragments


def upstream_saw_the_result(mock, upstream, tool_use_id):
    """The tool result reached the upstream in its own dialect, under the call's id."""
    last = mock.journal()[-1]
    messages = last["body"]["messages"]
    if upstream is ANTHROPIC:
        assert last["path"] == "/v1/messages", last["path"]
        [result] = messages[-1]["content"]
        assert (result["type"], result["tool_use_id"]) == ("tool_result", tool_use_id), result
    else:
        assert last["path"].endswith("/chat/completions"), last["path"]
        tool = messages[-1]
        assert (tool["role"], tool["tool_call_id"]) == ("tool", tool_use_id), tool
        text = tool["content"] if isinstance(tool["content"], str) else "".join(
            p.get("text", "") for p in tool["content"]
        )
        assert text == TOOL_RESULT, tool


@pytest.mark.parametrize("stream_first_leg", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_tool_use_round_trip(claude, mock, upstream, stream_first_leg):
    request_id, asked, fragments = ask_for_the_tool(claude, upstream, stream=stream_first_leg)

    assert asked.stop_reason == "tool_use"
    [tool_use] = asked.content
    assert (tool_use.type, tool_use.name, tool_use.input) == (
        "tool_use",
        "get_weather",
        {"city": "Paris"},
    )
    assert tool_use.id, tool_use
    if stream_first_leg:
        assert len([f for f in fragments if f]) >= 2, fragments
        assert "".join(fragments) == '{"city":"Paris"}'
    assert asked.usage.output_tokens == CALL_OUTPUT
    assert_record(request_id, upstream, stream=stream_first_leg, prompt=9, completion=CALL_OUTPUT)

    raw = claude.messages.with_raw_response.create(
        model=upstream.model,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            ASK,
            {"role": "assistant", "content": asked.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": TOOL_RESULT}
                ],
            },
        ],
        extra_body={"mock": {"echo_tool_result": True}},
    )
    answer = raw.parse()

    assert [(b.type, b.text) for b in answer.content] == [("text", TOOL_REPLY)]
    assert answer.stop_reason == "end_turn"
    assert answer.usage.input_tokens == upstream.round_trip_prompt
    assert answer.usage.output_tokens == TOOL_REPLY_OUTPUT
    upstream_saw_the_result(mock, upstream, tool_use.id)
    assert_record(
        raw.headers.get("x-request-id"),
        upstream,
        stream=False,
        prompt=upstream.round_trip_prompt,
        completion=TOOL_REPLY_OUTPUT,
    )
