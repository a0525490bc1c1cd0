"""Overview (the home page): this month's revenue against last month's, credits outstanding, active users, the top
model and revenue against provider cost per day.

Every money figure comes from the same analytics queries as the Spend page and the command line (usage, endpoint
uptime and refunds, in the reporting time zone), so the two pages can never disagree; the credits outstanding come
from the ledger's cached balances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded
from core.analytics.copy import STALE_AFTER_SECONDS
from core.analytics.filters import SpendFilter, zone
from core.analytics.queries import SpendTotals
from core.billing.accounts import credits_outstanding
from core.money import credits_to_usd

if TYPE_CHECKING:
    from core.services.container import Services

DAYS_CHARTED = 90


@dataclass(frozen=True, kw_only=True)
class DaySpend:
    day: date  # in the reporting time zone
    credits: int
    revenue_usd: Decimal
    base_cost_usd: Decimal


@dataclass(frozen=True, kw_only=True)
class Overview:
    as_of: datetime  # naive UTC: the analytics copy's last sync
    tz: str
    month: date  # the first day of this month in the reporting time zone
    this_month: SpendTotals  # to date
    last_month: SpendTotals
    last_month_same_point: SpendTotals
    vs_last_month_pct: Decimal | None  # this month to date against last month to the same point, in percent
    credits_outstanding: int  # every positive balance together: prepaid and not yet spent
    credits_outstanding_usd: Decimal  # what the outstanding credits were bought for
    credits_overdrawn: int = 0  # owed by accounts below zero (not netted against the prepaid credits)
    accounts_overdrawn: int = 0
    active_users: int  # with spend this month
    users: int
    top_model: str | None  # provider/model with the most revenue this month
    top_model_credits: int
    daily: list[DaySpend]


class OverviewService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(Capability.VIEW_ALL_SPEND)
    def overview(self, caller: Caller, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS) -> Overview:
        """The figures; alerts due are evaluated first (at most once every ALERTS_EVERY_SECONDS per process), so the
        page's banners show a budget threshold passed without `alerts run`."""
        self._s.auto_alerts.evaluate_if_due()
        q = self._s.analytics.queries(sync_if_older_than=sync_if_older_than)
        kpis = q.kpis(SpendFilter())
        today = kpis.as_of.replace(tzinfo=UTC).astimezone(zone(q.tz)).date()
        top = q.breakdown("model", SpendFilter.dates(kpis.month, today, tz=q.tz), top=1).frame
        days = q.series("day", SpendFilter.dates(today - timedelta(days=DAYS_CHARTED - 1), today, tz=q.tz)).frame
        with self._s.db.session() as s:
            outstanding, users, overdrawn, accounts_overdrawn = credits_outstanding(s)
        return Overview(
            as_of=kpis.as_of,
            tz=q.tz,
            month=kpis.month,
            this_month=kpis.month_to_date,
            last_month=kpis.last_month,
            last_month_same_point=kpis.last_month_same_point,
            vs_last_month_pct=kpis.vs_last_month_pct,
            credits_outstanding=outstanding,
            credits_outstanding_usd=credits_to_usd(outstanding, self._s.settings.credit_usd),
            credits_overdrawn=overdrawn,
            accounts_overdrawn=accounts_overdrawn,
            active_users=kpis.active_users,
            users=users,
            top_model=f"{top['model_provider'].iloc[0]}/{top['key'].iloc[0]}" if len(top) else None,
            top_model_credits=int(top["credits"].iloc[0]) if len(top) else 0,
            daily=[
                DaySpend(
                    day=r["bucket"],
                    credits=int(r["credits"]),
                    revenue_usd=r["revenue_usd"],
                    base_cost_usd=r["base_cost_usd"],
                )
                for r in days.to_dict("records")
            ],
        )
