"""PostgreSQL settles a hold in one statement (`_settle_at_once`) when it is open and its account's markup is the one
it was priced at, and otherwise hands over to the general path. Each scenario runs once each way on two users (the
general path forced by a hold that carries no markup) and both must give the same settlement, the same stored rows
and the same refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from core.billing import BillingService, Hold
from core.billing.ledger_check import check_ledger
from core.config import Settings
from core.db import Database
from core.db.models import AIUsageLog, CreditHold, utcnow
from core.errors import CoreError
from core.usage import Usage
from core.users import UserView
from tests.core.billing.conftest import catalog_model, make_user, record_for

Outcome = tuple[Any, ...]
SMALL = Usage(input_tokens=1000, output_tokens=500)  # gpt-4o: $0.0075 -> 1 credit -> 2 at 100%
BIG = Usage(input_tokens=100_000, output_tokens=10_000)  # $0.35 -> 9 credits -> 18 at 100%
HUGE = Usage(input_tokens=10**12, output_tokens=10**11)  # $3.5M -> 87.5M credits


def _settle(billing: BillingService, hold: Hold, usage: Usage, rt: Database, *, general: bool, **kw: Any) -> Outcome:
    rec = record_for(catalog_model(rt, "gpt-4o"), usage, **kw)
    try:
        st = billing.settle(replace(hold, markup_pct=None) if general else hold, rec)
    except CoreError as exc:
        return (type(exc).__name__, re.sub(r"transaction \d+", "transaction T", str(exc).replace(f" {hold.id}", " H")))
    tx = st.transaction
    stored = None
    if tx is not None:
        [stored] = [t for t in billing.transactions(hold.user_id) if t.id == tx.id]
        assert stored == tx  # what is returned is what was written
    with rt.session() as s:
        row = s.get(AIUsageLog, st.usage_id)
        hold_row = s.get(CreditHold, hold.id)
        usage_row = (row.cost_credits, row.markup_pct, row.charged_usd, row.status, row.sandbox, row.meta)
        closed = (hold_row.status, hold_row.transaction_id == (tx.id if tx else None))
    meta = None if tx is None else {k: v for k, v in tx.metadata.items() if k not in ("usage_id", "hold_id")}
    assert tx is None or (tx.metadata["usage_id"], tx.metadata["hold_id"]) == (st.usage_id, hold.id)
    assert row.transaction_id == (tx.id if tx else None)
    return ("settled", st.credits_charged, st.balance_after, st.overage, st.markup_pct, meta, usage_row, closed)


def _set_markup(rt: Database, user: UserView, pct: str) -> None:
    with rt.engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET developer_markup_pct = :p WHERE id = :u"), {"p": Decimal(pct), "u": user.id}
        )


Scenario = Callable[[BillingService, UserView, bool], list[Outcome]]


def _scenarios(rt: Database) -> dict[str, Scenario]:
    def plain(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        return [_settle(b, b.reserve(u.id, 10, "a"), SMALL, rt, general=general)]

    def overage_into_overdraft(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 3)
        return [_settle(b, b.reserve(u.id, 2, "a"), BIG, rt, general=general)]

    def free_calls(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        return [
            _settle(b, b.reserve(u.id, 10, "a"), SMALL, rt, general=general, sandbox=True),
            _settle(b, b.reserve(u.id, 10, "b"), SMALL, rt, general=general, status="failed", error="upstream 500"),
        ]

    def markup_changed(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        hold = b.reserve(u.id, 10, "a")
        _set_markup(rt, u, "300")
        return [_settle(b, hold, SMALL, rt, general=general)]

    def hold_expired(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        hold = b.reserve(u.id, 10, "a", ttl_seconds=1)
        b.expire_holds(utcnow() + timedelta(seconds=5))
        return [_settle(b, hold, SMALL, rt, general=general)]

    def settled_twice(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        hold = b.reserve(u.id, 10, "a")
        return [_settle(b, hold, SMALL, rt, general=general), _settle(b, hold, SMALL, rt, general=general)]

    def released(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        hold = b.reserve(u.id, 10, "a")
        b.release(hold)
        return [_settle(b, hold, SMALL, rt, general=general)]

    def key_already_debited(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        b.grant(u, 100)
        hold = b.reserve(u.id, 10, "a")
        b.charge(u.id, Decimal("0.04"), idempotency_key="a", description="same key")
        free = b.reserve(u.id, 10, "b")
        b.charge(u.id, Decimal("0.04"), idempotency_key="b", description="same key")
        return [
            _settle(b, hold, SMALL, rt, general=general),
            _settle(b, free, SMALL, rt, general=general, sandbox=True),
        ]

    def odd_inputs(b: BillingService, u: UserView, general: bool) -> list[Outcome]:
        _set_markup(rt, u, "133.3333")  # four decimals, as the column keeps them
        b.grant(u, 100)
        text_in_json = {"note": 'a "quote", a \\ backslash and ünïcødé', "ratio": Decimal("1.5")}
        return [  # a cache hit with metadata JSON must quote; a cost of millions of credits, far past the hold
            _settle(b, b.reserve(u.id, 10, "a"), SMALL, rt, general=general, cache_hit=True, metadata=text_in_json),
            _settle(b, b.reserve(u.id, 0, "b"), HUGE, rt, general=general, request_id='req "2"'),
        ]

    return {
        f.__name__: f
        for f in (
            odd_inputs,
            plain,
            overage_into_overdraft,
            free_calls,
            markup_changed,
            hold_expired,
            settled_twice,
            released,
            key_already_debited,
        )
    }


AT_ONCE = {
    "plain",
    "overage_into_overdraft",
    "free_calls",
    "settled_twice",
    "odd_inputs",
}  # settled by the one statement
SCENARIOS = [
    "plain",
    "odd_inputs",
    "overage_into_overdraft",
    "free_calls",
    "markup_changed",
    "hold_expired",
    "settled_twice",
    "released",
    "key_already_debited",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_one_statement_and_general_path_agree(pg_runtime: Database, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    scenario = _scenarios(pg_runtime)[name]
    taken: list[bool] = []
    real = BillingService._settle_at_once

    def spy(self: BillingService, *args: Any) -> Any:
        done = real(self, *args)
        taken.append(done is not None)
        return done

    monkeypatch.setattr(BillingService, "_settle_at_once", spy)
    at_once = scenario(billing, make_user(pg_runtime, "fast@example.com"), False)
    general = scenario(billing, make_user(pg_runtime, "general@example.com"), True)
    assert at_once == general
    assert check_ledger(pg_runtime.session_factory) == []
    assert taken[0] is (name in AT_ONCE), taken  # the first settle of each: one statement, or handed over
    assert not any(taken[1:]) or name in ("free_calls", "odd_inputs")  # a second settle of one hold never writes


def test_a_hold_settled_at_once_writes_one_row_of_each(pg_runtime: Database) -> None:
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    user = make_user(pg_runtime)
    billing.grant(user, 100)
    st = billing.settle(billing.reserve(user.id, 10, "a"), record_for(catalog_model(pg_runtime, "gpt-4o"), SMALL))
    with pg_runtime.session() as s:
        assert s.scalars(select(AIUsageLog.id)).all() == [st.usage_id]
    assert [t.transaction_type for t in billing.transactions(user)] == ["grant", "usage"]
    assert billing.balance(user).total == 98 and billing.balance(user).held == 0


def test_accrual_rounding_always_takes_the_general_path(pg_runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ROUNDING_POLICY=accrual a call debits what its exact cost runs past the account's remainder, which only
    the general path keeps: the one statement is never tried, and the remainder stays provable."""
    settings = Settings(database_url=pg_runtime.settings.database_url, rounding_policy="accrual")
    billing = BillingService(pg_runtime.session_factory, settings)
    tried: list[object] = []
    monkeypatch.setattr(BillingService, "_settle_at_once", lambda *a: tried.append(a))
    user = make_user(pg_runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "a")
    assert hold.markup_pct is not None
    st = billing.settle(hold, record_for(catalog_model(pg_runtime, "gpt-4o"), SMALL))  # $0.0075 x 2 = 0.375 credit
    assert tried == [] and st.credits_charged == 1
    with pg_runtime.session() as s:
        assert s.get(AIUsageLog, st.usage_id).accrued_nano == 375_000_000
    assert check_ledger(pg_runtime.session_factory) == []
