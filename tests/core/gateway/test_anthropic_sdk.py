"""The official `anthropic` SDK against the running gateway: /v1/messages plain and streamed, billed like every call,
and errors as the SDK's own typed exceptions in Anthropic's envelope."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.core.gateway.conftest import GatewayWorld
from tests.support.loopback import MESSAGE

ASK = [{"role": "user", "content": "Say hello."}]


def test_messages_plain(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=100, messages=ASK, system="Hi")
    message = raw.parse()
    assert message.content[0].text == "Hello from the Anthropic loopback."
    assert (message.usage.input_tokens, message.usage.output_tokens, message.stop_reason) == (20, 9, "end_turn")
    assert (
        int(raw.headers["x-credits-remaining"]) == world.balance(user) == 10_000 - int(raw.headers["x-credits-charged"])
    )


def test_messages_streamed(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=ASK) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the Anthropic loopback." == final.content[0].text
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (20, 9, "end_turn")
    assert world.balance(user) < 10_000


def test_messages_serves_anthropic_models_only(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    with pytest.raises(anthropic.BadRequestError, match="/v1/chat/completions"):
        client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=ASK)


def test_errors_are_the_sdks_own(world: GatewayWorld) -> None:
    with pytest.raises(anthropic.AuthenticationError) as bad:
        world.anthropic("sk-ac-not-a-key").messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
    assert bad.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    user = world.user()
    narrow = world.anthropic(world.key(user, models=["claude-sonnet-4-5"]))
    with pytest.raises(anthropic.PermissionDeniedError):
        narrow.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
    limited = world.anthropic(world.key(user, rpm=1))
    limited.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
    with pytest.raises(anthropic.RateLimitError) as slow:
        limited.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
    assert int(slow.value.response.headers["retry-after"]) >= 1
    broke = world.anthropic(world.key(world.user(credits=0)))
    calls = world.upstream_calls()
    with pytest.raises(anthropic.APIStatusError) as poor:
        broke.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
    assert poor.value.status_code == 402 and poor.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert world.upstream_calls() == calls


def _streamed(client: anthropic.Anthropic, model: str) -> tuple[list[Any], anthropic.types.Message]:
    with client.messages.stream(model=model, max_tokens=100, messages=ASK) as stream:
        events = list(stream)
        return events, stream.get_final_message()


def test_message_start_carries_the_input_count_the_upstream_stated(world: GatewayWorld) -> None:
    """As Anthropic's own stream does: the real prompt count in message_start, the same in the final message, and
    the call billed as the same call made without streaming."""
    user = world.user()
    client = world.anthropic(world.key(user))
    events, final = _streamed(client, "claude-haiku-4-5")
    start = events[0]
    assert start.type == "message_start"
    stated = MESSAGE["usage"]["input_tokens"]
    assert start.message.usage.input_tokens == stated == final.usage.input_tokens
    streamed_cost = 10_000 - world.balance(user)
    other = world.user()
    world.anthropic(world.key(other)).messages.create(model="claude-haiku-4-5", max_tokens=100, messages=ASK)
    assert streamed_cost == 10_000 - world.balance(other) > 0


def test_an_unknown_input_count_is_not_guessed_in_message_start(world: GatewayWorld) -> None:
    """The sandbox states no count ahead of its text: message_start says 0, not an estimate, and the final message
    takes the billed count from message_delta."""
    events, final = _streamed(world.anthropic(world.key(world.user())), "sandbox-chat")
    (start,) = [e for e in events if e.type == "message_start"]
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert start.message.usage.input_tokens == 0
    assert delta.usage.input_tokens is not None and delta.usage.input_tokens > 0
    assert final.usage.input_tokens == delta.usage.input_tokens


def test_a_replayed_stream_states_the_billed_input_count_from_the_start(world: GatewayWorld) -> None:
    """A retry with the same Idempotency-Key replays the billed call: its count is known before the first event."""
    user = world.user()
    client = world.anthropic(world.key(user))
    ask = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": ASK, "extra_headers": {"Idempotency-Key": "r1"}}
    with client.messages.stream(**ask) as first:
        first.until_done()
    balance = world.balance(user)
    with client.messages.stream(**ask) as again:
        events = list(again)
        assert again.response.headers["idempotent-replayed"] == "true"  # as a plain replay says
    assert events[0].type == "message_start"
    assert events[0].message.id == first.get_final_message().id  # the first request's answer, id included
    assert client.messages.create(**ask).id == first.get_final_message().id
    assert events[0].message.usage.input_tokens == MESSAGE["usage"]["input_tokens"]
    assert world.balance(user) == balance  # not charged twice
