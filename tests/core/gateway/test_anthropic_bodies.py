"""Messages API bodies as real apps send them, through the official `anthropic` SDK: system as a string and as text
blocks, content blocks, stop_sequences (and the stop_reason they end with), metadata, temperature, an anthropic-beta
header, and the streaming helper whose final message's usage is what was billed. What cannot be honoured (tools,
extended thinking, images) is the SDK's BadRequestError naming the field, before any upstream call or charge."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from core.access import SYSTEM
from tests.core.gateway.conftest import GatewayWorld

ASK = [{"role": "user", "content": "Say hello."}]
MODEL = "claude-haiku-4-5"


def sent(world: GatewayWorld) -> dict[str, Any]:
    return json.loads(world.upstream.requests[-1].body)


def last_charge(world: GatewayWorld, user: Any) -> int:
    """The credits the user's last usage debit took, from the ledger."""
    usage = [t for t in world.services.ledger.history(SYSTEM, user.id).transactions if t.transaction_type == "usage"]
    return -usage[-1].amount


def test_system_blocks_content_blocks_metadata_temperature_and_a_beta_header(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.", "cache_control": None}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hello."}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again."},
        ],
        metadata={"user_id": "end-user-7"},
        extra_body={"temperature": 0, "top_p": 0.9},  # the SDK's create() no longer names them; apps still send them
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    message = raw.parse()
    assert message.content[0].text == "Hello from the Anthropic loopback." and message.stop_reason == "end_turn"
    assert message._request_id == raw.headers["x-request-id"] and message._request_id.startswith("req_")
    charged = int(raw.headers["x-credits-charged"])
    assert charged == last_charge(world, user) and world.balance(user) == 10_000 - charged
    assert int(raw.headers["x-credits-remaining"]) == world.balance(user)
    body = sent(world)
    assert body["system"] == "Be brief.\nBe kind." and body["temperature"] == 0 and body["max_tokens"] == 64
    assert body["top_p"] == 0.9
    assert body["messages"][0] == {"role": "user", "content": "Say\nhello."}


def test_stop_sequences_reach_the_upstream_and_end_the_message(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    message = client.messages.create(model=MODEL, max_tokens=64, messages=ASK, stop_sequences=["\n\nHuman:", "END"])
    assert sent(world)["stop_sequences"] == ["\n\nHuman:", "END"]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "\n\nHuman:")
    with client.messages.stream(model=MODEL, max_tokens=64, messages=ASK, stop_sequences=["END"]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert sent(world)["stop_sequences"] == ["END"]


def test_the_stream_helpers_final_message_is_what_was_billed(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    kinds: list[str] = []
    with client.messages.stream(model=MODEL, max_tokens=100, system="Be brief.", messages=ASK) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.index("content_block_start") < kinds.index("text") < kinds.index("content_block_stop")
    assert kinds.index("content_block_stop") < kinds.index("message_delta")
    assert final.content[0].text == "Hello from the Anthropic loopback." and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 9)
    # The event that closes the stream carries the charge; it is the ledger's.
    assert world.balance(user) == 10_000 - last_charge(world, user)


def test_request_ids_are_where_the_sdk_reads_them(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    message = client.messages.create(model=MODEL, max_tokens=10, messages=ASK)
    assert message._request_id and message._request_id.startswith("req_")
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="claude-17", max_tokens=10, messages=ASK)
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert "claude-17" in err.value.message


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("tools", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),  # client tools: test_tools_sdk.py
    ("tools", {"tools": [{"name": "w", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]}),
    ("thinking", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}),
    ("output_config", {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    ("output_config", {"output_config": {"effort": "high"}}),
    ("mcp_servers", {"extra_body": {"mcp_servers": [{"type": "url", "url": "https://x.example", "name": "x"}]}}),
    ("container", {"container": "container_1"}),
    ("top_k", {"extra_body": {"top_k": 5}}),  # it changes the answer and is not passed on
    (
        "messages",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {  # images are honoured (test_images_sdk.py); documents are not
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        },
                        {"type": "text", "text": "What is this?"},
                    ],
                }
            ]
        },
    ),
    (
        "messages",
        {
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "t1",
                            "name": "w",
                            "input": {},
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                },
            ]
        },
    ),
]


@pytest.mark.parametrize(("field", "body"), REFUSED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REFUSED)])
def test_what_cannot_be_honoured_is_a_clear_400(world: GatewayWorld, field: str, body: dict[str, Any]) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    calls = world.upstream_calls()
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(**{"model": MODEL, "max_tokens": 30, "messages": ASK, **body})
    assert err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert err.value.request_id and err.value.request_id == err.value.body["request_id"]  # type: ignore[index]
    message = err.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith(f"Invalid request: {field}") and "not supported" in message, message
    assert ".." not in message and "Input should" not in message, message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


def test_one_model_is_retrieved_as_each_sdk_expects(world: GatewayWorld) -> None:
    import openai

    user = world.user()
    key = world.key(user, models=["claude-haiku-4-5", "sandbox-chat"])
    claude = world.anthropic(key).models.retrieve("claude-haiku-4-5")
    assert (claude.id, claude.type) == ("claude-haiku-4-5", "model") and claude.display_name
    assert world.openai(key).models.retrieve("claude-haiku-4-5").owned_by == "anthropic"
    with pytest.raises(anthropic.NotFoundError) as err:
        world.anthropic(key).models.retrieve("gpt-4o-mini")  # in the catalog, not allowed to this key
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert err.value.request_id and err.value.request_id.startswith("req_")
    with pytest.raises(openai.NotFoundError) as missing:
        world.openai(key).models.retrieve("gpt-17")
    assert missing.value.code == "model_not_found" and "gpt-17" in missing.value.message


def test_cache_control_breakpoints_reach_anthropic(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    ephemeral = {"type": "ephemeral"}
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=20,
        system=[{"type": "text", "text": "A long manual.", "cache_control": ephemeral}, {"type": "text", "text": "Hi"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Chapter one.", "cache_control": ephemeral}]},
            {"role": "assistant", "content": "Read."},
            {"role": "user", "content": "Summarise."},
        ],
    )
    body = sent(world)
    assert body["system"] == [
        {"type": "text", "text": "A long manual.", "cache_control": ephemeral},
        {"type": "text", "text": "Hi"},
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Chapter one.", "cache_control": ephemeral}]},
        {"role": "assistant", "content": "Read."},
        {"role": "user", "content": "Summarise."},
    ]
    charged = int(raw.headers["x-credits-charged"])
    assert raw.parse().usage.input_tokens == 20 and charged == last_charge(world, user)
    assert world.balance(user) == 10_000 - charged


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": []}], "Invalid request: messages.0: `content` must hold at least one block"),
        (
            [{"role": "user", "content": ""}, {"role": "assistant", "content": "Hi"}],
            "Invalid request: messages: message 0 is empty: only the final assistant message may be",
        ),
        (
            [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "42"}]}],
            "Invalid request: messages: message 0 holds a `tool_result` for 'nope', which no earlier assistant",
        ),
    ],
)
def test_what_anthropic_refuses_in_messages_is_refused_before_the_hold(
    world: GatewayWorld, messages: list[dict[str, Any]], expected: str
) -> None:
    user = world.user()
    calls = world.upstream_calls()
    with pytest.raises(anthropic.BadRequestError) as err:
        world.anthropic(world.key(user)).messages.create(model=MODEL, max_tokens=30, messages=messages)  # type: ignore[arg-type]
    message = err.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith(expected), message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000
