"""Tool calling: tools checked once, passed as is to the OpenAI-compatible upstreams with the conversation's calls and
results, the answer's calls read back; translated to and from Anthropic's shapes for Claude; the sandbox calls a
tool."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.providers import GenerationRequest
from core.providers.anthropic import AnthropicProvider
from core.providers.estimate import max_input_tokens
from core.providers.fingerprint import request_fingerprint
from core.providers.openai import OpenAIProvider
from core.providers.sandbox import SandboxProvider
from core.providers.together_ai import TogetherAIProvider
from core.providers.tools import StreamedCalls, ToolCallDelta
from tests.core.providers.fakes import breaking_response, json_response, make, model, sse_body, sse_response
from tests.core.providers.test_anthropic import SONNET
from tests.core.providers.test_openai import GPT
from tests.support.loopback import ANTHROPIC_TOOL_EVENTS, TOOL_CALLS_STREAMED, TOOL_STREAM_EVENTS

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
# OpenAI's API reference, "Create chat completion" with functions (platform.openai.com/docs/api-reference/chat/create)
CALLED = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1699896916,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
}
ASK = {"role": "user", "content": "What's the weather like in Boston today?"}


def _chat(**fields: Any) -> GenerationRequest:
    fields.setdefault("messages", [ASK])
    return GenerationRequest(category="chat", **fields)


@pytest.mark.parametrize("cls", [OpenAIProvider, TogetherAIProvider])
def test_tools_reach_the_upstream_as_sent_and_the_calls_come_back(cls: type) -> None:
    p, up, _ = make(cls, [json_response(200, CALLED)])
    target = (
        GPT if cls is OpenAIProvider else model(cls.name, "meta-llama/Llama-3.3-70B-Instruct-Turbo", "chat", "token")
    )
    out = p.generate(target, _chat(tools=[WEATHER], tool_choice="auto", parallel_tool_calls=False))
    sent = up.body()
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == ([WEATHER], "auto", False)
    assert out.text == "" and out.metadata["finish_reason"] == "tool_calls"
    [call] = out.tool_calls or ()
    assert call["id"] == "call_abc123" and json.loads(call["function"]["arguments"]) == {"location": "Boston, MA"}
    assert (out.usage.input_tokens, out.usage.output_tokens) == (82, 17)


def test_the_calls_and_their_results_are_sent_back_in_the_conversation() -> None:
    call = CALLED["choices"][0]["message"]["tool_calls"][0]  # type: ignore[index]
    conversation = [
        ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": '{"temperature": 22, "unit": "celsius"}'},
    ]
    reply = {"choices": [{"message": {"content": "It is 22 °C in Boston."}, "finish_reason": "stop"}]}
    p, up, _ = make(OpenAIProvider, [json_response(200, reply)])
    out = p.generate(GPT, _chat(messages=conversation, tools=[WEATHER]))
    assert up.body()["messages"] == conversation and out.text == "It is 22 °C in Boston." and out.tool_calls is None
    # the calls and the tools are prompt tokens: the hold's bound covers them
    plain = max_input_tokens(_chat(messages=[ASK, {"role": "tool", "tool_call_id": "c", "content": "x"}]))
    assert max_input_tokens(_chat(messages=conversation, tools=[WEATHER])) > plain + len(json.dumps(WEATHER))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"tools": [{"type": "retrieval"}]}, "function tools only"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "name"),
        ({"tools": [WEATHER, WEATHER]}, "twice"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "object"}}]}, "JSON Schema"),
        ({"tools": WEATHER}, "must be a list"),
        ({"tool_choice": "required"}, "needs `tools`"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "not among"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "must be"),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "true or false"),
    ],
)
def test_malformed_tools_are_refused_with_what_is_wrong(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        _chat(**fields)


def test_tools_are_for_chat_only() -> None:
    with pytest.raises(InvalidInputError, match="chat calls only"):
        GenerationRequest(category="tts", text="hi", tools=[WEATHER])


# Anthropic's docs, "Tool use" (docs.anthropic.com/en/docs/agents-and-tools/tool-use): a tool_use answer
TOOL_USE = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "content": [
        {"type": "text", "text": "I'll check the current weather in Boston for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_current_weather",
            "input": {"location": "Boston, MA", "unit": "celsius"},
        },
    ],
    "usage": {"input_tokens": 384, "output_tokens": 61},
}


def test_claude_gets_the_tools_in_its_own_shapes_and_its_calls_come_back_as_openai_names_them() -> None:
    p, up, _ = make(AnthropicProvider, [json_response(200, TOOL_USE)])
    out = p.generate(SONNET, _chat(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False))
    sent = up.body()
    params = WEATHER["function"]["parameters"]
    description = WEATHER["function"]["description"]
    assert sent["tools"] == [{"name": "get_current_weather", "input_schema": params, "description": description}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert (
        out.text == "I'll check the current weather in Boston for you." and out.metadata["finish_reason"] == "tool_use"
    )
    [call] = out.tool_calls or ()
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["function"]["name"] == "get_current_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Boston, MA", "unit": "celsius"}
    assert (out.usage.input_tokens, out.usage.output_tokens) == (384, 61)


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_current_weather"}},
            {"type": "tool", "name": "get_current_weather"},
        ),
        (None, None),
    ],
)
def test_each_tool_choice_in_anthropic_terms(choice: Any, sent: Any) -> None:
    p, up, _ = make(AnthropicProvider, [json_response(200, TOOL_USE)])
    p.generate(SONNET, _chat(tools=[WEATHER], tool_choice=choice))
    assert up.body().get("tool_choice") == sent


def test_a_conversations_calls_and_results_become_tool_use_and_tool_result_blocks() -> None:
    calls = [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": '{"location": "Boston"}'},
        },
        {
            "id": "toolu_2",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'},
        },
    ]
    conversation = [
        {"role": "system", "content": "Be brief."},
        ASK,
        {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "22 C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "18 C"}]},
    ]
    reply = {**TOOL_USE, "stop_reason": "end_turn", "content": [{"type": "text", "text": "22 and 18."}]}
    p, up, _ = make(AnthropicProvider, [json_response(200, reply)])
    out = p.generate(SONNET, _chat(messages=conversation, tools=[WEATHER]))
    assert up.body()["system"] == "Be brief." and up.body()["messages"] == [
        ASK,
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_current_weather", "input": {"location": "Boston"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_current_weather", "input": {"location": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22 C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "18 C"},
            ],
        },
    ]
    assert out.text == "22 and 18." and out.tool_calls is None


def test_arguments_that_are_not_a_json_object_are_refused_before_the_call() -> None:
    bad = [
        ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "get_current_weather", "arguments": "Boston"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t", "content": "22"},
    ]
    p, up, _ = make(AnthropicProvider, [])
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        p.validate(SONNET, _chat(messages=bad, tools=[WEATHER]))  # before any credit is held
    assert up.requests == []
    # the sandbox's Claude refuses it too (it answered, so code tried there failed on the real model)
    claude = model(
        "sandbox", "sandbox:anthropic/claude-sonnet-4-5", "chat", "token", mirrors="anthropic/claude-sonnet-4-5"
    )
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        SandboxProvider(client=None).validate(claude, _chat(messages=bad, tools=[WEATHER]))
    gpt = model("sandbox", "sandbox:openai/gpt-4o", "chat", "token", mirrors="openai/gpt-4o")
    SandboxProvider(client=None).validate(gpt, _chat(messages=bad, tools=[WEATHER]))  # OpenAI takes any string


def test_the_sandbox_calls_the_tool_then_answers_its_result() -> None:
    sb = SandboxProvider(client=None)
    gpt = model("sandbox", "sandbox:openai/gpt-4o", "chat", "token", mirrors="openai/gpt-4o")
    first = sb.generate(gpt, _chat(tools=[WEATHER]))
    [call] = first.tool_calls or ()
    assert call["function"]["name"] == "get_current_weather" and first.metadata["finish_reason"] == "tool_calls"
    assert json.loads(call["function"]["arguments"]) == {"location": "simulated", "unit": "celsius"}
    assert first.usage.output_tokens > 0 and call["id"].startswith("call_")
    answered = [ASK, {"role": "assistant", "content": None, "tool_calls": [call]}]
    answered.append({"role": "tool", "tool_call_id": call["id"], "content": "22"})
    second = sb.generate(gpt, _chat(messages=answered, tools=[WEATHER]))
    assert second.tool_calls is None and second.text
    assert sb.generate(gpt, _chat(tools=[WEATHER], tool_choice="none")).tool_calls is None
    streamed = sb.stream(gpt, _chat(tools=[WEATHER], stream=True))
    fn = call["function"]
    assert list(streamed) == [ToolCallDelta(0, fn["arguments"], id=call["id"], name=fn["name"])]  # the call, whole
    assert streamed.result.tool_calls == first.tool_calls


def test_tools_are_part_of_the_fingerprint() -> None:
    plain, offered = (request_fingerprint(GPT, _chat(tools=t)) for t in (None, [WEATHER]))
    forced = request_fingerprint(GPT, _chat(tools=[WEATHER], tool_choice="required"))
    assert len({plain, offered, forced}) == 3


# ---- streamed answers: the text as it comes, the calls put together from their pieces -----------------------------
def _rebuilt(deltas: list[Any]) -> list[tuple[str, str, str]]:
    """What a client puts together from the call deltas handed on: (id, name, arguments) per call."""
    calls: list[list[str]] = []
    for d in deltas:
        if d.name is not None:
            assert d.index == len(calls)  # each call's first piece, in order
            calls.append([d.id or "", d.name, ""])
        calls[d.index][2] += d.arguments
    return [(i, n, a) for i, n, a in calls]


def test_a_streamed_openai_answer_hands_its_parallel_calls_on_piece_by_piece() -> None:
    chunks = [(None, c) for c in TOOL_STREAM_EVENTS] + [(None, "[DONE]")]
    p, up, _ = make(OpenAIProvider, [sse_response(chunks)])
    stream = p.stream(GPT, _chat(tools=[WEATHER], stream=True))
    deltas = list(stream)
    assert all(isinstance(d, ToolCallDelta) for d in deltas)  # no text: the answer only calls functions
    assert len(deltas) == 2 + 11 + 9  # each call's first fragment, then each piece of its arguments, as they came
    assert _rebuilt(deltas) == TOOL_CALLS_STREAMED
    assert up.body()["tools"] == [WEATHER] and up.body()["stream"] is True  # streamed upstream, not made whole
    out = stream.result
    got = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in out.tool_calls or ()]
    assert got == TOOL_CALLS_STREAMED  # the result holds the same calls, whole
    assert out.metadata["finish_reason"] == "tool_calls"
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.estimated) == (149, 60, False)


def test_a_streamed_claude_answer_hands_on_its_text_then_its_tool_use_piece_by_piece() -> None:
    p, _up, _ = make(AnthropicProvider, [sse_response(ANTHROPIC_TOOL_EVENTS)])
    stream = p.stream(SONNET, _chat(tools=[WEATHER], stream=True))
    chunks = list(stream)
    text = [c for c in chunks if isinstance(c, str)]
    deltas = [c for c in chunks if isinstance(c, ToolCallDelta)]
    assert chunks == [*text, *deltas]  # the text block came first
    assert "".join(text) == "Okay, let's check the weather for San Francisco, CA:"
    [(call_id, name, arguments)] = _rebuilt(deltas)
    assert (call_id, name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather") and len(deltas) == 1 + 8
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    out = stream.result
    assert out.tool_calls == (
        {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            # as the whole answer gives it: its `input` as json.dumps writes it
            "function": {"name": "get_weather", "arguments": '{"location": "San Francisco, CA", "unit": "fahrenheit"}'},
        },
    )
    assert out.metadata["finish_reason"] == "tool_use"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (472, 89)


def test_a_stream_that_breaks_mid_call_bills_what_came_and_passes_the_cut_arguments_on() -> None:
    cut = [(None, c) for c in TOOL_STREAM_EVENTS[:6]]  # the first call's arguments stop at '{"city": "Edinburgh'
    p, _up, _ = make(OpenAIProvider, [breaking_response([sse_body(cut)])])
    stream = p.stream(GPT, _chat(tools=[WEATHER], stream=True))
    assert _rebuilt(list(stream)) == [("call_lQnnsesjFMWMQ5IeWPHzR4th", "GetWeatherArgs", '{"city": "Edinburgh')]
    out = stream.result
    [call] = out.tool_calls or ()
    assert call["function"]["arguments"] == '{"city": "Edinburgh'  # as the upstream sent it, not made up
    assert out.metadata["incomplete"] is True and out.usage.estimated and out.usage.output_tokens > 0


def test_a_calls_pieces_wait_for_its_name_and_an_empty_argument_list_is_an_empty_object() -> None:
    calls = StreamedCalls()
    assert calls.openai_delta([{"index": 1, "function": {"arguments": '{"x": '}}]) == []  # its name has not come
    assert calls.openai_delta([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "now"}}]) == [
        ToolCallDelta(0, "", id="call_1", name="now")
    ]
    assert calls.openai_delta("not a list") == []
    late = calls.openai_delta([{"index": 1, "id": "call_2", "function": {"name": "add", "arguments": "1}"}}])
    assert late == [ToolCallDelta(1, '{"x": 1}', id="call_2", name="add")]  # what waited, and this fragment's piece
    assert [c["function"]["arguments"] for c in calls.calls() or ()] == ["{}", '{"x": 1}']
    assert StreamedCalls().calls() is None


def test_the_holds_bound_covers_the_system_prompt_a_provider_adds_for_tool_use() -> None:
    tiny = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    bound = max_input_tokens(_chat(messages=[{"role": "user", "content": "Time?"}], tools=[tiny]))
    # Anthropic adds 346 tokens of its own for tool use (Claude 4 models, tool_choice auto), 530 at most (Claude 3
    # Opus): before, this request's bound was 209 tokens, under what Claude bills for it
    assert bound >= 530 + len(json.dumps(tiny)) + len("Time?")
    # Anthropic's streaming example: its one-line question and one tool were billed 472 input tokens
    sf = [{"role": "user", "content": "What is the weather like in San Francisco?"}]
    assert max_input_tokens(_chat(messages=sf, tools=[WEATHER])) >= 472
