"""A call whose upstream answered while the database stays unavailable: its output is delivered, flagged
`charge_pending`, and its charge is posted from the settlement spool once the database is back (the same charge a
call settled at once gets). A failed call's release waits the same way."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from core.billing.ledger_check import check_ledger
from core.billing.replays import IdempotencyConflictError
from core.db import Database
from core.providers import GenerationRequest
from core.providers.errors import BadRequestError
from tests.core.billing.test_spool import Outage
from tests.core.providers.fakes import json_response, sse_body
from tests.core.test_generate import CHAT_OK, Env, funded_user
from tests.core.test_stream_billing import CHUNK, USAGE_CHUNK, sse


@pytest.fixture
def outage(runtime: Database, monkeypatch: pytest.MonkeyPatch) -> Outage:
    return Outage(runtime, monkeypatch)


def _down_once_reserved(env: Env, outage: Outage) -> None:
    """The database goes away right after the call's hold, while the upstream answers."""
    real_reserve = env.billing.reserve

    def reserve_then_go_down(*args: object, **kwargs: object) -> object:
        hold = real_reserve(*args, **kwargs)  # type: ignore[arg-type]
        outage.down = True
        env.billing.reserve = real_reserve  # type: ignore[method-assign]
        return hold

    env.billing.reserve = reserve_then_go_down  # type: ignore[method-assign]


def _quiet(env: Env) -> None:
    env.billing._drainer.wake = lambda: None  # type: ignore[method-assign] # drained by hand in these tests


def test_a_call_that_ends_while_the_database_is_down_is_delivered_and_billed_when_it_is_back(
    runtime: Database, outage: Outage
) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK, {"x-request-id": "req_1"})])
    _quiet(env)
    user = funded_user(runtime)
    _down_once_reserved(env, outage)
    r = env.generate(user.email, "gpt-4o", GenerationRequest(category="chat", text="Capital of France?"))
    assert r.text == "Paris." and r.charge_pending
    assert (r.credits_charged, r.balance_after, r.usage_id, r.transaction_id) == (None, None, None, None)
    assert (r.base_credits, r.would_be_credits) == (1, 2)  # what the ledger will charge at this markup
    assert r.credits_summary() == {"charged": None, "remaining": None, "pending": True}
    from core.cli.generate_cmd import _cost_line

    assert r.to_dict()["charge_pending"] is True and r.to_dict()["credits_charged"] is None
    assert "charge pending: the database was unavailable" in _cost_line(r) and "balance" not in _cost_line(r)
    assert env.usage_rows() == [] and env.debits(user) == []

    outage.down = False
    report = env.billing.drain_spool()
    assert report.posted == 1
    assert env.balance(user) == 998 and [d.amount for d in env.debits(user)] == [-2]
    [row] = env.usage_rows()
    assert (row.status, row.cost_credits, row.request_id) == ("success", 2, "req_1")
    assert check_ledger(runtime.session_factory) == []


def test_a_stream_that_ends_while_the_database_is_down_keeps_its_text_and_is_billed_later(
    runtime: Database, outage: Outage
) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK), (None, "[DONE]")]))])
    _quiet(env)
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    outage.down = True
    assert "".join(stream) == "Paris"
    assert stream.result.charge_pending and stream.result.usage.output_tokens == 3
    outage.down = False
    assert env.billing.drain_spool().posted == 1
    assert [d.amount for d in env.debits(user)] == [-2]
    assert check_ledger(runtime.session_factory) == []


def test_a_failed_call_while_the_database_is_down_is_recorded_when_it_is_back(
    runtime: Database, outage: Outage
) -> None:
    env = Env(runtime, [httpx.Response(400, json={"error": {"message": "bad", "type": "invalid_request_error"}})])
    _quiet(env)
    user = funded_user(runtime)
    _down_once_reserved(env, outage)
    with pytest.raises(BadRequestError):
        env.generate(user.email, "gpt-4o", GenerationRequest(category="chat", text="Hi"))
    outage.down = False
    assert env.billing.balance(user.id).held > 0  # the hold waits for its release
    assert env.billing.drain_spool().posted == 1
    [row] = env.usage_rows()
    assert row.status == "failed" and row.cost_credits == 0
    assert env.billing.balance(user.id).held == 0 and env.debits(user) == []


# ---- a retry with the same Idempotency-Key of a call whose charge waited in the spool ---------------------------


def _retry(env: Env, user: object, key: str) -> object:
    return env.generate(
        user.email,
        "gpt-4o",
        GenerationRequest(category="chat", text="Capital of France?"),  # type: ignore[attr-defined]
        idempotency_key=key,
    )


def _call_then_outage(env: Env, outage: Outage, user: object, key: str) -> object:
    _down_once_reserved(env, outage)
    first = _retry(env, user, key)
    outage.down = False
    return first


def test_a_retry_of_a_pending_call_is_told_to_come_back_then_gets_the_first_answer_and_its_charge(
    runtime: Database, outage: Outage
) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK, {"x-request-id": "req_1"})])
    _quiet(env)
    user = funded_user(runtime)
    first = _call_then_outage(env, outage, user, "retry-1")
    assert first.charge_pending and first.text == "Paris."  # type: ignore[attr-defined]
    [waiting] = env.billing.spool.waiting()  # type: ignore[union-attr]
    assert waiting.reply is not None and waiting.reply.result["credits_charged"] is None
    from core.cli.spool_cmd import _row

    assert _row(waiting)["answer kept"] == "yes"  # `ledger spool` says so

    with pytest.raises(IdempotencyConflictError, match="still being posted"):  # not "failed": it was answered
        _retry(env, user, "retry-1")

    assert env.billing.drain_spool().posted == 1
    again = _retry(env, user, "retry-1")
    assert again.replayed and not again.charge_pending and again.text == "Paris."  # type: ignore[attr-defined]
    [row] = env.usage_rows()
    [debit] = env.debits(user)
    assert (again.credits_charged, again.balance_after, again.usage_id) == (2, 998, row.id)  # type: ignore[attr-defined]
    assert again.transaction_id == debit.id and (again.base_credits, again.would_be_credits) == (1, 2)  # type: ignore[attr-defined]
    assert again.markup_pct == first.markup_pct == 100 and again.request_id == "req_1"  # type: ignore[attr-defined]
    assert len(env.upstream.requests) == 1 and env.balance(user) == 998  # one call, charged once
    assert check_ledger(runtime.session_factory) == []


def test_a_pending_stream_retried_with_its_key_replays_its_text_once_posted(runtime: Database, outage: Outage) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK), (None, "[DONE]")]))])
    _quiet(env)
    user = funded_user(runtime)
    req = GenerationRequest(category="chat", text="Hi")
    stream = env.stream(user, "gpt-4o-mini", req, idempotency_key="s-1")
    outage.down = True
    assert "".join(stream) == "Paris" and stream.result.charge_pending
    outage.down = False
    assert env.billing.drain_spool().posted == 1
    again = env.stream(user, "gpt-4o-mini", req, idempotency_key="s-1")
    assert "".join(again) == "Paris"
    assert again.result.replayed and again.result.credits_charged == 2 and again.result.balance_after == 998
    assert len(env.upstream.requests) == 1 and [d.amount for d in env.debits(user)] == [-2]


def test_a_pending_call_whose_hold_expired_meanwhile_is_still_billed_once_and_replayed(
    runtime: Database, outage: Outage
) -> None:
    """An outage longer than the hold's life: the hold expires before the drain. The retry is not told the first
    request failed (it would be sent again with a new key, and charged twice)."""
    env = Env(runtime, [json_response(200, CHAT_OK)])
    _quiet(env)
    user = funded_user(runtime)
    _call_then_outage(env, outage, user, "late-1")
    [hold] = env.holds()
    env.billing.expire_holds(hold.expires_at + timedelta(seconds=1))
    assert [h.status for h in env.holds()] == ["expired"]
    with pytest.raises(IdempotencyConflictError, match="still being posted"):
        _retry(env, user, "late-1")
    assert env.billing.drain_spool().posted == 1
    again = _retry(env, user, "late-1")
    assert again.replayed and again.credits_charged == 2 and env.balance(user) == 998  # type: ignore[attr-defined]
    assert check_ledger(runtime.session_factory) == []


def test_a_settlement_written_before_the_drain_still_gets_its_answer_kept(runtime: Database, outage: Outage) -> None:
    """The spooled settlement had committed already (a try whose answer was lost): the drain writes nothing, and
    keeps the answer with the figures that try charged."""
    env = Env(runtime, [json_response(200, CHAT_OK)])
    _quiet(env)
    user = funded_user(runtime)
    _call_then_outage(env, outage, user, "lost-1")
    [waiting] = env.billing.spool.waiting()  # type: ignore[union-attr]
    assert waiting.record is not None
    done = env.billing.settle(waiting.hold_id, waiting.record)  # what the lost try committed
    report = env.billing.drain_spool()
    assert (report.posted, report.already_written) == (0, 1)
    again = _retry(env, user, "lost-1")
    assert again.replayed and (again.credits_charged, again.usage_id) == (2, done.usage_id)  # type: ignore[attr-defined]
    assert [d.amount for d in env.debits(user)] == [-2]


def test_a_call_without_a_key_keeps_no_answer_in_the_spool(runtime: Database, outage: Outage) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK)])
    _quiet(env)
    user = funded_user(runtime)
    outage.down = False
    _down_once_reserved(env, outage)
    assert env.generate(user.email, "gpt-4o", GenerationRequest(category="chat", text="Hi")).charge_pending
    [waiting] = env.billing.spool.waiting()  # type: ignore[union-attr]
    assert waiting.reply is None
