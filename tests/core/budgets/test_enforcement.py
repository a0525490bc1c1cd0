"""Budgets enforced inside `reserve`, on SQLite and PostgreSQL: what counts, what is refused and what the refusal
says; teams, API keys, soft budgets, removal, and a month that ends in the reporting time zone, not in UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.billing import BillingService, InsufficientCreditsError
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, BudgetExceededError, TeamDirectory
from core.catalog import ModelPrice
from core.db import Database
from core.errors import InvalidInputError
from tests.conftest import make_runtime
from tests.core.budgets.conftest import api_key_of, funded, spend_one


def test_a_hard_user_budget_refuses_the_call_that_would_pass_it(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.email, credits=5, name="ana, research")
    for i in range(5):
        spend_one(billing, gpt4o, ana, f"c{i}")
    with pytest.raises(BudgetExceededError) as refused:
        billing.reserve(ana.id, 1, "c5")
    err = refused.value
    assert err.left == 0 and err.limit == 5 and err.needed == 1
    assert str(err).startswith("Budget 'ana, research, ") and "is used up: 0 of 5 credits left; it resets on " in str(
        err
    )
    assert err.resets_on is not None and err.resets_on.day == 1
    # nothing was written by the refused call, and the balance is untouched by the budget
    assert billing.balance(ana).held == 0 and billing.balance(ana).total == 10_000 - 5
    assert book.list_budgets()[0].spent == 5
    assert check_ledger(runtime.session_factory) == []


def test_holds_in_flight_count_and_a_release_gives_the_room_back(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.id, credits=100)
    first = billing.reserve(ana.id, 60, "a")
    with pytest.raises(BudgetExceededError, match="has 40 of 100 credits left and this call may cost up to 50"):
        billing.reserve(ana.id, 50, "b")
    assert book.list_budgets()[0].in_flight == 60 and book.list_budgets()[0].left == 40
    billing.release(first)
    assert billing.reserve(ana.id, 50, "b").credits == 50


def test_the_same_key_returns_the_first_hold_even_once_the_budget_is_used_up(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.id, credits=10)
    hold = billing.reserve(ana.id, 10, "once")
    assert billing.reserve(ana.id, 10, "once").id == hold.id


def test_a_team_budget_counts_every_members_holds_and_spend(
    runtime: Database, billing: BillingService, book: BudgetBook, teams: TeamDirectory, gpt4o: ModelPrice
) -> None:
    ana, ben, cy = (funded(runtime, billing, f"{n}@example.com") for n in ("ana", "ben", "cy"))
    teams.add("research", owner=ana.email)
    teams.add_member("research", ana.email)
    teams.add_member("research", ben.email)
    book.set(team="research", credits=10)
    spend_one(billing, gpt4o, ana, "a1")
    held = billing.reserve(ben.id, 8, "b1")
    with pytest.raises(BudgetExceededError, match=r"Budget 'team research, .*' has 1 of 10 credits left"):
        billing.reserve(ana.id, 2, "a2")
    billing.reserve(cy.id, 50, "c1")  # not a member: no team budget covers cy
    billing.release(held)
    billing.reserve(ana.id, 2, "a2")


def test_the_strictest_budget_refuses_and_a_soft_budget_never_does(
    runtime: Database, billing: BillingService, book: BudgetBook, teams: TeamDirectory, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    teams.add("research")
    teams.add_member("research", ana.email)
    book.set(team="research", credits=3, enforcement="soft")
    book.set(user=ana.email, credits=5)
    for i in range(5):  # the soft team budget is passed at the 4th credit: allowed
        spend_one(billing, gpt4o, ana, f"c{i}")
    with pytest.raises(BudgetExceededError, match=r"Budget 'ana@example.com, "):
        billing.reserve(ana.id, 1, "c5")
    soft = next(b for b in book.list_budgets() if b.scope == "team")
    assert soft.spent == 5 and soft.left == 0 and soft.used_pct > 100


def test_an_api_key_budget_counts_only_calls_through_that_key(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    key, other = api_key_of(runtime, ana, "app"), api_key_of(runtime, ana, "other app")
    book.set(api_key_id=key, credits=2)
    spend_one(billing, gpt4o, ana, "k1", api_key_id=key)
    spend_one(billing, gpt4o, ana, "k2", api_key_id=key)
    with pytest.raises(BudgetExceededError, match=f"Budget 'API key {key}, "):
        billing.reserve(ana.id, 1, "k3", api_key_id=key)
    spend_one(billing, gpt4o, ana, "no-key")  # the same user without the key: not covered
    spend_one(billing, gpt4o, ana, "other-key", api_key_id=other)
    assert book.list_budgets()[0].spent == 2
    assert billing.reserve(ana.id, 1, "k3b", api_key_id=other).api_key_id == other


def test_refunds_give_budget_back_and_uptime_debits_count(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.id, credits=10)
    st = spend_one(billing, gpt4o, ana, "c1")
    billing.charge(
        ana.id, Decimal("0.20"), markup_pct=0, idempotency_key="up", description="uptime", kind="endpoint_uptime"
    )
    assert book.list_budgets()[0].spent == 1 + 5
    assert st.transaction is not None
    billing.refund(st.transaction, "bad answer")
    assert book.list_budgets()[0].spent == 5
    adj = billing.grant(ana, -3, kind="adjustment", note="correction")
    billing.refund(adj, "wrong correction")  # giving back an adjustment is not spend
    assert book.list_budgets()[0].spent == 5
    assert check_ledger(runtime.session_factory) == []


def test_a_zero_credit_call_passes_a_used_up_budget(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.id, credits=1)
    billing.reserve(ana.id, 1, "all")
    assert billing.reserve(ana.id, 0, "sandbox").credits == 0


def test_not_enough_credits_is_still_the_first_refusal(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    ana = funded(runtime, billing, "ana@example.com", credits=5)
    book.set(user=ana.id, credits=100)
    with pytest.raises(InsufficientCreditsError):
        billing.reserve(ana.id, 6, "x")


def test_setting_again_changes_the_budget_and_keeps_its_spend(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    first = book.set(user=ana.id, credits=2)
    spend_one(billing, gpt4o, ana, "c1")
    spend_one(billing, gpt4o, ana, "c2")
    with pytest.raises(BudgetExceededError):
        billing.reserve(ana.id, 1, "c3")
    raised = book.set(user=ana.email, credits=3, thresholds=[90, 25])
    assert raised.id == first.id and raised.spent == 2 and raised.thresholds == (25, 90)
    spend_one(billing, gpt4o, ana, "c3")
    book.remove(raised.id)
    spend_one(billing, gpt4o, ana, "c4")  # a removed budget no longer limits
    assert book.list_budgets() == [] and book.get(raised.id).removed_at is not None
    once = book.set(user=ana.id, credits=1, period="once")
    assert once.resets_on is None and once.spent == 0 and "since " in once.period_label


def test_a_new_budget_counts_the_spend_already_made_this_period(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    for i in range(3):
        spend_one(billing, gpt4o, ana, f"c{i}")
    assert book.set(user=ana.id, credits=3).spent == 3
    with pytest.raises(BudgetExceededError, match="is used up"):
        billing.reserve(ana.id, 1, "more")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"credits": 5}, "exactly one of"),
        ({"user": "ana@example.com", "team": "x", "credits": 5}, "exactly one of"),
        ({"user": "ana@example.com", "credits": 0}, "must not be zero"),
        ({"user": "ana@example.com", "credits": 5, "period": "weekly"}, "Unknown period"),
        ({"user": "ana@example.com", "credits": 5, "enforcement": "strict"}, "Unknown enforcement"),
        ({"user": "ana@example.com", "credits": 5, "thresholds": [0]}, "whole percent from 1 to 1000"),
        ({"user": "nobody@example.com", "credits": 5}, "No user"),
        ({"team": "nobody", "credits": 5}, "No team"),
    ],
)
def test_bad_budgets_are_refused_with_a_sentence(
    runtime: Database, billing: BillingService, book: BudgetBook, kwargs: dict[str, object], message: str
) -> None:
    funded(runtime, billing, "ana@example.com")
    with pytest.raises(Exception, match=message):
        book.set(**kwargs)  # type: ignore[arg-type]
    assert book.list_budgets() == []


def test_the_month_ends_in_the_reporting_time_zone(
    tmp_path: object, set_clock: Callable[[datetime], None], gpt4o: ModelPrice
) -> None:
    """Los Angeles is UTC-8 in winter: December ends there at 2027-01-01 08:00 UTC."""
    rt = make_runtime(f"sqlite:///{tmp_path}/la.db", tmp_path, reporting_tz="America/Los_Angeles")  # type: ignore[arg-type]
    try:
        billing = BillingService(rt.session_factory, rt.settings)
        book = BudgetBook(rt.session_factory, rt.settings)
        set_clock(datetime(2026, 12, 20, 12, 0))
        ana = funded(rt, billing, "ana@example.com")
        book.set(user=ana.id, credits=2)
        spend_one(billing, gpt4o, ana, "dec-1")
        set_clock(datetime(2027, 1, 1, 7, 30))  # still December 31 in Los Angeles
        spend_one(billing, gpt4o, ana, "dec-2")
        with pytest.raises(BudgetExceededError, match="it resets on 2027-01-01"):
            billing.reserve(ana.id, 1, "dec-3")
        set_clock(datetime(2027, 1, 1, 8, 0))  # January in Los Angeles: a new period, nothing spent yet
        spend_one(billing, gpt4o, ana, "jan-1")
        spend_one(billing, gpt4o, ana, "jan-2")
        with pytest.raises(BudgetExceededError, match=r"January 2027.*it resets on 2027-02-01"):
            billing.reserve(ana.id, 1, "jan-3")
        assert book.get(1).period_start == datetime(2027, 1, 1, 8, 0)
        set_clock(datetime(2027, 2, 1, 8, 0))  # February's counter was not made ahead: the first call makes it
        spend_one(billing, gpt4o, ana, "feb-1")
        assert book.get(1).spent == 1 and book.get(1).period_label == "February 2027"
        assert check_ledger(rt.session_factory) == []
    finally:
        rt.dispose()


def test_api_key_id_must_be_a_number(runtime: Database, billing: BillingService) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    with pytest.raises(InvalidInputError, match="api_key_id"):
        billing.reserve(ana.id, 1, "x", api_key_id="7")  # type: ignore[arg-type]


def test_a_one_off_budget_starts_counting_at_its_start(
    runtime: Database,
    billing: BillingService,
    book: BudgetBook,
    gpt4o: ModelPrice,
    set_clock: Callable[[datetime], None],
) -> None:
    set_clock(datetime(2026, 12, 10, 12, 0))
    ana = funded(runtime, billing, "ana@example.com")
    spend_one(billing, gpt4o, ana, "before")
    book.set(user=ana.id, credits=1, period="once", starts_at=datetime(2026, 12, 11))
    spend_one(billing, gpt4o, ana, "not-yet")  # the budget is not in force yet
    set_clock(datetime(2026, 12, 11, 9, 0))
    spend_one(billing, gpt4o, ana, "first")  # spend from its start on: 1 of 1
    with pytest.raises(BudgetExceededError, match="it is a one-off budget: ask finance to raise it"):
        billing.reserve(ana.id, 1, "second")
    assert book.list_budgets()[0].spent == 1


def test_a_budget_takes_the_limits_every_door_takes(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    """The Budgets page saved 99,999,999,999,999 credits, and a budget on a revoked key, which the command line
    refuses; the engine refuses them for every door."""
    ana = funded(runtime, billing, "ana@x.io", 10)
    with pytest.raises(InvalidInputError, match="at most 2,147,483,647 credits"):
        book.set(user=ana.id, credits=99_999_999_999_999)
    book.set(user=ana.id, credits=2**31 - 1)
    key = api_key_of(runtime, ana)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE id = :id"), {"id": key})
    with pytest.raises(InvalidInputError, match="is revoked"):
        book.set(api_key_id=key, credits=100)
