"""The Overview page's figures: every dollar derived in the engine from credits at the credit price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.demo import generate
from core.overview import overview
from core.runtime import Runtime


def test_overview_money_follows_the_credit_price(sqlite_runtime: Runtime) -> None:
    generate(sqlite_runtime, rows=2000, days=45, seed=2, end=datetime.now(UTC))
    with sqlite_runtime.session() as s:
        ov = overview(s, credit_usd=Decimal("0.04"))
    assert ov.daily and all(d.revenue_usd == Decimal(d.credits) * Decimal("0.04") for d in ov.daily)
    assert ov.credits_outstanding_usd == Decimal(ov.credits_outstanding) * Decimal("0.04")
    prev = ov.last_month_same_point.revenue_usd
    assert ov.vs_last_month == ((ov.this_month.revenue_usd - prev) / prev if prev else None)
