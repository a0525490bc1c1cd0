"""The database goes away while a call runs: the gateway still answers with the output (the upstream produced it and
billed us), says the charge is pending (`x-credits-pending`, `credits.pending` in the stream's usage chunk) instead of
figures it does not have, and the charge is posted from the settlement spool once the database is back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from core.billing.ledger_check import check_ledger
from tests.core.gateway.conftest import GatewayWorld

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def down(world: GatewayWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every settlement meets an unavailable database (after its own retries); the drainer is left to the test."""
    billing = world.services.billing

    def settle(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(billing, "settle", settle)
    monkeypatch.setattr(billing._drainer, "wake", lambda: None)
    yield


def test_a_plain_answer_says_its_charge_is_pending_and_is_billed_once_when_the_database_is_back(
    world: GatewayWorld, down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=300)
    assert raw.parse().choices[0].message.content == "Hello from the loopback."
    assert raw.headers["x-credits-pending"] == "true"
    assert "x-credits-charged" not in raw.headers and "x-credits-remaining" not in raw.headers
    assert world.balance(user) == 10_000
    monkeypatch.undo()
    assert world.services.billing.drain_spool().posted == 1
    assert world.balance(user) == 10_000 - 2
    assert check_ledger(world.services.db.session_factory) == []


def test_a_stream_ends_normally_with_its_charge_pending(
    world: GatewayWorld, down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = world.user()
    chunks = world.streamed_chat(world.key(user), MESSAGES)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the loopback."
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].model_extra["credits"] == {"charged": None, "remaining": None, "pending": True}
    monkeypatch.undo()
    assert world.services.billing.drain_spool().posted == 1
    assert world.balance(user) == 10_000 - 2


def test_a_database_down_before_the_call_is_a_503_to_retry_with_nothing_charged(
    world: GatewayWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the SDKs got a 500 "the gateway failed on its side"; now a 503 that says why, that nothing was charged
    and when to try again (Retry-After), in each API's envelope, and the upstream is not called."""
    import anthropic
    import openai

    user = world.user()
    key = world.key(user)
    calls = world.upstream_calls()

    def reserve(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(world.services.billing, "reserve", reserve)
    with pytest.raises(openai.InternalServerError) as oe:
        world.openai(key).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert oe.value.status_code == 503 and oe.value.response.headers["retry-after"] == "5"
    assert oe.value.body["code"] == "database_unavailable" and "nothing was charged" in oe.value.body["message"]
    with pytest.raises(anthropic.InternalServerError) as ae:
        world.anthropic(key).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    assert ae.value.status_code == 503 and ae.value.body["error"]["type"] == "api_error"
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_once_its_charge_is_posted(
    world: GatewayWorld, down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client lost the answer of a call whose charge is pending and sends it again with its Idempotency-Key:
    told to come back shortly (409, Retry-After) while the charge waits, then the first answer with what it was
    charged; the upstream is called once and the user charged once."""
    import openai

    user = world.user()
    client = world.openai(world.key(user)).with_options(default_headers={"Idempotency-Key": "order-7"})
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert first.headers["x-credits-pending"] == "true"
    calls = world.upstream_calls()
    monkeypatch.undo()  # the database is back; nothing posted yet
    with pytest.raises(openai.ConflictError) as waiting:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert waiting.value.response.headers["retry-after"] == "5" and "still being posted" in waiting.value.message
    assert "x-should-retry" not in waiting.value.response.headers  # the SDK's own retries may well get the answer
    assert world.services.billing.drain_spool().posted == 1
    again = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.headers["x-credits-charged"], again.headers["x-credits-remaining"]) == ("2", str(10_000 - 2))
    assert (
        again.parse().id == first.parse().id and again.parse().choices[0].message.content == "Hello from the loopback."
    )
    assert world.upstream_calls() == calls and world.balance(user) == 10_000 - 2
    assert check_ledger(world.services.db.session_factory) == []
