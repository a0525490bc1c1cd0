"""A user's usage totals over a window, straight from `ai_usage_log` (the analytics store may serve them later)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, func, select

from core.billing.ledger_sql import usage_log
from core.billing.types import ProviderUsage, UsageTotals


def total_usage(conn: Connection, user_id: int, days: int, since: datetime) -> UsageTotals:
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(usage_log.c.cost_credits), 0),
            func.coalesce(func.sum(usage_log.c.base_cost_usd), 0),
            func.coalesce(func.sum(usage_log.c.cost_usd), 0),
            func.count().filter(usage_log.c.status != "success"),
        ).where(usage_log.c.user_id == user_id, usage_log.c.created_at >= since)
    ).one()
    return UsageTotals(
        user_id=user_id,
        days=days,
        requests=int(row[0]),
        failed=int(row[4]),
        credits=int(row[1]),
        base_cost_usd=Decimal(row[2]),
        cost_usd=Decimal(row[3]),
    )


def usage_by_provider(conn: Connection, user_id: int, since: datetime) -> list[ProviderUsage]:
    credits_sum = func.coalesce(func.sum(usage_log.c.cost_credits), 0)
    rows = conn.execute(
        select(
            usage_log.c.provider,
            func.count(),
            credits_sum,
            func.coalesce(func.sum(usage_log.c.base_cost_usd), 0),
            func.coalesce(func.sum(usage_log.c.cost_usd), 0),
        )
        .where(usage_log.c.user_id == user_id, usage_log.c.created_at >= since)
        .group_by(usage_log.c.provider)
        .order_by(credits_sum.desc(), usage_log.c.provider)
    ).all()
    return [
        ProviderUsage(
            provider=r[0], requests=int(r[1]), credits=int(r[2]), base_cost_usd=Decimal(r[3]), cost_usd=Decimal(r[4])
        )
        for r in rows
    ]
