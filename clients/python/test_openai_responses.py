"""The Responses API (`client.responses.*`) of the official `openai` Python SDK and
openai-agents' default model (which uses it), against a TokenHub gateway relaying to
mock-upstream's chat dialect: the SDK's own parsers are the contract for the wire format.

mock-upstream's rules: the reply is "Hello from mock-upstream! You said: " + last user
text; prompt_tokens = words + 3 per message; completion_tokens = words in the reply.
"""

import asyncio

import openai
import pytest

from conftest import make_client, new_user_with_key, usage_record

MOCK_REPLY = "Hello from mock-upstream! You said: Hello there"


def test_create_answers_a_response_billed_like_chat(client):
    raw = client.responses.with_raw_response.create(model="mock-gpt", input="Hello there")
    response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == MOCK_REPLY
    assert response.usage.input_tokens == 5
    assert response.usage.output_tokens == 7
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    record = usage_record(raw.headers["x-request-id"])
    assert (record["prompt_tokens"], record["completion_tokens"]) == (5, 7), record
    assert record["status"] == 200 and record["stream"] is False, record


def test_stream_then_continue_with_previous_response_id(client, mock):
    deltas = []
    with client.responses.stream(model="mock-gpt", input="Hello there") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == MOCK_REPLY
    assert final.output_text == MOCK_REPLY
    assert final.usage.input_tokens == 5

    follow = client.responses.create(
        model="mock-gpt", input="And again", previous_response_id=final.id
    )
    assert follow.previous_response_id == final.id
    assert follow.output_text == "Hello from mock-upstream! You said: And again"
    replayed = mock.chat_requests()[-1]["body"]["messages"]
    assert replayed == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": MOCK_REPLY},
        {"role": "user", "content": "And again"},
    ]
    assert client.responses.retrieve(final.id).output_text == MOCK_REPLY



def test_input_items_lists_the_conversation_newest_first(client):
    first = client.responses.create(model="mock-gpt", input="Hello there")
    second = client.responses.create(
        model="mock-gpt", input="And again", previous_response_id=first.id
    )
    page = client.responses.input_items.list(second.id)
    texts = [item.content[0].text for item in page.data]
    assert texts == ["And again", MOCK_REPLY, "Hello there"]
    assert [item.role for item in page.data] == ["user", "assistant", "user"]
    assert page.has_more is False
    oldest = client.responses.input_items.list(second.id, order="asc", limit=1)
    assert [item.content[0].text for item in oldest.data] == ["Hello there"]
    assert oldest.has_more is True
    # The SDK's auto-pagination follows `after` through every item.
    every = client.responses.input_items.list(second.id, order="asc", limit=1)
    assert [item.id for item in every] == [item.id for item in reversed(page.data)]

def test_function_call_round_trip(client):
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    first = client.responses.create(
        model="mock-gpt",
        input="Weather in Paris?",
        tools=tools,
        extra_body={"mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}},
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].arguments == '{"city":"Paris"}'
    second = client.responses.create(
        model="mock-gpt",
        previous_response_id=first.id,
        tools=tools,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        extra_body={"mock": {"echo_tool_result": True}},
    )
    assert "sunny" in second.output_text


def test_another_user_cannot_read_or_continue_and_delete_works(client):
    created = client.responses.create(model="mock-gpt", input="Hello there")
    _, other_key = new_user_with_key(1)
    other = make_client(other_key)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="mock-gpt", input="go on", previous_response_id=created.id)
    other.close()
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_hosted_tools_are_refused_with_a_400(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="mock-gpt", input="news?", tools=[{"type": "web_search"}]
        )
    assert "web_search" in str(refused.value)


def test_openai_agents_default_model():
    from agents import Agent, Runner, set_default_openai_client, set_tracing_disabled

    from conftest import env

    set_tracing_disabled(True)  # traces would go to api.openai.com
    set_default_openai_client(
        openai.AsyncOpenAI(base_url=env("TOKENHUB_BASE_URL"), api_key=env("TOKENHUB_API_KEY")),
        use_for_tracing=False,
    )
    agent = Agent(name="assistant", instructions="Be brief.", model="mock-gpt")
    result = asyncio.run(Runner.run(agent, "Hello there"))
    assert result.final_output == MOCK_REPLY
