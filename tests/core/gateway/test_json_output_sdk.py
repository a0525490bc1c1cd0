"""JSON output through the gateway with the official `openai` SDK: `response_format` passed to the upstream as sent,
`chat.completions.parse(response_format=Model)` answered and parsed (the sandbox answers a value of the schema),
refused with a 400 naming the field for Anthropic's models, before any credit is held or any upstream called."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.core.gateway.conftest import GatewayWorld

ASK = [{"role": "user", "content": "Solve 8x + 7 = -23 and answer in JSON."}]


class Step(BaseModel):
    explanation: str
    output: str


class MathReasoning(BaseModel):
    steps: list[Step]
    final_answer: str


def test_json_object_is_passed_to_the_upstream_and_billed_as_any_call(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, response_format={"type": "json_object"}
    )
    assert json.loads(world.upstream.requests[-1].body)["response_format"] == {"type": "json_object"}
    assert raw.headers["x-credits-charged"] == "2" and world.balance(user) == 10_000 - 2


def test_the_sdk_parse_helper_sends_the_schema_and_gets_a_parsed_answer(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.parse(  # the loopback answers text: not parsed here
        model="gpt-4o-mini", messages=ASK, response_format=MathReasoning, max_tokens=50
    )
    assert raw.status_code == 200
    sent = json.loads(world.upstream.requests[-1].body)["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "MathReasoning"
    assert sent["json_schema"]["strict"] is True and set(sent["json_schema"]["schema"]["properties"]) == {
        "steps",
        "final_answer",
    }
    parsed = (
        client.chat.completions.parse(model="sandbox:openai/gpt-4o", messages=ASK, response_format=MathReasoning)
        .choices[0]
        .message.parsed
    )
    assert isinstance(parsed, MathReasoning) and parsed.steps and isinstance(parsed.steps[0], Step)


def test_a_claude_model_is_refused_json_output_before_anything_is_held(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="claude-haiku-4-5", messages=ASK, max_tokens=50, response_format={"type": "json_object"}
        )
    assert "cannot be asked for JSON output" in refused.value.message
    with pytest.raises(openai.BadRequestError) as malformed:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, response_format={"type": "json_schema"})
    assert malformed.value.body["code"] == "invalid_request" and "json_schema" in malformed.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


def test_the_responses_api_takes_text_format_and_echoes_it(world: GatewayWorld) -> None:
    """`text.format` of the Responses API (name, schema, strict beside the type) reaches the upstream as chat's
    `response_format`; the answer states the format asked; `responses.parse(text_format=Model)` parses it."""
    user = world.user()
    client = world.openai(world.key(user))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "name": "city", "schema": schema, "strict": True}
    answer = client.responses.create(model="gpt-4o-mini", input="A city?", text={"format": fmt})
    sent = json.loads(world.upstream.requests[-1].body)["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}
    assert answer.text.format.type == "json_schema" and answer.text.format.name == "city"
    parsed = client.responses.parse(model="sandbox:openai/gpt-4o", input=ASK, text_format=MathReasoning)
    assert isinstance(parsed.output_parsed, MathReasoning)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="gpt-4o-mini", input="A city?", text={"format": {"type": "json_schema"}})
    assert bad.value.param == "text" and "`text.format.name` must be 1 to 64 letters" in bad.value.message
