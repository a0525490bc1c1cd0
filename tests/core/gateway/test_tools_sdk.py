"""Tool calling through the gateway with the official `openai` SDK: tools reach the upstream as sent (in Anthropic's
shapes for a Claude model) and the call is billed as any; a whole tool loop (call, the caller runs the tool, sends its
result, gets the answer) against the sandbox, plain and streamed (the SDK's stream helper); an Idempotency-Key
replays the same calls; malformed tools are a 400 before any hold or upstream call."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.core.gateway.conftest import GatewayWorld
from tests.support.loopback import TOOL_CALLS_STREAMED

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


# ---- streamed answers from real upstreams: the text as it comes, the calls put together, then whole -----------------
STREAMED_CALLS = [(i, n, a) for i, n, a in TOOL_CALLS_STREAMED]
SF = {"location": "San Francisco, CA", "unit": "fahrenheit"}


def test_a_streamed_openai_tool_answer_is_streamed_upstream_and_its_calls_come_whole(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    with client.chat.completions.stream(model="gpt-4o-mini", messages=ASK, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert json.loads(world.upstream.requests[-1].body)["stream"] is True  # streamed, not made whole first
    choice = final.choices[0]
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == STREAMED_CALLS and choice.finish_reason == "tool_calls"
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.prompt_tokens == 149 and chunks[-1].usage.completion_tokens == 60
    charged = chunks[-1].model_extra["credits"]["charged"]
    assert charged > 0 and world.balance(user) == 10_000 - 2 * charged


def test_the_text_and_the_call_reach_the_client_while_the_upstream_still_streams(world: GatewayWorld) -> None:
    key = world.key(world.user())
    world.upstream.slow_stream_words, world.upstream.word_delay = 4, 0.25  # ~2 s from the first word to the end
    try:
        body = {"model": "gpt-4o-mini", "messages": ASK, "tools": TOOLS, "stream": True}
        done_before = world.upstream.streams_done
        events: list[dict[str, Any]] = []
        seen_while_streaming: dict[str, bool] = {}
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream("POST", f"{world.url}/v1/chat/completions", json=body, headers=headers, timeout=30) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                events.append(json.loads(line.removeprefix("data: ")))
                delta = events[-1]["choices"][0]["delta"] if events[-1]["choices"] else {}
                for kind in ("content", "tool_calls"):
                    if delta.get(kind):
                        seen_while_streaming.setdefault(kind, world.upstream.streams_done == done_before)
    finally:
        world.upstream.slow_stream_words = 0
    # neither the text nor the call's first piece was held back until the answer was whole
    assert seen_while_streaming == {"content": True, "tool_calls": True}
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "word0 word1 word2 word3 "
    pieces = [d["tool_calls"] for d in deltas if d.get("tool_calls")]
    assert pieces == [
        [
            {
                "index": 0,
                "id": "call_slow",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": '},
            }
        ],
        [{"index": 0, "function": {"arguments": '"Paris"}'}}],
    ]
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_streamed_claude_tool_answer_through_messages_keeps_its_blocks(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=ASK, tools=[CLIENT_TOOL]) as stream:
        said = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert json.loads(world.upstream.requests[-1].body)["stream"] is True
    assert said == "Okay, let's check the weather for San Francisco, CA:"
    assert [b.type for b in final.content] == ["text", "tool_use"] and final.stop_reason == "tool_use"
    tool = final.content[1]
    assert (tool.id, tool.name, tool.input) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", SF)  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (472, 89) and world.balance(user) < 10_000


def test_a_streamed_claude_tool_answer_through_chat_completions_is_openais_calls(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    with client.chat.completions.stream(model="claude-haiku-4-5", messages=ASK, tools=TOOLS, max_tokens=200) as s:
        final = s.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Okay, let's check the weather for San Francisco, CA:"
    [call] = message.tool_calls or []
    assert call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and json.loads(call.function.arguments) == SF
    assert final.choices[0].finish_reason == "tool_calls"


def test_a_streamed_responses_tool_answer_gives_its_items_in_order(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    with client.responses.stream(model="gpt-4o-mini", input="Weather in Edinburgh?", tools=[FUNCTION_TOOL]) as s:
        only_calls = s.get_final_response()
    assert [(o.type, o.call_id, o.name, o.arguments) for o in only_calls.output] == [  # type: ignore[union-attr]
        ("function_call", *c) for c in STREAMED_CALLS
    ]
    with client.responses.stream(model="claude-haiku-4-5", input="Weather in SF?", tools=[FUNCTION_TOOL]) as s:
        texts = [e.delta for e in s if e.type == "response.output_text.delta"]
        both = s.get_final_response()
    assert "".join(texts) == both.output_text == "Okay, let's check the weather for San Francisco, CA:"
    assert [o.type for o in both.output] == ["message", "function_call"]
    assert json.loads(both.output[1].arguments) == SF  # type: ignore[union-attr]


def _events(world: GatewayWorld, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{world.url}{path}", json=body, headers=headers, timeout=30) as r:
        return [json.loads(line.removeprefix("data: ")) for line in r.iter_lines() if line.startswith("data: {")]


def test_messages_stream_each_block_as_claude_makes_it_and_a_calls_input_in_pieces(world: GatewayWorld) -> None:
    key = world.key(world.user())
    body = {"model": "claude-haiku-4-5", "max_tokens": 200, "messages": ASK, "tools": [CLIENT_TOOL], "stream": True}
    events = _events(world, "/v1/messages", body, {"x-api-key": key, "anthropic-version": "2023-06-01"})
    kinds = [(e["type"], e.get("index")) for e in events if e["type"].startswith("content_block")]
    assert kinds[0] == ("content_block_start", 0) and kinds[-1] == ("content_block_stop", 1)
    assert kinds.index(("content_block_stop", 0)) + 1 == kinds.index(("content_block_start", 1))
    pieces = [e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert len(pieces) == 8 and json.loads("".join(pieces)) == SF  # as Claude sent them, the empty first one aside
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]


def test_responses_stream_a_calls_arguments_in_pieces(world: GatewayWorld) -> None:
    key = world.key(world.user())
    body = {"model": "gpt-4o-mini", "input": "Weather in Edinburgh?", "tools": [FUNCTION_TOOL], "stream": True}
    events = _events(world, "/v1/responses", body, {"Authorization": f"Bearer {key}"})
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert added == [0, 1] and len(deltas) == 11 + 9  # each call's item, then each piece of its arguments
    assert [d["arguments"] for d in done] == [a for _i, _n, a in STREAMED_CALLS]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed" and len(events[-1]["response"]["output"]) == 2
