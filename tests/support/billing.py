"""Ledger set-ups shared by tests."""

from __future__ import annotations

from decimal import Decimal

from core.billing import BillingService


def overdraw_by_uptime(billing: BillingService, who: int | str, credits: int) -> None:
    """Take `who` `credits` below what they had the way production does: delivered endpoint uptime (0% markup),
    posted anyway."""
    billing.charge(
        who,
        Decimal("0.04") * credits,
        markup_pct=0,
        idempotency_key="uptime-1",
        description="endpoint uptime",
        kind="endpoint_uptime",
        allow_overdraft=True,
    )
