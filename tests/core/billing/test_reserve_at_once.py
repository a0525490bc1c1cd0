"""The one-statement hold keeps `reserve`'s rules: PostgreSQL's one round trip (`ledger_reserve`, migration 0013) and
SQLite's one statement alone in its transaction (`AccountsSQL.reserve_alone`). Each scenario runs once through it and
once through the general path (forced), on two users, and both must answer the same, hold for hold and refusal for
refusal. It also hands over to the general path whenever a budget or a key's limit applies."""

from __future__ import annotations

import re
import threading
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


def _one_statement(rt: Database) -> str:
    """The name of the database's one-statement hold on BillingService."""
    return "_reserve_at_once" if rt.engine.dialect.name == "postgresql" else "_reserve_alone"


@pytest.mark.parametrize("name", SCENARIOS)
def test_one_statement_and_general_path_agree(runtime: Database, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    book = BudgetBook(runtime.session_factory, runtime.settings)
    scenario = _scenarios(runtime, billing, book)[name]
    taken: list[bool] = []
    attr = _one_statement(runtime)
    real = getattr(BillingService, attr)

    def spy(self: BillingService, *args: Any) -> Any:
        hold = real(self, *args)
        taken.append(hold is not None)
        return hold

    monkeypatch.setattr(BillingService, attr, spy)
    fast = scenario(make_user(runtime, "fast@example.com"))
    monkeypatch.setattr(BillingService, attr, lambda *_a: None)  # the general path only
    general = scenario(make_user(runtime, "general@example.com"))
    assert fast == general
    assert check_ledger(runtime.session_factory) == []
    refused = (InsufficientCreditsError, BudgetExceededError, KeyLimitError)
    assert all(o[0] in {"hold", *(e.__name__ for e in refused)} for o in fast), fast
    checked = name in ("budget_applies", "key_with_a_limit", "key_of_someone_else")
    assert taken, taken
    if checked:  # tried once, wrote nothing, and the pair's next holds went straight to the general path
        assert not any(taken), taken
    elif attr == "_reserve_at_once":  # one round trip whenever no budget or key limit applies (a refusal raises)
        assert all(taken), taken
    else:  # SQLite's statement makes every new hold; a reused hold or a refusal is the general path's
        assert taken == [o[0] == "hold" and not o[3] for o in fast], (taken, fast)


def test_an_unknown_user_is_refused_the_same_way(runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    with pytest.raises(CoreError) as fast:
        billing.reserve(987_654, 1, "a")
    monkeypatch.setattr(BillingService, _one_statement(runtime), lambda *_a: None)
    with pytest.raises(CoreError) as general:
        billing.reserve(987_654, 1, "a")
    assert type(fast.value) is type(general.value) and str(fast.value) == str(general.value)


def test_a_budget_set_between_two_holds_refuses_the_very_next(runtime: Database) -> None:
    """Only accounts with something to check are remembered (to skip the one statement for a while): one without
    is never, so a budget set after a one-statement hold is enforced on the next hold at once; and a remembered
    account whose budget went meanwhile is still served, by the general path."""
    billing = BillingService(runtime.session_factory, runtime.settings)
    book = BudgetBook(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    billing.reserve(user.id, 10, "a")  # no budget: one statement
    budget = book.set(user=user.id, credits=15)
    with pytest.raises(BudgetExceededError):
        billing.reserve(user.id, 10, "b")  # 10 held + 10 would pass 15
    book.remove(budget.id)
    assert billing.reserve(user.id, 10, "c").credits == 10  # remembered as budgeted: the general path, which allows it
    assert billing.balance(user).held == 20
    assert check_ledger(runtime.session_factory) == []


def test_a_hold_of_one_statement_is_alone_in_its_transaction_or_grouped(runtime: Database) -> None:
    """SQLite: many threads holding at once, some through the one statement alone, some grouped with others' writes
    in one transaction: every hold the balance covers is made, none past it, and the ledger checks."""
    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    made: list[int] = []
    refused: list[str] = []
    start = threading.Barrier(16)

    def hold(i: int) -> None:
        start.wait()
        for j in range(4):
            try:
                made.append(billing.reserve(user.id, 3, f"t{i}-{j}").credits)
            except InsufficientCreditsError:
                refused.append(f"t{i}-{j}")

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(made) == 99 and len(made) == 33 and len(refused) == 64 - 33
    assert billing.balance(user).held == 99
    assert check_ledger(runtime.session_factory) == []
