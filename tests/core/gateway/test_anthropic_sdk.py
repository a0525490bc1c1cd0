"""The official `anthropic` SDK against the running gateway: /v1/messages plain and streamed, billed like every call,
and errors as the SDK's own typed exceptions in Anthropic's envelope."""

from __future__ import annotations

import anthropic
import pytest

from tests.core.gateway.conftest import GatewayWorld

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
