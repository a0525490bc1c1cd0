"""PostgreSQL's one-round-trip hold (`ledger_reserve`, migration 0013) keeps `reserve`'s rules: each scenario runs
once through it and once through the general path (forced), on two users, and both must answer the same, hold for
hold and refusal for refusal. It also hands over to the general path whenever a budget or a key's limit applies."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from core.billing import BillingService, InsufficientCreditsError
from core.billing.key_limits import KeyLimitError
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, BudgetExceededError
from core.db import Database
from core.db.models import utcnow
from core.errors import CoreError
from core.keys.store import KeyLimits, create
from core.users import UserView
from tests.core.billing.conftest import make_user

Outcome = tuple[Any, ...]


def _key(rt: Database, user: UserView, monthly: int | None = None) -> int:
    limits = KeyLimits(monthly_credits=monthly)
    return create(rt.engine, user_id=user.id, name="k", limits=limits, expires_at=None, actor="test").key.id


def _try(billing: BillingService, user_id: int, credits: int, key: str, **kw: Any) -> Outcome:
    try:
        hold = billing.reserve(user_id, credits, key, **kw)
    except CoreError as exc:  # the message's figures, both users' own (their email, a key's prefix) set aside
        text = re.sub(r"API key \S+", "API key K", str(exc))
        return (type(exc).__name__, re.sub(r"'[^']*@example\.com", "'U", text))
    b = billing.balance(user_id)
    return ("hold", hold.credits, hold.status, hold.reused, hold.api_key_id is not None, b.total, b.held)


def _scenarios(
    rt: Database, billing: BillingService, book: BudgetBook
) -> dict[str, Callable[[UserView], list[Outcome]]]:
    def plain(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        return [_try(billing, u.id, 60, "a"), _try(billing, u.id, 41, "b"), _try(billing, u.id, 40, "c")]

    def same_key_again(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        return [_try(billing, u.id, 30, "a"), _try(billing, u.id, 99, "a"), _try(billing, u.id, 70, "b")]

    def zero_while_overdrawn(u: UserView) -> list[Outcome]:
        return [_try(billing, u.id, 0, "free"), _try(billing, u.id, 1, "paid")]

    def stale_hold_expires(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        first = _try(billing, u.id, 90, "a", ttl_seconds=1)
        billing.expire_holds(utcnow() + timedelta(seconds=5))  # as if its time had passed
        return [first, _try(billing, u.id, 90, "b"), _try(billing, u.id, 90, "a")]

    def budget_applies(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        book.set(user=u.id, credits=50)
        return [_try(billing, u.id, 40, "a"), _try(billing, u.id, 20, "b")]

    def key_with_a_limit(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        kid = _key(rt, u, monthly=50)
        return [_try(billing, u.id, 40, "a", api_key_id=kid), _try(billing, u.id, 20, "b", api_key_id=kid)]

    def key_without_a_limit(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        kid = _key(rt, u)
        return [_try(billing, u.id, 40, "a", api_key_id=kid), _try(billing, u.id, 70, "b", api_key_id=kid)]

    def key_of_someone_else(u: UserView) -> list[Outcome]:
        billing.grant(u, 100)
        other = make_user(rt, f"other-{u.email}")
        return [_try(billing, u.id, 10, "a", api_key_id=_key(rt, other))]

    return {
        f.__name__: f
        for f in (
            plain,
            same_key_again,
            zero_while_overdrawn,
            stale_hold_expires,
            budget_applies,
            key_with_a_limit,
            key_without_a_limit,
            key_of_someone_else,
        )
    }


SCENARIOS = [
    "plain",
    "same_key_again",
    "zero_while_overdrawn",
    "stale_hold_expires",
    "budget_applies",
    "key_with_a_limit",
    "key_without_a_limit",
    "key_of_someone_else",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_one_round_trip_and_general_path_agree(
    pg_runtime: Database, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    book = BudgetBook(pg_runtime.session_factory, pg_runtime.settings)
    scenario = _scenarios(pg_runtime, billing, book)[name]
    taken: list[bool] = []
    real = BillingService._reserve_at_once

    def spy(self: BillingService, *args: Any) -> Any:
        hold = real(self, *args)
        taken.append(hold is not None)
        return hold

    monkeypatch.setattr(BillingService, "_reserve_at_once", spy)
    fast = scenario(make_user(pg_runtime, "fast@example.com"))
    monkeypatch.setattr(BillingService, "_reserve_at_once", lambda *_a: None)  # the general path only
    general = scenario(make_user(pg_runtime, "general@example.com"))
    assert fast == general
    assert check_ledger(pg_runtime.session_factory) == []
    refused = (InsufficientCreditsError, BudgetExceededError, KeyLimitError)
    assert all(o[0] in {"hold", *(e.__name__ for e in refused)} for o in fast), fast
    checked = name in ("budget_applies", "key_with_a_limit", "key_of_someone_else")
    # one round trip whenever no budget or key limit applies (a refusal raises before it is counted here)
    assert taken and (not any(taken) if checked else all(taken)), taken


def test_an_unknown_user_is_refused_the_same_way(pg_runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    with pytest.raises(CoreError) as fast:
        billing.reserve(987_654, 1, "a")
    monkeypatch.setattr(BillingService, "_reserve_at_once", lambda *_a: None)
    with pytest.raises(CoreError) as general:
        billing.reserve(987_654, 1, "a")
    assert type(fast.value) is type(general.value) and str(fast.value) == str(general.value)


def test_a_budget_set_between_two_holds_refuses_the_very_next(pg_runtime: Database) -> None:
    """Only accounts with something to check are remembered (to skip the function's round trip for a while): one
    without is never, so a budget set after a one-round-trip hold is enforced on the next hold at once; and a
    remembered account whose budget went meanwhile is still served, by the general path."""
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    book = BudgetBook(pg_runtime.session_factory, pg_runtime.settings)
    user = make_user(pg_runtime)
    billing.grant(user, 100)
    billing.reserve(user.id, 10, "a")  # no budget: one round trip
    budget = book.set(user=user.id, credits=15)
    with pytest.raises(BudgetExceededError):
        billing.reserve(user.id, 10, "b")  # 10 held + 10 would pass 15
    book.remove(budget.id)
    assert billing.reserve(user.id, 10, "c").credits == 10  # remembered as budgeted: the general path, which allows it
    assert billing.balance(user).held == 20
    assert check_ledger(pg_runtime.session_factory) == []
