"""The official `openai` SDK's Responses API (`client.responses.create` and `.stream`) against the running gateway:
text answers with their usage, billed exactly as the same chat completion, streamed in the event order the SDK's
stream helper checks, a Claude model through it, and refusals (unsupported fields, no credits, a bad key) that hold
and bill nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from core.access import SYSTEM
from tests.core.gateway.conftest import GatewayWorld

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


@pytest.fixture
def finish(world: GatewayWorld) -> Iterator[None]:
    yield
    world.upstream.finish_reason = "stop"


def test_a_response_is_answered_and_billed_as_the_same_chat_completion(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    chat = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=300)
    chat_sent = json.loads(world.upstream.requests[-1].body)
    after_chat = world.balance(user)
    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini",
        instructions="Be brief.",
        input="Say hello.",
        max_output_tokens=300,
        metadata={"ticket": "T-1"},
        store=True,
    )
    response = raw.parse()
    assert json.loads(world.upstream.requests[-1].body) == chat_sent  # the very same upstream call
    assert response.output_text == "Hello from the loopback."
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.incomplete_details is None and response.metadata == {"ticket": "T-1"} and response.store is False
    assert response.completed_at is not None and response.completed_at >= response.created_at
    # the defaults echoed as OpenAI echoes them
    assert (response.tool_choice, response.parallel_tool_calls, response.temperature, response.top_p) == (
        "auto",
        True,
        1.0,
        1.0,
    )
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.content[0].annotations == []
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1200, 300, 1500)
    assert usage.input_tokens_details.cached_tokens == 1024 and usage.output_tokens_details.reasoning_tokens == 0
    charged = int(raw.headers["x-credits-charged"])
    assert charged == int(chat.headers["x-credits-charged"]) and charged > 0
    assert raw.headers["x-request-id"] == "req_" + response.id.removeprefix("resp_")
    assert int(raw.headers["x-credits-remaining"]) == world.balance(user) == after_chat - charged
    assert world.services.ledger.check(SYSTEM) == []


def test_input_messages_with_text_parts_reach_the_model_in_order(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    client.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "Say hello."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
            {"role": "user", "content": "Again."},
        ],
        temperature=0,
        top_p=0.5,
    )
    sent = json.loads(world.upstream.requests[-1].body)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again."},
    ]
    assert sent["temperature"] == 0 and sent["top_p"] == 0.5


def test_an_answer_cut_at_max_output_tokens_is_incomplete(world: GatewayWorld, finish: None) -> None:
    world.upstream.finish_reason = "length"
    client = world.openai(world.key(world.user()))
    response = client.responses.create(model="gpt-4o-mini", input="Say hello.", max_output_tokens=300)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.completed_at is None  # only a completed response has it
    assert response.max_output_tokens == 300 and response.output_text == "Hello from the loopback."
    with client.responses.stream(model="gpt-4o-mini", input="Say hello.", max_output_tokens=50) as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output[0].content[0].text == "Hello from the loopback."


def test_a_streamed_response_gives_the_final_response_and_its_charge(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    with client.responses.stream(model="gpt-4o-mini", instructions="Be brief.", input="Say hello.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].response.completed_at is None and final.completed_at is not None
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.snapshot for e in events if e.type == "response.output_text.delta"][-1] == "Hello from the loopback."
    assert final.output_text == "Hello from the loopback." and final.status == "completed"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 4)
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    sent = json.loads(world.upstream.requests[-1].body)
    assert sent["stream"] is True and sent["messages"] == MESSAGES
    charged_first = 10_000 - world.balance(user)
    raw = list(client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Say hello.", stream=True))
    assert raw[-1].type == "response.completed" and raw[-1].response.output_text == "Hello from the loopback."
    credits = raw[-1].model_extra["credits"]  # the charge, which the headers could not carry
    assert credits["charged"] == charged_first > 0 and credits["remaining"] == world.balance(user)
    assert world.balance(user) == 10_000 - 2 * charged_first


def test_a_claude_model_answers_through_responses(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    response = client.responses.create(
        model="claude-haiku-4-5", instructions="Be brief.", input="Say hello.", max_output_tokens=100
    )
    assert response.output_text == "Hello from the Anthropic loopback."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 9)
    sent = world.upstream.requests[-1]
    body = json.loads(sent.body)
    assert sent.path == "/v1/messages" and body["system"] == "Be brief." and body["max_tokens"] == 100
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    with client.responses.stream(model="claude-haiku-4-5", input="Say hello.") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the Anthropic loopback." and final.usage.output_tokens == 9
    assert world.balance(user) < 10_000 and world.services.ledger.check(SYSTEM) == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools"),  # function tools are honoured: test_tools_sdk.py
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"text": {"format": {"type": "xml"}}}, "text"),  # JSON output is honoured (test_json_output_sdk.py)
        ({"text": {"verbosity": "low"}}, "text"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"background": True}, "background"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-123"}]}]},  # URLs: ok
            "input",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
        ({"max_tool_calls": 2}, "max_tool_calls"),
    ],
)
def test_unsupported_fields_are_refused_naming_them_and_nothing_is_held(
    world: GatewayWorld, fields: dict[str, object], param: str
) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    body = {"model": "gpt-4o-mini", "input": "Say hello.", **fields}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(**body)  # type: ignore[call-overload]
    assert err.value.param == param and "not supported" in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000
    assert world.services.ledger.balance(SYSTEM, user.id).held == 0


def test_not_enough_credits_is_402_and_a_bad_key_401(world: GatewayWorld) -> None:
    user = world.user(credits=1)
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    with pytest.raises(openai.APIStatusError) as err:
        client.responses.create(model="gpt-4o-mini", input="Say hello.", max_output_tokens=300)
    assert err.value.status_code == 402 and err.value.code == "insufficient_quota"
    with pytest.raises(openai.APIStatusError) as streamed:
        client.responses.create(model="gpt-4o-mini", input="Say hello.", max_output_tokens=300, stream=True)
    assert streamed.value.status_code == 402
    assert world.upstream_calls() == calls and world.balance(user) == 1
    with pytest.raises(openai.AuthenticationError) as bad:
        world.openai("sk-ac-nope").responses.create(model="gpt-4o-mini", input="Say hello.")
    assert bad.value.code == "invalid_api_key"


def test_a_fault_after_the_start_is_the_error_event(world: GatewayWorld) -> None:
    user = world.user()
    key = world.key(user)
    world.upstream.empty_stream = True  # the stream opens, then ends without a word: the engine's error
    try:
        with httpx.stream(
            "POST",
            f"{world.url}/v1/responses",
            json={"model": "gpt-4o-mini", "input": "Say hello.", "stream": True},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ) as response:
            lines = [line for line in response.iter_lines() if line.startswith(("data: ", "event: "))]
    finally:
        world.upstream.empty_stream = False
    assert response.status_code == 200
    assert lines[-2] == "event: error"
    error = json.loads(lines[-1].removeprefix("data: "))
    assert error["type"] == "error" and error["code"] == "upstream_error" and error["message"]
    assert error["sequence_number"] == 2  # after created and in_progress (no text came to open the message item)
    assert world.balance(user) == 10_000 and world.services.ledger.balance(SYSTEM, user.id).held == 0


def test_the_same_idempotency_key_replays_the_first_response_charged_once(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    ask = {"model": "gpt-4o-mini", "input": "Say hello.", "max_output_tokens": 300}
    headers = {"Idempotency-Key": "order-42"}
    first = client.responses.with_raw_response.create(**ask, extra_headers=headers)  # type: ignore[arg-type]
    calls = world.upstream_calls()
    again = client.responses.with_raw_response.create(**ask, extra_headers=headers)  # type: ignore[arg-type]
    assert again.headers["idempotent-replayed"] == "true" and world.upstream_calls() == calls
    assert again.parse().output_text == first.parse().output_text == "Hello from the loopback."
    assert again.parse().id == first.parse().id  # the first request's answer, id included
    assert again.headers["x-request-id"] != first.headers["x-request-id"]  # each HTTP request still has its own
    assert again.headers["x-credits-charged"] == first.headers["x-credits-charged"]
    assert world.balance(user) == 10_000 - int(first.headers["x-credits-charged"])
    with client.responses.stream(**ask, extra_headers={"Idempotency-Key": "order-43"}) as stream:  # type: ignore[arg-type]
        streamed = stream.get_final_response().id
    with client.responses.stream(**ask, extra_headers={"Idempotency-Key": "order-43"}) as stream:  # type: ignore[arg-type]
        assert stream.get_final_response().id == streamed != first.parse().id


def test_a_function_call_output_without_its_call_is_refused(world: GatewayWorld) -> None:
    user = world.user()
    calls = world.upstream_calls()
    orphan = [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call_output", "call_id": "call_nope", "output": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as err:
        world.openai(world.key(user)).responses.create(model="gpt-4o-mini", input=orphan)  # type: ignore[arg-type]
    assert err.value.param == "input" and "which no earlier `function_call` item made" in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000
