"""Accrual rounding: 1,000 calls of $0.003 debit exactly ceil of their exact total (never a free call), on SQLite and
PostgreSQL, the remainder is part of the account's state, and `ledger check` proves it."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.billing import BillingService, UsageRecord
from core.billing.accrual import NANO_PER_CREDIT, accrue, exact_nano_credits
from core.billing.ledger_check import check_ledger
from core.config import Settings
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction, User
from core.errors import InvalidInputError
from core.usage import Usage
from tests.core.billing.conftest import catalog_model, make_user

CREDIT = Decimal("0.04")
CALL = Decimal("0.003")


def _run(costs: list[Decimal], markup: Decimal) -> tuple[list[int], int]:
    """The credits each call debits and the remainder left, starting from an empty remainder."""
    remainder, debits = 0, []
    for cost in costs:
        step = accrue(cost, markup, CREDIT, remainder)
        assert 0 <= step.remainder_nano < NANO_PER_CREDIT
        debits.append(step.credits)
        remainder = step.remainder_nano
    return debits, remainder


@pytest.mark.parametrize(
    ("calls", "markup", "expected"),
    [
        (1000, "100", 150),  # 1,000 x $0.003 / $0.04 x 2 = 150 credits exactly (per call: 2,000)
        (1001, "100", 151),  # 150.15 -> ceil
        (1000, "80", 135),  # x 1.8 = 135 exactly
        (999, "0", 75),  # 74.925 -> ceil
    ],
)
def test_calls_debit_ceil_of_their_exact_total(calls: int, markup: str, expected: int) -> None:
    debits, remainder = _run([CALL] * calls, Decimal(markup))
    assert sum(debits) == expected
    exact = calls * CALL / CREDIT * (100 + Decimal(markup)) / 100
    assert Decimal(sum(debits)) - exact == Decimal(remainder) / NANO_PER_CREDIT  # the change is what is kept
    assert debits[0] == 1  # the first call pays: nothing is ever free, it is paid for before it is used


def test_random_calls_debit_ceil_of_their_exact_total() -> None:
    rng = random.Random(18)
    costs = [Decimal(rng.randint(1, 5_000_000)).scaleb(-9) for _ in range(2000)]  # up to half a cent
    markup = Decimal("37.5")
    debits, _ = _run(costs, markup)
    total_nano = sum(exact_nano_credits(c, markup, CREDIT) for c in costs)
    assert sum(debits) == -(-total_nano // NANO_PER_CREDIT)


def test_a_cost_below_a_nano_credit_still_consumes_one() -> None:
    step = accrue(Decimal("0.000000001"), Decimal(0), Decimal("1000"), 0)  # a nano-dollar at $1,000 a credit
    assert step.accrued_nano == 1 and step.credits == 1


@pytest.fixture
def accrual_billing(runtime: Database) -> BillingService:
    settings = Settings(database_url=runtime.settings.database_url, rounding_policy="accrual")
    return BillingService(runtime.session_factory, settings)


def test_a_thousand_calls_of_three_tenths_of_a_cent(runtime: Database, accrual_billing: BillingService) -> None:
    billing = accrual_billing
    user = make_user(runtime, markup="100")
    model = catalog_model(runtime, "suno/bark")
    billing.grant(user, 1000)
    for i in range(1000):
        hold = billing.reserve(user, 2, f"call-{i}")  # the per-call price is the most a call can cost
        billing.settle(hold, UsageRecord(model=model, usage=Usage(), base_cost_usd=CALL))
    assert billing.balance(user).total == 1000 - 150  # ceil(150.000) credits, not 2,000
    with runtime.session() as s:
        rows = list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))
        debits = list(s.scalars(select(CreditTransaction.amount).where(CreditTransaction.transaction_type == "usage")))
        remainder = s.get(User, user.id).credit_remainder_nano
    assert [r.accrued_nano for r in rows] == [150_000_000] * 1000  # 0.15 credits each
    assert sum(r.cost_credits for r in rows) == 150 and sorted(set(debits)) == [-1] and len(debits) == 150
    assert rows[0].cost_credits == 1 and remainder == 0
    assert check_ledger(runtime.session_factory) == []


def test_per_call_rounding_is_unchanged_by_default(runtime: Database) -> None:
    billing = BillingService(runtime.session_factory, Settings(database_url=runtime.settings.database_url))
    user = make_user(runtime)
    model = catalog_model(runtime, "suno/bark")
    billing.grant(user, 100)
    st = billing.settle(billing.reserve(user, 2, "k"), UsageRecord(model=model, usage=Usage(), base_cost_usd=CALL))
    assert st.credits_charged == 2  # the specification's example: $0.003 -> 1 -> 2 credits at 100%
    with runtime.session() as s:
        assert s.scalar(select(AIUsageLog.accrued_nano)) is None


@pytest.fixture
def accrued(runtime: Database, accrual_billing: BillingService) -> tuple[Database, int, list[int]]:
    """Seven accrual calls of $0.003 at 100% (1.05 credits: 2 debited, 0.95 kept) on a clean ledger."""
    user = make_user(runtime)
    model = catalog_model(runtime, "suno/bark")
    accrual_billing.grant(user, 10)
    ids = []
    for i in range(7):
        hold = accrual_billing.reserve(user, 2, f"c{i}")
        ids.append(accrual_billing.settle(hold, UsageRecord(model=model, usage=Usage(), base_cost_usd=CALL)).usage_id)
    with runtime.session() as s:
        assert s.get(User, user.id).credit_remainder_nano == 950_000_000
    assert check_ledger(runtime.session_factory) == []
    return runtime, user.id, ids


def test_ledger_check_proves_the_remainder(accrued: tuple[Database, int, list[int]]) -> None:
    rt, uid, _ids = accrued
    with rt.session() as s:
        s.execute(update(User).where(User.id == uid).values(credit_remainder_nano=User.credit_remainder_nano + 1))
    [v] = check_ledger(rt.session_factory)
    assert v.check == "remainder" and v.user_id == uid and "950,000,001" in v.message


def test_ledger_check_names_a_free_call(accrued: tuple[Database, int, list[int]]) -> None:
    rt, uid, ids = accrued
    with rt.session() as s:  # the second call's credit is "forgotten": from then on calls ran unpaid
        s.execute(update(AIUsageLog).where(AIUsageLog.id == ids[0]).values(cost_credits=0))
        s.execute(update(User).where(User.id == uid).values(credit_remainder_nano=-50_000_000))
    found = [v for v in check_ledger(rt.session_factory) if v.check == "accrual"]
    assert found and found[0].row_id == ids[0] and "never paid for" in found[0].message


def test_ledger_check_names_a_call_that_consumed_nothing(accrued: tuple[Database, int, list[int]]) -> None:
    rt, _uid, ids = accrued
    with rt.session() as s:
        s.execute(update(AIUsageLog).where(AIUsageLog.id == ids[3]).values(accrued_nano=0))
    found = {(v.check, v.row_id) for v in check_ledger(rt.session_factory)}
    assert ("accrual", ids[3]) in found


def test_an_accrual_debit_is_not_refunded_on_its_own(
    accrued: tuple[Database, int, list[int]], accrual_billing: BillingService
) -> None:
    """Its credit paid for parts of several calls and for the fraction kept for the next ones: refunded, that fraction
    went on paying for calls nobody paid for (a review ran 21 calls at 0 credits after such a refund)."""
    rt, uid, ids = accrued
    with rt.session() as s:
        debit = s.scalar(select(AIUsageLog.transaction_id).where(AIUsageLog.id == ids[0]))
    assert accrual_billing.billed_by_accrual([debit]) == {debit}  # the Ledger page offers no refund for it
    with pytest.raises(InvalidInputError, match="billed by accrual rounding") as refused:
        accrual_billing.refund(debit, "goodwill")
    assert "Give credits back with a grant instead" in str(refused.value)
    with rt.session() as s:
        assert s.get(User, uid).credit_remainder_nano == 950_000_000  # nothing moved
    assert check_ledger(rt.session_factory) == []
