"""`client.messages.count_tokens` of the official `anthropic` SDK against the running gateway: Anthropic's own count
for its models (forwarded to its /v1/messages/count_tokens), the engine's estimate for every other chat model; free
(no hold, no debit, no usage row) yet counted against the key's requests per minute; errors as the SDK's typed
exceptions."""

from __future__ import annotations

import json

import anthropic
import pytest
from sqlalchemy import func, select

from core.access import SYSTEM
from core.db.models import AIUsageLog, CreditHold
from core.providers.types import GenerationRequest
from core.users import UserView
from tests.core.gateway.conftest import FAKE_KEYS, GatewayWorld
from tests.support.loopback import TOKEN_COUNT

ASK = [{"role": "user", "content": "Say hello."}]


def _rows(world: GatewayWorld, user: UserView) -> tuple[int, int]:
    """The user's usage rows and credit holds."""
    with world.services.db.session() as s:
        usage = s.scalar(select(func.count()).select_from(AIUsageLog).where(AIUsageLog.user_id == user.id))
        holds = s.scalar(select(func.count()).select_from(CreditHold).where(CreditHold.user_id == user.id))
    return usage or 0, holds or 0


def test_an_anthropic_model_is_counted_by_anthropic(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    before = world.upstream_calls()
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5",
        messages=[*ASK, {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}],
        system="Be brief.",
    )
    assert raw.parse().input_tokens == TOKEN_COUNT["input_tokens"]
    assert raw.headers["request-id"].startswith("req_")
    assert world.upstream_calls() == before + 1
    sent = world.upstream.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messages/count_tokens")
    assert sent.headers["x-api-key"] == FAKE_KEYS["anthropic"].get()
    assert json.loads(sent.body) == {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello"}],
        "system": "Be brief.",
    }


def test_another_chat_model_is_estimated_without_an_upstream_call(world: GatewayWorld) -> None:
    """The engine's estimate: the bound its hold reserves for (one token per UTF-8 byte of the prompt, plus 8 per
    message and 64 per request), never below the real count."""
    client = world.anthropic(world.key(world.user()))
    before = world.upstream_calls()
    counted = client.messages.count_tokens(model="gpt-4o-mini", messages=ASK, system="Be brief.")
    assert counted.input_tokens == len(b"Be brief.\nSay hello.") + 2 * 8 + 64
    model = world.services.models.get(SYSTEM, "gpt-4o-mini")
    ask = GenerationRequest(category="chat", system="Be brief.", messages=tuple(ASK), max_tokens=1)
    held = world.services.flow.providers.get_provider("openai").estimate_max_usage(model, ask)
    assert counted.input_tokens == held.input_tokens
    longer = client.messages.count_tokens(model="sandbox-chat", messages=[{"role": "user", "content": "Grüße " * 50}])
    assert longer.input_tokens == len(("Grüße " * 50).encode()) + 8 + 64
    assert world.upstream_calls() == before


def test_counting_is_free(world: GatewayWorld) -> None:
    """No hold, no debit, no usage row, whichever way the count is made; an account without credits may count."""
    user = world.user()
    client = world.anthropic(world.key(user))
    for model in ("claude-haiku-4-5", "gpt-4o-mini", "sandbox-chat"):
        client.messages.count_tokens(model=model, messages=ASK)
    assert world.balance(user) == 10_000
    assert _rows(world, user) == (0, 0)
    broke = world.user(credits=0)
    assert world.anthropic(world.key(broke)).messages.count_tokens(model="claude-haiku-4-5", messages=ASK).input_tokens
    assert world.balance(broke) == 0 and _rows(world, broke) == (0, 0)


def test_refusals_are_the_sdks_typed_errors(world: GatewayWorld) -> None:
    user = world.user()
    client = world.anthropic(world.key(user))
    before = world.upstream_calls()
    with pytest.raises(anthropic.AuthenticationError) as bad:
        world.anthropic("sk-ac-not-a-key").messages.count_tokens(model="claude-haiku-4-5", messages=ASK)
    assert bad.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    narrow = world.anthropic(world.key(user, models=["claude-sonnet-4-5"]))
    with pytest.raises(anthropic.PermissionDeniedError, match="may not call 'claude-haiku-4-5'"):
        narrow.messages.count_tokens(model="claude-haiku-4-5", messages=ASK)
    with pytest.raises(anthropic.NotFoundError, match="no-such-model") as unknown:
        client.messages.count_tokens(model="no-such-model", messages=ASK)
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="tts-1 is a tts model"):
        client.messages.count_tokens(model="tts-1", messages=ASK)
    with pytest.raises(anthropic.BadRequestError, match="server tool"):
        client.messages.count_tokens(
            model="claude-haiku-4-5", messages=ASK, tools=[{"type": "web_search_20250305", "name": "web_search"}]
        )
    with pytest.raises(anthropic.BadRequestError, match="image"):
        client.messages.count_tokens(
            model="claude-haiku-4-5",
            messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}],
        )
    with pytest.raises(anthropic.BadRequestError, match="messages"):
        client.messages.count_tokens(model="claude-haiku-4-5", messages=[])
    assert world.upstream_calls() == before
    assert _rows(world, user) == (0, 0)


def test_an_upstream_refusal_is_anthropics_envelope(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    world.upstream.status_override = 400
    try:
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.count_tokens(model="claude-haiku-4-5", messages=ASK)
    finally:
        world.upstream.status_override = None
    assert refused.value.body["type"] == "error"  # type: ignore[index]
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_a_count_is_a_request_of_the_keys_rate(world: GatewayWorld) -> None:
    limited = world.anthropic(world.key(world.user(), rpm=2))
    limited.messages.count_tokens(model="gpt-4o-mini", messages=ASK)
    limited.messages.count_tokens(model="claude-haiku-4-5", messages=ASK)
    with pytest.raises(anthropic.RateLimitError) as slow:
        limited.messages.count_tokens(model="gpt-4o-mini", messages=ASK)
    assert int(slow.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.RateLimitError):  # the same budget as the billed calls
        limited.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ASK)
