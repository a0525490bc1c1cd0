"""`check_ledger` passes on an exact ledger (the demo history, the service's own writes) and names each corruption."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.billing import BillingService, UsageRecord
from core.billing.ledger_check import check_ledger
from core.db import Database
from core.db.models import AIUsageLog, CreditHold, CreditTransaction, User, utcnow
from core.demo import write_demo_history
from core.usage import Usage
from tests.core.billing.conftest import catalog_model, make_user, record_for


def test_demo_history_passes(runtime: Database) -> None:
    write_demo_history(runtime, rows=3000, days=20, seed=5, end=datetime.now(UTC))
    assert check_ledger(runtime.session_factory) == []


@pytest.fixture
def small_ledger(runtime: Database) -> tuple[Database, BillingService, dict[str, int]]:
    """A user with a grant, a settled call, a failed call and a direct charge: a clean ledger to corrupt."""
    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    model = catalog_model(runtime, "gpt-4o")
    billing.grant(user, 100)
    st = billing.settle(billing.reserve(user, 5, "ok"), record_for(model, Usage(input_tokens=1000, output_tokens=500)))
    billing.release(
        billing.reserve(user, 5, "bad"),
        UsageRecord(model=model, usage=Usage(), base_cost_usd=Decimal(0), status="failed"),
    )
    charge = billing.charge(user, Decimal("0.04"), idempotency_key="c", description="x")
    assert check_ledger(runtime.session_factory) == []
    with runtime.session() as s:
        failed_id = s.scalar(select(AIUsageLog.id).where(AIUsageLog.status == "failed"))
    ids = {"user": user.id, "usage": st.usage_id, "debit": st.transaction.id, "charge": charge.id, "failed": failed_id}
    return runtime, billing, ids


def checks(rt: Database) -> set[str]:
    return {v.check for v in check_ledger(rt.session_factory)}


def test_cached_balance_drift_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        s.get(User, ids["user"]).credit_balance += 1
    [v] = check_ledger(rt.session_factory)
    assert v.check == "balance" and v.user_id == ids["user"] and "cached balance 97" in v.message


def test_broken_running_balance_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        s.get(CreditTransaction, ids["debit"]).balance_after += 5
    assert "running_balance" in checks(rt)


def test_usage_row_without_its_debit_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        s.get(AIUsageLog, ids["usage"]).transaction_id = None
    assert checks(rt) == {"usage_debit"}
    with rt.session() as s:
        row = s.get(AIUsageLog, ids["usage"])
        row.transaction_id = ids["debit"]
        row.cost_credits += 1  # charged 3 but the debit says 2
    assert checks(rt) == {"usage_debit"}


def test_charged_failed_call_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        s.get(AIUsageLog, ids["failed"]).cost_credits = 4
    assert checks(rt) == {"free_call_charged"}


def test_debit_paying_two_rows_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        s.execute(update(AIUsageLog).where(AIUsageLog.id == ids["failed"]).values(transaction_id=ids["debit"]))
    assert "debit_reused" in checks(rt)


def test_hold_both_held_and_settled_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, _b, _ids = small_ledger
    with rt.session() as s:
        hold = s.scalars(select(CreditHold).where(CreditHold.idempotency_key == "ok")).one()
        hold.status = "held"
    assert checks(rt) == {"hold"}
    with rt.session() as s:
        hold = s.scalars(select(CreditHold).where(CreditHold.idempotency_key == "ok")).one()
        hold.status, hold.transaction_id = "settled", None
    assert checks(rt) == {"hold"}


def test_unflagged_overdraft_and_wrong_sign_are_caught(
    small_ledger: tuple[Database, BillingService, dict[str, int]],
) -> None:
    rt, _b, ids = small_ledger
    with rt.session() as s:
        bal = s.get(User, ids["user"]).credit_balance
        s.add(
            CreditTransaction(
                user_id=ids["user"], amount=-(bal + 5), transaction_type="usage", balance_after=-5, created_at=utcnow()
            )
        )
        s.add(CreditTransaction(user_id=ids["user"], amount=-1, transaction_type="grant", balance_after=-6))
        s.get(User, ids["user"]).credit_balance = -6
    found = checks(rt)
    assert {"overdraft", "amount_sign"} <= found and "balance" not in found


def test_refund_above_its_debit_is_caught(small_ledger: tuple[Database, BillingService, dict[str, int]]) -> None:
    rt, billing, ids = small_ledger
    billing.refund(ids["charge"], "ok")
    assert check_ledger(rt.session_factory) == []
    with rt.session() as s:
        bal = s.get(User, ids["user"]).credit_balance
        s.add(
            CreditTransaction(
                user_id=ids["user"],
                amount=50,
                transaction_type="refund",
                balance_after=bal + 50,
                meta={"refund_of": ids["debit"]},
                idempotency_key="forged",
            )
        )
        s.get(User, ids["user"]).credit_balance = bal + 50
    [v] = check_ledger(rt.session_factory)
    assert v.check == "refund" and f"transaction {ids['debit']} debited 2" in v.message
