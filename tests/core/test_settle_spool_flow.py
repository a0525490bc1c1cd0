"""A call whose upstream answered while the database stays unavailable: its output is delivered, flagged
`charge_pending`, and its charge is posted from the settlement spool once the database is back (the same charge a
call settled at once gets). A failed call's release waits the same way."""

from __future__ import annotations

import httpx
import pytest

from core.billing.ledger_check import check_ledger
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


def _quiet(env: Env) -> None:
    env.billing._drainer.wake = lambda: None  # type: ignore[method-assign] # drained by hand in these tests


def test_a_call_that_ends_while_the_database_is_down_is_delivered_and_billed_when_it_is_back(
    runtime: Database, outage: Outage
) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK, {"x-request-id": "req_1"})])
    _quiet(env)
    user = funded_user(runtime)
    real_reserve = env.billing.reserve

    def reserve_then_go_down(*args: object, **kwargs: object) -> object:
        hold = real_reserve(*args, **kwargs)  # type: ignore[arg-type]
        outage.down = True  # the database goes away while the upstream answers
        return hold

    env.billing.reserve = reserve_then_go_down  # type: ignore[method-assign]
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
    real_reserve = env.billing.reserve

    def reserve_then_go_down(*args: object, **kwargs: object) -> object:
        hold = real_reserve(*args, **kwargs)  # type: ignore[arg-type]
        outage.down = True
        return hold

    env.billing.reserve = reserve_then_go_down  # type: ignore[method-assign]
    with pytest.raises(BadRequestError):
        env.generate(user.email, "gpt-4o", GenerationRequest(category="chat", text="Hi"))
    outage.down = False
    assert env.billing.balance(user.id).held > 0  # the hold waits for its release
    assert env.billing.drain_spool().posted == 1
    [row] = env.usage_rows()
    assert row.status == "failed" and row.cost_credits == 0
    assert env.billing.balance(user.id).held == 0 and env.debits(user) == []
