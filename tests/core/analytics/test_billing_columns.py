"""What Optimize and the pricing lab read from the store arrives exact, from SQLite and PostgreSQL: each call's markup
(fractional ones included), its request fingerprint, its accrued nano-credits, and an uptime debit's markup."""

from __future__ import annotations

from decimal import Decimal

from core.billing import BillingService, UsageRecord
from core.config import Settings
from core.db import Database
from core.usage import Usage
from tests.core.billing.conftest import catalog_model, make_user
from tests.support.analytics import store_for, sync_store

FP = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_markups_fingerprints_and_accruals_arrive_exact(runtime: Database) -> None:
    model = catalog_model(runtime, "suno/bark")
    per_call = BillingService(runtime.session_factory, runtime.settings)
    accrual = BillingService(
        runtime.session_factory, Settings(database_url=runtime.settings.database_url, rounding_policy="accrual")
    )
    third = make_user(runtime, "third@example.com", markup="33.3333")
    half = make_user(runtime, "half@example.com", markup="37.5")
    for u in (third, half):
        per_call.grant(u, 100)
    call = UsageRecord(model=model, usage=Usage(), base_cost_usd=Decimal("0.003"), request_fingerprint=FP)
    per_call.settle(per_call.reserve(third, 2, "a"), call)
    accrual.settle(accrual.reserve(half, 2, "b"), call)
    per_call.charge(
        half, Decimal("0.60"), idempotency_key="u", description="uptime", kind="endpoint_uptime", metadata={"x": 1}
    )
    sync_store(runtime)
    con = store_for(runtime).connect()
    rows = con.execute(
        "SELECT user_id, markup_bp, request_fp, accrued_nano, cost_credits FROM ai_usage_log ORDER BY id"
    ).fetchall()
    uptime = con.execute("SELECT markup_bp, credits FROM ledger_spend WHERE kind = 'endpoint_uptime'").fetchall()
    con.close()
    fp64 = int(FP[:16], 16)
    # per call: 1 base credit x 1.333333 -> 2; accrual: 0.003 / 0.04 x 1.375 = 0.103125 credits, 1 debited
    assert rows == [(third.id, 333_333, fp64, None, 2), (half.id, 375_000, fp64, 103_125_000, 1)]
    assert uptime == [(375_000, 21)]  # $0.60 = 15 credits, x 1.375 = 20.625 -> 21
