"""Tool calling through the gateway with the official `openai` SDK: tools reach the upstream as sent (in Anthropic's
shapes for a Claude model) and the call is billed as any; a whole tool loop (call, the caller runs the tool, sends its
result, gets the answer) against the sandbox, plain and streamed (the SDK's stream helper); an Idempotency-Key
replays the same calls; malformed tools are a 400 before any hold or upstream call."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.core.gateway.conftest import GatewayWorld

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather now in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    }
]
ASK: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
SANDBOX = "sandbox:openai/gpt-4o"
CITY_TEXT = {"name": "get_weather", "arguments": "Paris"}


def test_tools_reach_the_upstream_as_sent_and_the_call_is_billed(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False
    )
    sent = json.loads(world.upstream.requests[-1].body)
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == (TOOLS, "auto", False)
    assert raw.headers["x-credits-charged"] == "2" and world.balance(user) == 10_000 - 2


def test_a_claude_model_gets_the_tools_and_the_conversation_in_anthropics_shapes(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    call = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    conversation = [
        *ASK,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "21"},
    ]
    answer = client.chat.completions.create(
        model="claude-haiku-4-5", messages=conversation, tools=TOOLS, tool_choice="auto", max_tokens=50
    )
    sent = world.upstream.requests[-1]
    body = json.loads(sent.body)
    assert sent.path == "/v1/messages" and body["tool_choice"] == {"type": "auto"}
    assert body["tools"] == [
        {
            "name": "get_weather",
            "input_schema": TOOLS[0]["function"]["parameters"],
            "description": "The weather now in a city",
        }
    ]
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21"}]},
    ]
    assert answer.choices[0].message.content == "Hello from the Anthropic loopback." and world.balance(user) < 10_000


def test_a_whole_tool_loop_against_the_sandbox(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    first = client.chat.completions.create(model=SANDBOX, messages=ASK, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "simulated",
        "unit": "c",
    }
    conversation = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second = client.chat.completions.create(model=SANDBOX, messages=conversation, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    assert second.choices[0].message.tool_calls is None


def test_a_streamed_answer_brings_its_calls_and_its_charge(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    with client.chat.completions.stream(model=SANDBOX, messages=ASK, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in final.choices[0].message.tool_calls or []] == ["get_weather"]
    chunks = list(
        client.chat.completions.create(
            model=SANDBOX, messages=ASK, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant" and any(d.tool_calls for d in deltas)
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-1].model_extra["credits"]["charged"] == 0  # simulated


def test_an_idempotent_retry_replays_the_same_calls(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user())).with_options(default_headers={"Idempotency-Key": "tools-1"})
    first = client.chat.completions.create(model=SANDBOX, messages=ASK, tools=TOOLS)
    again = client.chat.completions.with_raw_response.create(model=SANDBOX, messages=ASK, tools=TOOLS)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().choices[0].message.tool_calls == first.choices[0].message.tool_calls


@pytest.mark.parametrize(
    ("model", "fields", "says"),
    [
        (
            "claude-haiku-4-5",  # Anthropic takes a call's arguments as a JSON object
            {
                "messages": [
                    *ASK,
                    {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": CITY_TEXT}]},
                    {"role": "tool", "tool_call_id": "t", "content": "21"},
                ]
            },
            "not a JSON object",
        ),
        ("gpt-4o-mini", {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "x"}}}, "not among"),
        ("gpt-4o-mini", {"tools": [*TOOLS, *TOOLS]}, "twice"),
        ("gpt-4o-mini", {"messages": [*ASK, {"role": "tool", "content": "21"}]}, "tool_call_id"),
        ("gpt-4o-mini", {"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]}, "tool_call_id"),
    ],
)
def test_refused_before_anything_is_held(world: GatewayWorld, model: str, fields: dict[str, Any], says: str) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**{"model": model, "messages": ASK, "max_tokens": 20, **fields})
    assert says in refused.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


# ---- the Anthropic-compatible route, with the official `anthropic` SDK -------------------------------------------
CLIENT_TOOL = {
    "name": "get_weather",
    "description": "The weather now in a city",
    "input_schema": TOOLS[0]["function"]["parameters"],
}


def test_messages_with_client_tools_reach_claude_in_its_own_shapes(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    conversation: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no data", "is_error": True},
                {"type": "text", "text": "Try again?"},
            ],
        },
    ]
    answer = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=50,
        messages=conversation,
        tools=[CLIENT_TOOL],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    body = json.loads(world.upstream.requests[-1].body)
    assert body["tools"] == [CLIENT_TOOL] and body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["messages"] == conversation  # the same blocks, through the engine's own shapes and back
    assert answer.content[0].text == "Hello from the Anthropic loopback." and world.balance(user) < 10_000


def test_a_tool_loop_through_messages_plain_streamed_and_counted(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    model = "sandbox:anthropic/claude-haiku-4-5"
    first = client.messages.create(model=model, max_tokens=100, messages=ASK, tools=[CLIENT_TOOL])
    assert first.stop_reason == "tool_use" and [b.type for b in first.content] == ["tool_use"]
    call = first.content[0]
    assert call.name == "get_weather" and call.input == {"city": "simulated", "unit": "c"}
    with client.messages.stream(model=model, max_tokens=100, messages=ASK, tools=[CLIENT_TOOL]) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use" and streamed.content[0].input == call.input  # type: ignore[union-attr]
    conversation: list[Any] = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}]},
    ]
    second = client.messages.create(model=model, max_tokens=100, messages=conversation, tools=[CLIENT_TOOL])
    assert second.stop_reason == "end_turn" and second.content[0].text  # type: ignore[union-attr]
    alone = client.messages.count_tokens(model=model, messages=ASK).input_tokens
    assert client.messages.count_tokens(model=model, messages=ASK, tools=[CLIENT_TOOL]).input_tokens > alone


# ---- the Responses API (what OpenAI's Agents SDK calls by default) ------------------------------------------------
FUNCTION_TOOL = {"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}


def test_responses_function_tools_reach_the_upstream_as_chat_tools(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
    ]
    answer = client.responses.create(
        model="gpt-4o-mini", input=history, tools=[FUNCTION_TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    sent = json.loads(world.upstream.requests[-1].body)
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": FUNCTION_TOOL["parameters"]}}
    ]
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("auto", False)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
    ]
    assert answer.output_text == "Hello from the loopback." and answer.tools[0].name == "get_weather"
    assert world.balance(user) < 10_000


def test_a_responses_tool_loop_plain_and_streamed(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    first = client.responses.create(model=SANDBOX, input="Weather in Paris?", tools=[FUNCTION_TOOL])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments)["city"]
    with client.responses.stream(model=SANDBOX, input="Weather in Paris?", tools=[FUNCTION_TOOL]) as stream:
        streamed = stream.get_final_response()
    assert [o.type for o in streamed.output] == ["function_call"] and streamed.output[0].arguments == call.arguments  # type: ignore[union-attr]
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "21 C"},
    ]
    second = client.responses.create(model=SANDBOX, input=history, tools=[FUNCTION_TOOL])
    assert second.status == "completed" and second.output_text and second.output[0].type == "message"
