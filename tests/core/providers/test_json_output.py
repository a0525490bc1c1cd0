"""JSON output (`response_format`): checked once, passed as is to the OpenAI-compatible upstreams, refused before any
call for Anthropic's models, answered in JSON by the sandbox, and part of a request's fingerprint."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.providers import GenerationRequest
from core.providers.anthropic import AnthropicProvider
from core.providers.fingerprint import request_fingerprint
from core.providers.huggingface_endpoint import HuggingFaceEndpointProvider
from core.providers.json_output import checked_response_format, example_of
from core.providers.openai import OpenAIProvider
from core.providers.sandbox import SandboxProvider
from core.providers.together_ai import TogetherAIProvider
from tests.core.providers.fakes import json_response, make, model, sse_response
from tests.core.providers.test_anthropic import SONNET
from tests.core.providers.test_openai import GPT

# OpenAI's structured-output example (platform.openai.com/docs/guides/structured-outputs: "math_reasoning")
MATH = {
    "type": "json_schema",
    "json_schema": {
        "name": "math_reasoning",
        "schema": {
            "type": "object",
            "properties": {
                "steps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
                        "required": ["explanation", "output"],
                        "additionalProperties": False,
                    },
                },
                "final_answer": {"type": "string"},
            },
            "required": ["steps", "final_answer"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ANSWER = '{"steps":[{"explanation":"Subtract 7","output":"8x = -30"}],"final_answer":"x = -3.75"}'


def _chat(fmt: Any, **fields: Any) -> GenerationRequest:
    return GenerationRequest(category="chat", text="Solve 8x + 7 = -23", response_format=fmt, **fields)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({}, None),
        ({"type": "json_object"}, {"type": "json_object"}),
        (MATH, MATH),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "strict": None}},
            {"type": "json_schema", "json_schema": {"name": "x"}},
        ),
    ],
)
def test_the_formats_kept(given: Any, kept: Any) -> None:
    assert checked_response_format(given) == kept


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("json", "must be an object"),
        ({"type": "xml"}, "'xml' is not supported"),
        ({"type": "json_schema"}, "needs a `json_schema` object"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "name"),
        ({"type": "json_schema", "json_schema": {"name": "has space"}}, "name"),
        ({"type": "json_schema", "json_schema": {"name": "x" * 65}}, "name"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": "object"}}, "JSON Schema object"),
        ({"type": "json_schema", "json_schema": {"name": "x", "strict": "yes"}}, "true or false"),
    ],
)
def test_a_malformed_format_is_refused_with_what_is_wrong(given: Any, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        _chat(given)


def test_json_output_is_for_chat_only() -> None:
    with pytest.raises(InvalidInputError, match="chat calls only"):
        GenerationRequest(category="tts", text="hi", response_format={"type": "json_object"})


@pytest.mark.parametrize("cls", [OpenAIProvider, TogetherAIProvider])
def test_openai_compatible_upstreams_get_the_format_as_is_and_the_answer_comes_back(cls: type) -> None:
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 30, "total_tokens": 90},
    }
    p, up, _ = make(cls, [json_response(200, reply)])
    target = (
        GPT if cls is OpenAIProvider else model(cls.name, "meta-llama/Llama-3.3-70B-Instruct-Turbo", "chat", "token")
    )
    out = p.generate(target, _chat(MATH))
    assert up.body()["response_format"] == MATH and json.loads(out.text or "")["final_answer"] == "x = -3.75"


def test_a_streamed_json_answer_arrives_whole() -> None:
    deltas = ['{"steps":[],', '"final_answer":"x = -3.75"}']
    events = [(None, {"choices": [{"index": 0, "delta": {"content": d}}]}) for d in deltas]
    usage = {"choices": [], "usage": {"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72}}
    p, up, _ = make(OpenAIProvider, [sse_response([*events, (None, usage), (None, "[DONE]")])])
    stream = p.stream(GPT, _chat({"type": "json_object"}, stream=True))
    assert json.loads("".join(stream)) == {"steps": [], "final_answer": "x = -3.75"}
    assert up.body()["response_format"] == {"type": "json_object"} and up.body()["stream"] is True


def test_without_a_format_nothing_is_sent() -> None:
    p, up, _ = make(OpenAIProvider, [json_response(200, {"choices": [{"message": {"content": "hi"}}]})])
    p.generate(GPT, _chat({"type": "text"}))
    assert "response_format" not in up.body()


def test_anthropic_models_are_refused_before_any_call() -> None:
    p, up, _ = make(AnthropicProvider, [])
    with pytest.raises(InvalidInputError, match=r"cannot be asked for JSON output .*'json_object'"):
        p.validate(SONNET, _chat({"type": "json_object"}))
    assert up.requests == []


def test_a_raw_task_on_an_endpoint_cannot_be_asked_for_json() -> None:
    p, _, _ = make(HuggingFaceEndpointProvider, [])
    llama = model(
        "huggingface_endpoint",
        "meta-llama/Llama-3.1-8B-Instruct",
        "chat",
        "token",
        deployment_type="dedicated",
        hf_endpoint_url="https://x.endpoints.huggingface.cloud",
        input_per_1m_usd=Decimal("0"),
        output_per_1m_usd=Decimal("0"),
    )
    with pytest.raises(InvalidInputError, match="JSON output"):
        p.validate(llama, _chat({"type": "json_object"}, task="text-generation"))
    p.validate(llama, _chat({"type": "json_object"}))  # its chat route passes it to TGI


def test_the_sandbox_answers_json_and_refuses_for_an_anthropic_mirror() -> None:
    sb = SandboxProvider(client=None)
    gpt = model("sandbox", "sandbox:openai/gpt-4o", "chat", "token", mirrors="openai/gpt-4o")
    obj = json.loads(sb.generate(gpt, _chat({"type": "json_object"})).text or "")
    assert obj["simulated"] is True and "sandbox" in obj["reply"]
    shaped = json.loads(sb.generate(gpt, _chat(MATH)).text or "")
    assert shaped == {"steps": [{"explanation": "simulated", "output": "simulated"}], "final_answer": "simulated"}
    streamed = sb.stream(gpt, _chat(MATH, stream=True))
    assert json.loads("".join(streamed)) == shaped
    claude = model(
        "sandbox", "sandbox:anthropic/claude-haiku-4-5", "chat", "token", mirrors="anthropic/claude-haiku-4-5"
    )
    with pytest.raises(InvalidInputError, match="JSON output"):
        sb.validate(claude, _chat({"type": "json_object"}))


def test_example_values_follow_references_enums_unions_and_bounds() -> None:
    schema = {  # as pydantic writes it for the openai SDK's `parse(response_format=Model)`
        "$defs": {"Step": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}},
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 2},
            "mood": {"enum": ["calm", "busy"]},
            "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "note": {"type": ["string", "null"]},
            "ok": {"type": "boolean"},
            "kind": {"const": "math"},
        },
    }
    assert example_of(schema, "s") == {
        "steps": [{"n": 1}, {"n": 1}],
        "mood": "calm",
        "score": 0,
        "note": "s",
        "ok": False,
        "kind": "math",
    }
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
    nested = example_of({"$defs": {"Node": node}, "$ref": "#/$defs/Node"}, "s")  # a schema that refers to itself
    depth = 0
    while isinstance(nested, dict):  # ends, rather than recursing forever
        nested, depth = nested["next"], depth + 1
    assert nested == "s" and depth > 5


def test_the_format_is_part_of_the_fingerprint() -> None:
    plain, json_object, math = (request_fingerprint(GPT, _chat(f)) for f in (None, {"type": "json_object"}, MATH))
    assert len({plain, json_object, math}) == 3
    assert request_fingerprint(GPT, _chat({"type": "text"})) == plain  # text is the default, not another answer


def test_the_hold_counts_the_schema_as_prompt() -> None:
    """The schema reaches the model as prompt tokens: the hold's bound covers it, so it stays an upper bound."""
    from core.providers.estimate import max_input_tokens

    assert max_input_tokens(_chat(MATH)) >= max_input_tokens(_chat(None)) + len(json.dumps(MATH["json_schema"]))
