"""Spend: who and what costs most, how it trends, what margin it leaves; the Spend page in one call, and the questions
the command line asks. Answered by the analytics copy (DuckDB).

Finance and admins see everyone's spend; everybody else sees only their own: their filter is narrowed to themselves,
and asking for someone else's is refused. A team's owner also sees the team's spend (`team_page`): its current members'
(issue 15: "a team has an owner who sees the team's spend"), read from the system of record at each call, so someone
who leaves the team leaves the owner's view at once. Every table here is exact (Decimal money) and is what the page's
CSV and Parquet downloads contain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from core.access import Caller, Capability, SystemCaller, guarded, require, sees_everyone
from core.analytics.copy import STALE_AFTER_SECONDS, UP_TO_DATE
from core.analytics.export import chart_frame, to_csv_bytes, to_parquet_bytes
from core.analytics.filters import SpendFilter, zone
from core.analytics.queries import (
    GRAINS,
    FilterOptions,
    Kpis,
    MonthForecast,
    SpendQueries,
    SpendResult,
    SpendTotals,
)
from core.analytics.sync import Progress, SyncReport
from core.analytics.usage import ProviderUsage, UserUsage
from core.budgets.teams import TeamDirectory
from core.catalog.lookup import list_models
from core.db.models import CATEGORIES, ApiKey, User
from core.errors import InvalidInputError, PermissionDeniedError

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "FINANCE_COLUMNS",
    "GRAINS",
    "PRESETS",
    "STALE_AFTER_SECONDS",
    "UP_TO_DATE",
    "FilterOptions",
    "Kpis",
    "MonthForecast",
    "PageQuery",
    "ProviderUsage",
    "SpendFilter",
    "SpendPage",
    "SpendResult",
    "SpendService",
    "SpendTotals",
    "SyncReport",
    "TeamScope",
    "UserDrill",
    "UserUsage",
    "bucket_start",
    "chart_frame",
    "preset_range",
    "to_csv_bytes",
    "to_parquet_bytes",
    "zone",
]

TRANSACTIONS_SHOWN = 500
# A user filter that keeps nobody (no user has id -1), as `SpendFilter` resolves an email nobody has: the filter of a
# team without members, whose spend is nothing (an empty filter would mean everyone).
NOBODY = (-1,)
# Finance's figures about a person's spend: what the providers cost, the margin and markup earned on them, the
# rounding uplift, the provider cost the cache avoided. Someone who sees only their own spend (or their team's) gets
# none of them: the tables lose these columns and the totals carry zero (None for the markup).
FINANCE_COLUMNS = ("base_cost_usd", "margin_usd", "markup_pct", "rounding_uplift_usd", "cache_saving_usd")
# The Spend page's date presets, in the order it offers them ("custom": the days picked by hand).
PRESETS = ("today", "7 days", "30 days", "month to date", "last month", "custom")
_drill_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spend-drill")


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The local days (first, last, both included) a preset covers when today is `today` ("custom" has none)."""
    if preset == "today":
        return today, today
    if preset in ("7 days", "30 days"):
        return today - timedelta(days=int(preset.split()[0]) - 1), today
    if preset == "month to date":
        return today.replace(day=1), today
    if preset == "last month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise InvalidInputError(f"Unknown date preset {preset!r}; choose from {', '.join(PRESETS[:-1])}.")


def bucket_start(day: date, grain: str) -> date:
    """The first day of the day, ISO week (Monday) or month holding `day`: the bucket `series` files it under."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise InvalidInputError(f"Unknown time bucket {grain!r}; choose from {', '.join(GRAINS)}.")


def counted_days(frame: pd.DataFrame, grain: str, since: date, until: date) -> pd.DataFrame:
    """A per-week or per-month table with the days each row actually counts (`counted_from`, `counted_to`): a week or
    month the period starts or ends inside of counts only its days within `since`..`until`, as the charts' captions
    say. A per-day table (or one without buckets) is returned as it is."""
    if grain == "day" or "bucket" not in frame.columns or frame.empty:
        return frame
    starts = [pd.Timestamp(b).date() for b in frame["bucket"]]
    return frame.assign(
        counted_from=[max(b, since) for b in starts],
        counted_to=[min(_next_bucket(b, grain) - timedelta(days=1), until) for b in starts],
    )


def _next_bucket(start: date, grain: str) -> date:
    """The first day of the bucket after the one starting on `start`."""
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _every_bucket(r: SpendResult, first: date, last: date, grain: str) -> SpendResult:
    """The series (one row per bucket with spend) with a zero row for each bucket from `first`'s to `last`'s without
    any: a line drawn through the spending days alone reads as spend on every day between them."""
    frame = r.frame
    if frame.empty:
        return r
    sample = frame.iloc[0]
    zero = {
        c: Decimal(0) if isinstance(v, Decimal) else 0 if isinstance(v, int | np.integer) else None
        for c, v in sample.items()
        if c != "bucket"
    }
    have = {pd.Timestamp(b).date() for b in frame["bucket"]}
    missing = []
    b = bucket_start(first, grain)
    while b <= last:
        if b not in have:
            missing.append({"bucket": b, **zero})
        b = _next_bucket(b, grain)
    if not missing:
        return r
    filled = pd.concat([frame, pd.DataFrame(missing, columns=frame.columns)], ignore_index=True)
    filled["bucket"] = [pd.Timestamp(v).date() for v in filled["bucket"]]
    filled = filled.sort_values("bucket", ignore_index=True).astype(frame.dtypes.to_dict())
    return replace(r, frame=filled)


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
    grain: str  # the series' buckets: day, week (ISO, from Monday) or month, in the reporting time zone
    # the last bucket when the period is still running in it (today's day, this week or month): not yet complete,
    # so a chart must not draw it as a drop; None when every bucket shown is complete
    partial_bucket: date | None
    finance: bool  # whether the margin, provider cost and markup figures are in (finance and admins only)
    kpis: Kpis
    totals: SpendTotals  # of everything the filters keep in the period (the tables sum to it)
    # calls the filters keep but the sandbox switch hides, when the period shows nothing: the empty state says so
    hidden_sandbox_requests: int
    series_by_provider: SpendResult  # per bucket and provider
    top_users: SpendResult  # every user with spend, most credits first
    top_models: SpendResult  # every model with spend, most credits first
    top_teams: SpendResult  # spend grouped by each user's team now ("(no team)" for the rest)
    top_keys: SpendResult  # spend per API key ("(no key)": the Playground and the command line)
    provider_models: SpendResult
    series_totals: SpendResult  # per bucket: margin, rounding uplift, provider cost (or credits, for one's own view)
    anomalies: SpendResult
    drill: UserDrill | None
    transactions: SpendResult | None  # one's own newest calls on one's own view (no drill-down into oneself), else None
    balance: int | None  # one's own credit balance on one's own spend view


def user_drill(q: SpendQueries, f: SpendFilter, user: str, grain: str = "day") -> UserDrill:
    """One user's models, spend per bucket and model, and newest transactions under filter `f` (which names the user).

    Two queries, run side by side: the per-bucket, per-model series (summed here into the models table and the
    totals, exactly what the breakdown by model and the totals would give) and the newest transactions."""
    newest = _drill_pool.submit(q.transactions, f, limit=TRANSACTIONS_SHOWN)
    daily, models, totals = q.split_series(grain, f, "model")
    transactions = newest.result()
    totals = replace(totals, users=1 if len(models.frame) else 0)
    return UserDrill(user=user, totals=totals, models=models, daily=daily, transactions=transactions)


def default_range(q: SpendQueries, now: datetime | None = None, days: int = 30) -> tuple[date, date]:
    """The last `days` local days up to today (the store's as-of day in the reporting time zone)."""
    at = now or q.as_of()
    today = at.replace(tzinfo=UTC).astimezone(zone(q.tz)).date()
    return today - timedelta(days=days - 1), today


@dataclass(frozen=True, kw_only=True)
class PageQuery:
    """What the Spend page asks: local days `since`..`until` (reporting time zone), the filters, whose drill-down."""

    since: date
    until: date
    users: tuple[str, ...] = ()
    user_ids: tuple[int, ...] = ()  # also restricts to these users (a team's members); empty: no restriction
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    include_sandbox: bool = False
    api_keys: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    drill_user: str | None = None
    grain: str = "day"  # the series' buckets: day, week or month

    def filter(self, tz: str) -> SpendFilter:
        return SpendFilter.dates(
            self.since,
            self.until,
            tz=tz,
            users=self.users,
            user_ids=self.user_ids,
            models=self.models,
            providers=self.providers,
            categories=self.categories,
            statuses=self.statuses,
            include_sandbox=self.include_sandbox,
            api_keys=self.api_keys,
            sources=self.sources,
        )


def _summed(by_user: pd.DataFrame) -> SpendTotals:
    """The totals of a breakdown by user (which partitions the rows the filter keeps)."""
    base = sum(by_user["base_cost_usd"], Decimal(0))
    revenue = sum(by_user["revenue_usd"], Decimal(0))
    return SpendTotals(
        requests=int(by_user["requests"].sum()),
        failed=int(by_user["failed"].sum()),
        credits=int(by_user["credits"].sum()),
        base_cost_usd=base,
        revenue_usd=revenue,
        margin_usd=revenue - base,
        markup_pct=((revenue / base - 1) * 100).quantize(Decimal("0.01")) if base > 0 else None,
        rounding_uplift_usd=sum(by_user["rounding_uplift_usd"], Decimal(0)),
        cache_hits=int(by_user["cache_hits"].sum()),
        cache_saving_usd=sum(by_user["cache_saving_usd"], Decimal(0)),
        users=len(by_user),
    )


def _withheld(t: SpendTotals) -> SpendTotals:
    return replace(
        t,
        base_cost_usd=Decimal(0),
        margin_usd=Decimal(0),
        markup_pct=None,
        rounding_uplift_usd=Decimal(0),
        cache_saving_usd=Decimal(0),
    )


def _without_finance(r: SpendResult) -> SpendResult:
    return replace(r, frame=r.frame.drop(columns=[c for c in FINANCE_COLUMNS if c in r.frame.columns]))


def _forecast_withheld(f: MonthForecast) -> MonthForecast:
    return replace(
        f, base_cost_to_date_usd=Decimal(0), base_cost_forecast_usd=Decimal(0), margin_forecast_usd=Decimal(0)
    )


def _kpis_withheld(k: Kpis) -> Kpis:
    return replace(
        k,
        month_to_date=_withheld(k.month_to_date),
        last_month_same_point=_withheld(k.last_month_same_point),
        last_month=_withheld(k.last_month),
        forecast=_forecast_withheld(k.forecast),
    )


def spend_page(
    q: SpendQueries, query: PageQuery, *, now: datetime | None = None, finance: bool = True, balance: int | None = None
) -> SpendPage:
    """The Spend page's data for `query`; without `finance`, one's own (or one's team's) view: no margin, provider
    cost or markup. With a `balance` (one's own view), one's newest calls too, in place of a drill-down."""
    if query.grain not in GRAINS:
        raise InvalidInputError(f"Unknown time bucket {query.grain!r}; choose from {', '.join(GRAINS)}.")
    f = query.filter(q.tz)
    kpis = q.kpis(f, now=now)
    results = {
        "series_by_provider": q.series(query.grain, f, split="provider"),
        "top_users": q.breakdown("user", f),
        "top_models": q.breakdown("model", f),
        "top_teams": q.breakdown("team", f),
        "top_keys": q.breakdown("api_key", f),
        "provider_models": q.breakdown(["provider", "model"], f),
        "series_totals": q.series(query.grain, f),
        "anomalies": q.anomalies(f, now=now),
    }
    totals = _summed(results["top_users"].frame)  # every user's row: the period's totals, without another query
    hidden = 0
    if not query.include_sandbox and not totals.requests and not totals.credits:
        hidden = q.totals(replace(f, include_sandbox=True))[0].requests
    who = query.drill_user
    drill = user_drill(q, replace(f, users=(who,)), who, query.grain) if who else None
    transactions = None if finance or balance is None else q.transactions(f, limit=TRANSACTIONS_SHOWN)
    stamps = [kpis.as_of, *(r.as_of for r in results.values())]
    as_of = min(stamps)
    today = (now or as_of).replace(tzinfo=UTC).astimezone(zone(q.tz)).date()
    running = bucket_start(today, query.grain)
    partial = running if query.since <= today <= query.until else None
    results["series_totals"] = _every_bucket(
        results["series_totals"], query.since, min(query.until, today), query.grain
    )  # drawn as lines: a day without spend is a zero, not a line on to the next day with some
    if not finance:
        results = {k: _without_finance(r) for k, r in results.items()}
        transactions = _without_finance(transactions) if transactions is not None else None
        if drill is not None:
            drill = replace(
                drill,
                totals=_withheld(drill.totals),
                models=_without_finance(drill.models),
                daily=_without_finance(drill.daily),
                transactions=_without_finance(drill.transactions),
            )
        totals = _withheld(totals)
        kpis = _kpis_withheld(kpis)
    return SpendPage(
        as_of=as_of,
        tz=q.tz,
        since=query.since,
        until=query.until,
        grain=query.grain,
        partial_bucket=partial,
        finance=finance,
        kpis=kpis,
        totals=totals,
        hidden_sandbox_requests=hidden,
        drill=drill,
        transactions=transactions,
        balance=None if finance else balance,
        **results,
    )


@dataclass(frozen=True, kw_only=True)
class TeamScope:
    """A team whose spend the caller may see, with its members now (the emails its spend view covers)."""

    id: int
    name: str
    owner_email: str | None
    members: tuple[str, ...]  # emails, sorted


class SpendService:
    def __init__(self, services: Services) -> None:
        self._s = services
        self._teams = TeamDirectory(services.db.session_factory)

    # ---- scoping -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _scoped(caller: Caller, f: SpendFilter, *also: str | None) -> SpendFilter:
        """`f` as `caller` may ask it: everyone's for finance and admins; otherwise narrowed to the caller, and a
        question naming anybody else is refused."""
        if sees_everyone(caller):
            return f
        me = caller.email, caller.user_id  # type: ignore[union-attr]
        asked = {u.strip().lower() for u in (*f.users, *(a for a in also if a))} - {me[0]}
        if asked or set(f.user_ids) - {me[1]}:
            require(caller, Capability.VIEW_ALL_SPEND)
        return replace(f, users=(me[0],), user_ids=())

    def _checked(self, caller: Caller, f: SpendFilter) -> SpendFilter:
        """`_scoped`, then refuse a filter value that names nothing: an unknown user, model, provider, category or API
        key is a mistake to report (saying what exists), not an empty answer."""
        f = self._scoped(caller, f)
        if not (f.users or f.models or f.providers or f.categories or f.api_keys):
            return f
        unknown_category = [c for c in f.categories if c not in CATEGORIES]
        if unknown_category:
            raise InvalidInputError(f"Unknown category {unknown_category[0]!r}; choose from {', '.join(CATEGORIES)}.")
        with self._s.db.session() as s:
            wanted = {u.strip().lower() for u in f.users}
            found = set(s.scalars(select(func.lower(User.email)).where(func.lower(User.email).in_(wanted))))
            if wanted - found:
                raise InvalidInputError(
                    f"Unknown user {sorted(wanted - found)[0]!r}: nobody has that email; "
                    "the Ledger page and `python -m core users list` show who exists."
                )
            catalog = list_models(s, include_inactive=True)
            missing_keys = set(f.api_keys) - set(s.scalars(select(ApiKey.id).where(ApiKey.id.in_(f.api_keys))))
        providers = sorted({m.provider for m in catalog})
        bad_provider = [p for p in f.providers if p not in providers]
        if bad_provider:
            raise InvalidInputError(f"Unknown provider {bad_provider[0]!r}; the catalog has: {', '.join(providers)}.")
        models = {m.model_id for m in catalog}
        bad_model = [m for m in f.models if m not in models]
        if bad_model:
            raise InvalidInputError(
                f"Unknown model {bad_model[0]!r}: it is not in the catalog; `python -m core models list` shows the "
                "choices."
            )
        if missing_keys:
            raise InvalidInputError(
                f"Unknown API key {min(missing_keys)}; `python -m core keys list` shows the keys and their ids."
            )
        return f

    def _queries(self, sync_if_older_than: float | None) -> SpendQueries:
        return self._s.analytics.queries(sync_if_older_than=sync_if_older_than)

    # ---- the store ---------------------------------------------------------------------------------------------------
    @guarded(None)
    def sync(
        self,
        caller: Caller,
        *,
        full: bool = False,
        max_age_seconds: float | None = None,
        progress: Progress | None = None,
    ) -> SyncReport:
        """Copy new usage and ledger rows into the analytics store (only when older than `max_age_seconds`, if
        given); discloses nobody's spend, so anyone may ask for fresh figures."""
        return self._s.analytics.sync(full=full, max_age_seconds=max_age_seconds, progress=progress)

    @guarded(None)
    def store_version(self, caller: Caller) -> str:
        """Identifies the store's current contents: a cache key for pages (a new sync means new answers)."""
        return self._s.analytics.store.version_key()

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def options(self, caller: Caller) -> FilterOptions:
        """What the filters offer; the user list is the caller alone unless they may see everyone's spend."""
        opts = self._queries(None).options()
        if sees_everyone(caller):
            return opts
        me = caller.email  # type: ignore[union-attr]
        mine = tuple(u for u in opts.users if u[0] == me)
        return replace(opts, users=mine, api_keys=tuple(k for k in opts.api_keys if k[2] == me))

    @guarded(None)
    def default_range(self, caller: Caller, days: int = 30) -> tuple[date, date]:
        return default_range(self._queries(None), days=days)

    # ---- the page ----------------------------------------------------------------------------------------------------
    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def page(
        self,
        caller: Caller,
        query: PageQuery,
        *,
        sync_if_older_than: float | None = None,
        now: datetime | None = None,
    ) -> SpendPage:
        """Everything the Spend page shows for `query`: KPIs, the charts' tables, anomalies and, with a drill user,
        that user's drill-down."""
        scoped = self._scoped(caller, SpendFilter(users=query.users, user_ids=query.user_ids), query.drill_user)
        narrowed = replace(query, users=scoped.users, user_ids=scoped.user_ids)
        if sees_everyone(caller):
            return spend_page(self._queries(sync_if_older_than), narrowed, now=now)
        mine = self._s.users.get(caller, caller.user_id)  # type: ignore[union-attr]
        own = replace(narrowed, drill_user=None)
        return spend_page(self._queries(sync_if_older_than), own, now=now, finance=False, balance=mine.credit_balance)

    # ---- teams -------------------------------------------------------------------------------------------------------
    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def teams(self, caller: Caller) -> list[TeamScope]:
        """The teams whose spend the caller may see: every team for finance and admins, the teams one owns for
        everybody else (none for most people)."""
        everyone = sees_everyone(caller)
        return [
            TeamScope(
                id=t.id,
                name=t.name,
                owner_email=t.owner_email,
                members=tuple(m.email for m in self._teams.members(t.id)),
            )
            for t in self._teams.list_teams()
            if everyone or t.owner_id == caller.user_id  # type: ignore[union-attr]
        ]

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def team_page(
        self,
        caller: Caller,
        team: int | str,
        query: PageQuery,
        *,
        sync_if_older_than: float | None = None,
        now: datetime | None = None,
    ) -> SpendPage:
        """The Spend page over one team: its current members' spend, within the query's own filters. For finance and
        admins, and for the team's owner, who may name (filter on, drill into) only the team's members."""
        found = self._teams.get(team)
        owner = not isinstance(caller, SystemCaller) and found.owner_id == caller.user_id
        if not sees_everyone(caller) and not owner:
            raise PermissionDeniedError(
                f"Only team {found.name}'s owner, finance and admins see its spend; ask an admin if you need to."
            )
        members = self._teams.members(found.id)
        emails = {m.email for m in members}
        if not sees_everyone(caller):
            outside = {u.strip().lower() for u in (*query.users, query.drill_user or "") if u} - emails
            if outside:
                raise PermissionDeniedError(
                    f"{sorted(outside)[0]} is not in team {found.name}: as its owner you see only its members' spend."
                )
        ids = {m.user_id for m in members}
        if query.user_ids:
            ids &= set(query.user_ids)
        narrowed = replace(query, user_ids=tuple(sorted(ids)) or NOBODY)
        if sees_everyone(caller):
            return spend_page(self._queries(sync_if_older_than), narrowed, now=now)
        return spend_page(self._queries(sync_if_older_than), narrowed, now=now, finance=False)

    # ---- the command line's questions --------------------------------------------------------------------------------
    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def breakdown(
        self,
        caller: Caller,
        by: str | list[str],
        f: SpendFilter,
        *,
        top: int | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> SpendResult:
        result = self._queries(sync_if_older_than).breakdown(by, self._checked(caller, f), top=top)
        return result if sees_everyone(caller) else _without_finance(result)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def series(
        self,
        caller: Caller,
        grain: str,
        f: SpendFilter,
        *,
        split: str | None = None,
        tz: str | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> SpendResult:
        result = self._queries(sync_if_older_than).series(grain, self._checked(caller, f), split=split, tz=tz)
        return result if sees_everyone(caller) else _without_finance(result)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def kpis(
        self, caller: Caller, f: SpendFilter, *, tz: str | None = None, sync_if_older_than: float | None = None
    ) -> Kpis:
        kpis = self._queries(sync_if_older_than).kpis(self._checked(caller, f), tz=tz)
        return kpis if sees_everyone(caller) else _kpis_withheld(kpis)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def forecast(
        self,
        caller: Caller,
        f: SpendFilter,
        *,
        tz: str | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> MonthForecast:
        forecast = self._queries(sync_if_older_than).forecast(self._checked(caller, f), tz=tz)
        return forecast if sees_everyone(caller) else _forecast_withheld(forecast)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def anomalies(
        self,
        caller: Caller,
        f: SpendFilter,
        *,
        days: int = 30,
        tz: str | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> SpendResult:
        return self._queries(sync_if_older_than).anomalies(self._checked(caller, f), days=days, tz=tz)

    # ---- the specification's per-user questions ----------------------------------------------------------------------
    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def total_usage(
        self, caller: Caller, user: int | str, days: int = 30, *, include_sandbox: bool = False
    ) -> UserUsage:
        return self._s.billing.get_total_usage(user, days, include_sandbox=include_sandbox)

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def usage_by_provider(
        self, caller: Caller, user: int | str, days: int = 30, *, include_sandbox: bool = False
    ) -> list[ProviderUsage]:
        return self._s.billing.get_usage_by_provider(user, days, include_sandbox=include_sandbox)
