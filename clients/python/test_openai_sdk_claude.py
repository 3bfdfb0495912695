"""The official `openai` Python SDK against `claude-sonnet-4`, which the gateway serves
from an Anthropic-dialect channel (the mock's /v1/messages): the client speaks OpenAI
only, the upstream Anthropic only.

Mock rules for the Anthropic dialect (crates/mock-upstream/src/messages.rs): the whole
prompt = the words of `system` + 3, plus per message the words of its text blocks + 3;
the cache knobs move tokens of that prompt into cache reads/writes; output = the reply's
words, or per tool call the words of its name and of its compact arguments JSON.
Prices: $3 input, $0.30 cache read, $3.75 cache write, $15 output per 1M tokens.
"""

import json

from conftest import usage_record

MODEL = "claude-sonnet-4"
UPSTREAM_MODEL = "claude-sonnet-4-6"  # live: the mock refuses retired ids, as Anthropic does
INPUT, CACHE_READ, CACHE_WRITE, OUTPUT = 3000, 300, 3750, 15000  # nano-USD per token

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ARGUMENTS = '{"city":"Paris","unit":"celsius"}'
ASK = {"role": "user", "content": "What is the weather in Paris?"}  # 6 words + 3


def cost(prompt, completion, read=0, write=0):
    return (prompt - read - write) * INPUT + read * CACHE_READ + write * CACHE_WRITE + completion * OUTPUT


def assert_record(request_id, *, stream, prompt, completion, read=0, write=0):
    record = usage_record(request_id)
    assert record["model"] == MODEL, record
    assert (record["status"], record["stream"], record["estimated"]) == (200, stream, False), record
    assert record["error"] is None, record
    assert (
        record["prompt_tokens"],
        record["cached_tokens"],
        record["cache_write_tokens"],
        record["completion_tokens"],
    ) == (prompt, read, write, completion), record
    assert record["cost"] == cost(prompt, completion, read, write), record
    return record


def test_text_with_cache_reads_and_writes_is_billed_at_each_price(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Hello there"},
        ],
        extra_body={"mock": {"cache_read_tokens": 3, "cache_write_tokens": 4}},
    )
    request_id = raw.headers.get("x-request-id")
    completion = raw.parse()

    assert completion.model == UPSTREAM_MODEL
    [choice] = completion.choices
    assert choice.message.content == "Hello from mock-upstream! You said: Hello there"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    # (2 words + 3) system + (2 words + 3) user; 3 of them read from the cache, 4 written.
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 7, 17)
    assert usage.prompt_tokens_details.cached_tokens == 3
    # Cache writes ride in a non-standard member (OpenRouter's spelling) that the SDK's
    # typed usage does not keep: read it from the body the SDK received.
    wire_usage = raw.http_response.json()["usage"]
    assert wire_usage["prompt_tokens_details"] == {"cached_tokens": 3, "cache_write_tokens": 4}
    record = assert_record(request_id, stream=False, prompt=10, completion=7, read=3, write=4)
    # 3·3000 + 3·300 + 4·3750 + 7·15000: the writes at 1.25× input, not at the input price.
    assert record["cost"] == 129_900
    assert record["cost_usd"] == "0.0001299", record


def test_streamed_tool_call_arrives_in_pieces_and_is_billed(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[ASK],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
        extra_body={
            "mock": {
                "tool_call": {
                    "name": "get_weather",
                    "arguments": json.loads(ARGUMENTS),
                    "pieces": 4,
                },
                "split_events": True,
            }
        },
    )
    request_id = raw.headers.get("x-request-id")
    chunks = list(raw.parse())

    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas, chunks
    opening = deltas[0]
    assert (opening.index, opening.type, opening.function.name) == (0, "function", "get_weather")
    assert opening.id, opening
    assert all(d.index == 0 for d in deltas), deltas
    assert all(d.id in (None, opening.id) for d in deltas[1:]), deltas
    fragments = [d.function.arguments for d in deltas if d.function and d.function.arguments]
    assert len(fragments) >= 4, fragments
    assert "".join(fragments) == ARGUMENTS
    assert json.loads("".join(fragments)) == {"city": "Paris", "unit": "celsius"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ""
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and usage_chunks[-1] is chunks[-1], chunks
    usage = usage_chunks[0].usage
    # name + compact arguments are one mock word each.
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, 2)
    assert_record(request_id, stream=True, prompt=9, completion=2)


def test_tool_result_round_trip(client, mock):
    asked = client.chat.completions.create(
        model=MODEL,
        messages=[ASK],
        tools=[WEATHER_TOOL],
        extra_body={"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}},
    )
    [choice] = asked.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function",
        "get_weather",
        {"city": "Paris"},
    )

    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            ASK,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "21 C and sunny"},
        ],
        tools=[WEATHER_TOOL],
        extra_body={"mock": {"echo_tool_result": True}},
    )
    answer = raw.parse()

    assert answer.choices[0].message.content == "The tool said: 21 C and sunny"
    assert answer.choices[0].finish_reason == "stop"
    # The upstream got Anthropic turns: the call as tool_use, the result as tool_result.
    sent = mock.journal()[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"], sent
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}
    ], sent
    assert sent[2]["content"][0]["tool_use_id"] == call.id, sent
    # user (6 + 3) + assistant tool_use (3) + user tool_result (3); "The tool said: 21 C and sunny".
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (15, 7)
    assert_record(raw.headers.get("x-request-id"), stream=False, prompt=15, completion=7)


# The mock's thinking block when a request turns thinking on (crates/mock-upstream/src/
# messages/thinking.rs): 9 words, billed as output like Anthropic's thinking.
THOUGHT = "The user wants an answer; I will give it."


def assert_thinking_replayed(sent, call_id):
    """The second turn reached the upstream with the first turn's signed thinking first."""
    assert [m["role"] for m in sent] == ["user", "assistant", "user"], sent
    thinking, tool_use = sent[1]["content"]
    assert (thinking["type"], thinking["thinking"]) == ("thinking", THOUGHT), sent
    assert thinking["signature"], sent
    # The id the client holds carries the block; the upstream gets its own id back.
    assert call_id.startswith(tool_use["id"] + "_th_"), (call_id, tool_use)
    assert sent[2]["content"][0]["tool_use_id"] == tool_use["id"], sent


def test_tool_loop_with_thinking_keeps_the_signed_thinking(client, mock):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[ASK],
        tools=[WEATHER_TOOL],
        reasoning_effort="low",
        extra_body={"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}},
    )
    asked = raw.parse()
    # The thought's 9 words are output, with the call's name and arguments (1 word each).
    assert_record(raw.headers.get("x-request-id"), stream=False, prompt=9, completion=11)
    [choice] = asked.choices
    assert choice.message.reasoning_content == THOUGHT
    [call] = choice.message.tool_calls
    # Sonnet 4.6 takes adaptive thinking with an effort, not a budget.
    first = mock.journal()[-1]["body"]
    assert (first["thinking"], first["output_config"]) == ({"type": "adaptive"}, {"effort": "low"})

    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            ASK,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "21 C and sunny"},
        ],
        tools=[WEATHER_TOOL],
        reasoning_effort="low",
        extra_body={"mock": {"echo_tool_result": True}},
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "The tool said: 21 C and sunny"
    # As in test_tool_result_round_trip (the thinking block has no text words), plus the thought.
    assert_record(raw.headers.get("x-request-id"), stream=False, prompt=15, completion=7 + 9)
    assert_thinking_replayed(mock.journal()[-1]["body"]["messages"], call.id)


def test_streamed_tool_loop_with_thinking_keeps_the_signed_thinking(client, mock):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[ASK],
        tools=[WEATHER_TOOL],
        reasoning_effort="medium",
        stream=True,
        extra_body={"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3}}},
    )
    call_id, name, arguments = "", "", ""
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            call_id += delta.id or ""
            name += delta.function.name or "" if delta.function else ""
            arguments += delta.function.arguments or "" if delta.function else ""
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})

    answer = client.chat.completions.create(
        model=MODEL,
        messages=[
            ASK,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "21 C and sunny"},
        ],
        tools=[WEATHER_TOOL],
        reasoning_effort="medium",
        extra_body={"mock": {"echo_tool_result": True}},
    )
    assert answer.choices[0].finish_reason == "stop"
    assert_thinking_replayed(mock.journal()[-1]["body"]["messages"], call_id)
