"""Everything the Spend page shows, in one call: KPIs, charts' tables, anomalies and a user's drill-down.

The page stays thin (widgets in, this out, draw); every table here is exact (Decimal money) and is what the page's
CSV and Parquet downloads contain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from core.analytics.filters import SpendFilter
from core.analytics.queries import CENT, OUTPUT_MEASURES, Kpis, SpendQueries, SpendResult, SpendTotals

TOP_N = 10
TRANSACTIONS_SHOWN = 500


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

    Two queries: the per-day, per-model series is summed here into the models table and the totals (exactly the
    breakdown by model and the totals the engine would give, one query each, saved)."""
    daily = q.series("day", f, split="model")
    frame = daily.frame
    keys = ["model", "model_name", "model_provider"]
    sums = [
        "requests",
        "failed",
        "credits",
        "base_cost_usd",
        "revenue_usd",
        "margin_usd",
        "rounding_uplift_usd",
        "cache_hits",
        "cache_saving_usd",
    ]
    groups: dict[tuple, list[Any]] = {}
    key_cols = list(zip(*(frame[c].tolist() for c in keys), strict=True))
    sum_cols = list(zip(*(frame[c].tolist() for c in sums), strict=True))
    for k, values in zip(key_cols, sum_cols, strict=True):
        acc = groups.get(k)
        if acc is None:
            groups[k] = list(values)
        else:
            for i, v in enumerate(values):
                acc[i] += v
    rows = []
    for k, values in groups.items():
        acc = dict(zip(sums, values, strict=True))
        base, revenue = Decimal(acc["base_cost_usd"]), Decimal(acc["revenue_usd"])
        markup = ((revenue / base - 1) * 100).quantize(CENT) if base > 0 else None
        rows.append({"key": k[0], **dict(zip(keys, k, strict=True)), **acc, "markup_pct": markup})
    rows.sort(key=lambda r: (-r["credits"], r["model"]))
    columns = ["key", *keys, *OUTPUT_MEASURES]
    models = pd.DataFrame(rows, columns=columns)
    for c in ("base_cost_usd", "revenue_usd", "margin_usd", "rounding_uplift_usd", "cache_saving_usd"):
        models[c] = [Decimal(v) for v in models[c]]
    total = {c: sum((r[c] for r in rows), Decimal(0) if c.endswith("_usd") else 0) for c in sums}
    base, revenue = total["base_cost_usd"], total["revenue_usd"]
    totals = SpendTotals(
        **total,
        markup_pct=((revenue / base - 1) * 100).quantize(CENT) if base > 0 else None,
        users=1 if rows else 0,
    )
    return UserDrill(
        user=user,
        totals=totals,
        models=SpendResult(models, daily.as_of, daily.tz),
        daily=daily,
        transactions=q.transactions(f, limit=TRANSACTIONS_SHOWN),
    )


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
