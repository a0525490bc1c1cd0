"""Grants are checked at Review, in the service (so the page and the command line say the same): the exact credits
typed, never rounded; fractions, zero and negative grants refused naming what was typed; a large grant posts only
with a second confirmation. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from core.access import SYSTEM, Principal
from core.billing.errors import InsufficientCreditsError, InvalidAmountError
from core.db import Database
from core.errors import InvalidInputError
from core.services import Services
from core.services.ledger import LargeGrantError
from core.users import UserView, add_user
from tests.conftest import services_of


@pytest.fixture
def svc(runtime: Database) -> Services:
    return services_of(runtime)


@pytest.fixture
def ana(runtime: Database) -> UserView:
    with runtime.session() as s:
        return add_user(s, email="ana@example.com", name="Ana", role="pm")


@pytest.fixture
def finance(runtime: Database) -> Principal:
    with runtime.session() as s:
        return Principal.of(add_user(s, email="fin@example.com", name="Fin", role="finance"))


def test_review_shows_the_exact_value_typed_and_what_it_leaves(
    svc: Services, ana: UserView, finance: Principal
) -> None:
    svc.ledger.grant(finance, ana.id, 40)
    r = svc.ledger.review_grant(finance, ana.email, " 1,500 ", kind="topup")
    assert (r.user, r.kind, r.credits, r.usd) == ("ana@example.com", "topup", 1500, Decimal("60.00"))
    assert (r.balance, r.available, r.balance_after, r.large) == (40, 40, 1540, False)
    assert svc.ledger.review_grant(finance, ana.id, "-40", kind="adjustment").balance_after == 0


@pytest.mark.parametrize(
    ("typed", "kind", "message"),
    [
        ("12.7", "grant", "Credits: 12.7 is not a whole number. Credits are whole (1 credit is the smallest amount): "
         "type 12 or 13; nothing is rounded for you."),
        ("0", "grant", "Credits: 0 posts nothing"),
        ("-50", "grant", "a grant adds credits and -50 is negative; use kind 'adjustment'"),
        ("-50", "topup", "a topup adds credits and -50 is negative"),
        ("", "grant", "nothing was typed"),
        ("1e3x", "grant", "'1e3x' is not a number"),
        ("NaN", "grant", "'NaN' is not a number"),
        ("1e5", "grant", "'1e5' is in scientific notation; type the whole number of credits in digits (100,000)"),
        # a decimal comma, or a stray group, was stripped and the digits posted: 1,5 as 15, "1 000 0" as 10,000
        ("1,5", "grant", "'1,5' is not a number as written: a comma, space or _ only separates thousands (1,500)"),
        ("1,00", "grant", "'1,00' is not a number as written"),
        ("1 000 0", "grant", "'1 000 0' is not a number as written"),
        ("1E400", "grant", "'1E400' is in scientific notation; type the whole number of credits in digits."),
    ],
)  # fmt: skip
def test_review_refuses_naming_what_was_typed(
    svc: Services, ana: UserView, finance: Principal, typed: str, kind: str, message: str
) -> None:
    with pytest.raises(InvalidAmountError, match=message.replace("(", r"\(").replace(")", r"\)")):
        svc.ledger.review_grant(finance, ana.id, typed, kind=kind)
    with pytest.raises(InvalidAmountError):  # and Confirm refuses it the same way: nothing is posted
        svc.ledger.grant(finance, ana.id, typed, kind=kind)
    assert svc.ledger.history(finance, ana.id).transactions == []


def test_an_adjustment_below_the_available_balance_is_refused_at_review(
    svc: Services, ana: UserView, finance: Principal
) -> None:
    svc.ledger.grant(finance, ana.id, 30)
    # it read "you have 30 available. Ask an admin for a top-up", to finance, about someone else's balance
    said = f"This adjustment takes 50 credits, but {ana.email} has 30 available; an adjustment can take at most 30."
    with pytest.raises(InsufficientCreditsError, match=re.escape(said)):
        svc.ledger.review_grant(finance, ana.id, "-50", kind="adjustment")


def test_a_grant_above_the_limit_needs_a_second_confirmation(runtime: Database, ana: UserView) -> None:
    svc = services_of(runtime)  # GRANT_CONFIRM_ABOVE_CREDITS is 250,000 by default
    r = svc.ledger.review_grant(SYSTEM, ana.id, "2,000,000,000")
    assert r.large and r.credits == 2_000_000_000 and r.usd == Decimal("80000000.00") and r.confirm_above == 250_000
    assert not svc.ledger.review_grant(SYSTEM, ana.id, "250000").large  # at the limit: one confirmation is enough
    with pytest.raises(LargeGrantError, match=r"\+2,000,000,000 credits \(\$80,000,000.00\) is above the 250,000"):
        svc.ledger.grant(SYSTEM, ana.id, "2,000,000,000")
    assert svc.ledger.balance(SYSTEM, ana.id).total == 0
    tx = svc.ledger.grant(SYSTEM, ana.id, "2,000,000,000", confirm_large=True, idempotency_key="big-1")
    assert tx.amount == 2_000_000_000
    with pytest.raises(LargeGrantError):  # a large adjustment down needs it too
        svc.ledger.grant(SYSTEM, ana.id, -300_000, kind="adjustment")


def test_an_idempotency_key_used_by_another_grant_is_refused_not_reported_as_this_one(
    svc: Services, ana: UserView
) -> None:
    """The same key again with the same grant answers the first transaction; with another amount or kind it is a
    mistake to say: it answered the first one silently, and the command line printed the new request's kind."""
    first = svc.ledger.grant(SYSTEM, ana.id, 10, idempotency_key="k1")
    assert svc.ledger.grant(SYSTEM, ana.id, 10, idempotency_key="k1").id == first.id
    for credits, kind in ((99, "grant"), (10, "topup")):
        with pytest.raises(InvalidInputError, match=f"already used by transaction {first.id}"):
            svc.ledger.grant(SYSTEM, ana.id, credits, kind=kind, idempotency_key="k1")
    assert svc.ledger.balance(SYSTEM, ana.id).total == 10
