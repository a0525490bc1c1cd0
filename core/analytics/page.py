"""Everything the Spend page shows, in one call: KPIs, charts' tables, anomalies and a user's drill-down.

The page stays thin (widgets in, this out, draw); every table here is exact (Decimal money) and is what the page's
CSV and Parquet downloads contain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from core.analytics.filters import SpendFilter
from core.analytics.queries import Kpis, SpendQueries, SpendResult, SpendTotals

TOP_N = 10
TRANSACTIONS_SHOWN = 500
_drill_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spend-drill")


@dataclass(frozen=True, kw_only=True)
class UserDrill:
    user: str
    totals: SpendTotals  # of everything the filters keep for this user (the models table sums to it)
    models: SpendResult
    daily: SpendResult
    transactions: SpendResult  # newest first, at most TRANSACTIONS_SHOWN


@dataclass(frozen=True, kw_only=True)
class SpendPage:
    as_of: datetime  # naive UTC: the oldest as-of of the answers below (they come from one store version or later)
    tz: str
    since: date
    until: date
    kpis: Kpis
    daily_by_provider: SpendResult
    top_users: SpendResult
    top_models: SpendResult
    provider_models: SpendResult
    daily_totals: SpendResult  # margin and rounding uplift over time
    anomalies: SpendResult
    drill: UserDrill | None


def user_drill(q: SpendQueries, f: SpendFilter, user: str) -> UserDrill:
    """One user's models, daily spend per model and newest transactions under filter `f` (which names the user).

    Two queries, run side by side: the per-day, per-model series (summed here into the models table and the totals,
    exactly what the breakdown by model and the totals would give) and the newest transactions."""
    newest = _drill_pool.submit(q.transactions, f, limit=TRANSACTIONS_SHOWN)
    daily, models, totals = q.split_series("day", f, "model")
    transactions = newest.result()
    totals = replace(totals, users=1 if len(models.frame) else 0)
    return UserDrill(user=user, totals=totals, models=models, daily=daily, transactions=transactions)


def default_range(q: SpendQueries, now: datetime | None = None, days: int = 30) -> tuple[date, date]:
    """The last `days` local days up to today (the store's as-of day in the reporting time zone)."""
    from datetime import UTC

    from core.analytics.filters import zone

    at = now or q.as_of()
    today = at.replace(tzinfo=UTC).astimezone(zone(q.tz)).date()
    return today - timedelta(days=days - 1), today


def spend_page(
    q: SpendQueries,
    *,
    since: date,
    until: date,
    users: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    providers: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    include_sandbox: bool = False,
    drill_user: str | None = None,
    now: datetime | None = None,
) -> SpendPage:
    """The Spend page's data for local days `since`..`until` in the reporting time zone and the given filters."""
    f = SpendFilter.dates(
        since,
        until,
        tz=q.tz,
        users=users,
        models=models,
        providers=providers,
        categories=categories,
        statuses=statuses,
        include_sandbox=include_sandbox,
    )
    kpis = q.kpis(f, now=now)
    results = {
        "daily_by_provider": q.series("day", f, split="provider"),
        "top_users": q.breakdown("user", f, top=TOP_N),
        "top_models": q.breakdown("model", f, top=TOP_N),
        "provider_models": q.breakdown(["provider", "model"], f),
        "daily_totals": q.series("day", f),
        "anomalies": q.anomalies(f, now=now),
    }
    drill = user_drill(q, replace(f, users=(drill_user,)), drill_user) if drill_user else None
    stamps = [kpis.as_of, *(r.as_of for r in results.values())]
    return SpendPage(as_of=min(stamps), tz=q.tz, since=since, until=until, kpis=kpis, drill=drill, **results)
