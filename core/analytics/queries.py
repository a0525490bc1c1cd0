"""`SpendQueries`: the finance questions, answered from the analytics store.

Measures (every grouping returns them; money as exact `Decimal`):
- requests: calls recorded (sum of `requests_count`; ledger rows add 0); failed: failed calls;
- credits: credits charged, net of refunds, endpoint uptime included;
- base_cost_usd: what the providers cost (sandbox rows carry a would-be cost and are excluded unless asked for);
- revenue_usd = credits x `credit_usd`; margin_usd = revenue - base cost;
- markup_pct = (revenue / base cost - 1) x 100, the effective markup (None without base cost);
- rounding_uplift_usd = sum over rows of ceil(base cost / credit_usd) x credit_usd - base cost: what rounding each
  call up to whole credits earns before the markup (part of the margin, shown apart from it);
- cache_hits and cache_saving_usd: responses served from the response cache and the provider cost they avoided (the
  recorded base cost of those rows, which base_cost_usd includes).

Time buckets are calendar days, ISO weeks (starting Monday) or months in the reporting time zone, DST included: rows
are first summed per UTC quarter hour (every offset in use is a whole number of quarter hours), then each quarter
hour is converted to local time with DuckDB's ICU time zones and summed into its local bucket.

Every answer carries `as_of`: the sync time of the store version it was read from (naive UTC), after which rows may
exist that it does not show.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from core.analytics.anomalies import THRESHOLD, find_anomalies
from core.analytics.filters import SpendFilter, local_midnight_utc, zone
from core.analytics.forecast import forecast_month
from core.analytics.schema import UNKNOWN
from core.analytics.store import AnalyticsStore
from core.errors import InvalidInputError

NANO = 10**9
CENT = Decimal("0.01")
GRAINS = ("day", "week", "month")

MEASURES_SQL = """
    sum(requests)::BIGINT AS requests,
    (count(*) FILTER (WHERE status = 'failed' AND kind = 'usage'))::BIGINT AS failed,
    sum(credits)::BIGINT AS credits,
    sum(base_nano)::BIGINT AS base_nano,
    sum((base_nano + ? - 1) // ?)::BIGINT AS base_credits,
    (count(*) FILTER (WHERE cache_hit))::BIGINT AS cache_hits,
    coalesce(sum(base_nano) FILTER (WHERE cache_hit), 0)::BIGINT AS cache_saving_nano
"""
RESUM_SQL = """
    sum(requests)::BIGINT AS requests, sum(failed)::BIGINT AS failed, sum(credits)::BIGINT AS credits,
    sum(base_nano)::BIGINT AS base_nano, sum(base_credits)::BIGINT AS base_credits,
    sum(cache_hits)::BIGINT AS cache_hits, sum(cache_saving_nano)::BIGINT AS cache_saving_nano
"""
MEASURE_NAMES = ("requests", "failed", "credits", "base_nano", "base_credits", "cache_hits", "cache_saving_nano")
OUTPUT_MEASURES = (
    "requests",
    "failed",
    "credits",
    "base_cost_usd",
    "revenue_usd",
    "margin_usd",
    "markup_pct",
    "rounding_uplift_usd",
    "cache_hits",
    "cache_saving_usd",
)


@dataclass(frozen=True)
class _Dim:
    column: str  # in the spend view
    select: tuple[tuple[str, str], ...]  # (output name, expression over g.k{i} / table alias a{i})
    join: str = ""  # with {i}


DIMENSIONS: dict[str, _Dim] = {
    "user": _Dim(
        "user_id",
        (
            ("user", "coalesce(a{i}.email, '(user ' || CAST(g.k{i} AS TEXT) || ')')"),
            ("user_name", "a{i}.name"),
            ("user_id", "g.k{i}"),
        ),
        "LEFT JOIN users a{i} ON a{i}.id = g.k{i}",
    ),
    "model": _Dim(
        "ai_model_id",
        (
            ("model", f"coalesce(a{{i}}.model_id, '{UNKNOWN}')"),
            ("model_name", "a{i}.model_name"),
            ("model_provider", "a{i}.provider"),
        ),
        "LEFT JOIN ai_models a{i} ON a{i}.id = g.k{i}",
    ),
    "provider": _Dim("provider", (("provider", "g.k{i}"),)),
    "category": _Dim("category", (("category", "g.k{i}"),)),
    "deployment_type": _Dim("deployment_type", (("deployment_type", "g.k{i}"),)),
    "kind": _Dim("kind", (("kind", "g.k{i}"),)),
    "status": _Dim("status", (("status", "g.k{i}"),)),
}


@dataclass(frozen=True)
class _Rows:
    names: list[str]
    rows: list[tuple[Any, ...]]

    def col(self, name: str) -> list[Any]:
        i = self.names.index(name)
        return [r[i] for r in self.rows]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.rows, columns=self.names)


@dataclass(frozen=True)
class _Meta:
    tz: str  # the daily rollup's time zone
    credit_nano: int  # and credit price


@dataclass(frozen=True)
class SpendResult:
    """A table of spend with the instant it is complete up to and the time zone its days are in."""

    frame: pd.DataFrame
    as_of: datetime  # naive UTC
    tz: str

    def records(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        df = self.frame if columns is None else self.frame[list(columns)]
        return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


@dataclass(frozen=True, kw_only=True)
class FilterOptions:
    users: tuple[tuple[str, str], ...]  # (email, name)
    models: tuple[tuple[str, str], ...]  # (model id, provider)
    providers: tuple[str, ...]
    categories: tuple[str, ...]
    deployment_types: tuple[str, ...]
    statuses: tuple[str, ...]
    first_day: date | None  # in the rollup's time zone
    last_day: date | None
    as_of: datetime


@dataclass(frozen=True, kw_only=True)
class SpendTotals:
    requests: int = 0
    failed: int = 0
    credits: int = 0
    base_cost_usd: Decimal = Decimal(0)
    revenue_usd: Decimal = Decimal(0)
    margin_usd: Decimal = Decimal(0)
    markup_pct: Decimal | None = None
    rounding_uplift_usd: Decimal = Decimal(0)
    cache_hits: int = 0
    cache_saving_usd: Decimal = Decimal(0)
    users: int = 0  # distinct users with any spend row


@dataclass(frozen=True, kw_only=True)
class MonthForecast:
    month: date  # first day of the month (reporting time zone)
    as_of: datetime
    tz: str
    revenue_to_date_usd: Decimal
    revenue_forecast_usd: Decimal
    revenue_low_usd: Decimal
    revenue_high_usd: Decimal
    base_cost_to_date_usd: Decimal
    base_cost_forecast_usd: Decimal
    margin_forecast_usd: Decimal
    method: str
    band: str
    daily: pd.DataFrame = field(repr=False)  # day, actual, predicted, low, high (revenue USD, floats for charts)


@dataclass(frozen=True, kw_only=True)
class Kpis:
    as_of: datetime
    tz: str
    month: date
    month_to_date: SpendTotals
    last_month_same_point: SpendTotals
    last_month: SpendTotals
    forecast: MonthForecast
    active_users: int  # distinct users with spend this month to date

    @property
    def vs_last_month_pct(self) -> Decimal | None:
        prev = self.last_month_same_point.revenue_usd
        if not prev:
            return None
        return ((self.month_to_date.revenue_usd - prev) / prev * 100).quantize(CENT)


def _usd(nano: Any) -> Decimal:
    """Whole nano-dollars -> exact USD with 9 places."""
    if nano is None or (isinstance(nano, float) and pd.isna(nano)):
        nano = 0
    return Decimal(int(nano)).scaleb(-9)


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, Decimal | int | str | bool | date):
        return v
    if isinstance(v, float) and pd.isna(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class SpendQueries:
    def __init__(self, store: AnalyticsStore, *, credit_usd: Decimal, reporting_tz: str = "UTC") -> None:
        zone(reporting_tz)
        self.store = store
        self.credit_usd = Decimal(credit_usd)
        self.credit_nano = int(self.credit_usd * NANO)
        if Decimal(self.credit_nano) != self.credit_usd * NANO or self.credit_nano <= 0:
            raise InvalidInputError("credit_usd must be a positive whole number of nano-dollars.")
        self.tz = reporting_tz
        self._state: dict[int, tuple[Any, ...]] = {}

    # ---- plumbing ------------------------------------------------------------------------------------------------
    def _query(self, build: Callable[[_Meta], tuple[str, list[Any]]]) -> tuple[_Rows, datetime]:
        """Read the published version's sync state, build the SQL for it, run it in the same cursor."""
        con, version = self.store.connect_versioned()
        try:
            state = self._state.get(version)
            if state is None:  # a version never changes: read its sync state once
                state = con.execute("SELECT synced_at, rollup_tz, rollup_credit_nano FROM sync_state").fetchall()[0]
                self._state = {version: state}
            synced_at, rollup_tz, rollup_nano = state
            sql, params = build(_Meta(rollup_tz, int(rollup_nano)))
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        finally:
            con.close()
        return _Rows(names, rows), self.store.as_of_version(version, synced_at)

    def _source(self, f: SpendFilter, meta: _Meta, tz: str | None = None) -> tuple[str, str, list[Any], str]:
        """(table, condition, parameters, measures SQL): the daily rollup when it can answer exactly (its time zone
        and credit price, whole local days), else the rows."""
        if meta.credit_nano == self.credit_nano and (tz is None or tz == meta.tz):
            days = f.day_range(meta.tz)
            if days is not None:
                where, params = f.where(days=days)
                return "daily_spend", where, params, RESUM_SQL
        where, params = f.where()
        return "spend", where, [self.credit_nano, self.credit_nano, *params], MEASURES_SQL

    def as_of(self) -> datetime:
        return self._query(lambda meta: ("SELECT 1", []))[1]

    def _tz(self, tz: str | None) -> str:
        name = tz or self.tz
        zone(name)
        return name

    def _finish(self, rows: _Rows, keys: list[str], extra: dict[str, list[Any]] | None = None) -> pd.DataFrame:
        """Key columns plus the measures, with revenue, margin, effective markup and rounding uplift (exact)."""
        c = self.credit_usd
        out: dict[str, list[Any]] = dict(extra or {})
        for k in keys:
            if k not in out:
                out[k] = rows.col(k)
        ints = {
            n: [int(v or 0) for v in rows.col(n)]
            for n in ("requests", "failed", "credits", "base_credits", "cache_hits")
        }
        base = [_usd(v) for v in rows.col("base_nano")]
        revenue = [Decimal(x) * c for x in ints["credits"]]
        out.update(
            requests=ints["requests"],
            failed=ints["failed"],
            credits=ints["credits"],
            base_cost_usd=base,
            revenue_usd=revenue,
            margin_usd=[r - b for r, b in zip(revenue, base, strict=True)],
            markup_pct=[
                ((r / b - 1) * 100).quantize(CENT) if b > 0 else None for r, b in zip(revenue, base, strict=True)
            ],
            rounding_uplift_usd=[Decimal(bc) * c - b for bc, b in zip(ints["base_credits"], base, strict=True)],
            cache_hits=ints["cache_hits"],
            cache_saving_usd=[_usd(v) for v in rows.col("cache_saving_nano")],
        )
        frame = pd.DataFrame(out, columns=[*keys, *OUTPUT_MEASURES])
        for n in ints:
            if n in frame.columns:
                frame[n] = frame[n].astype("int64")
        return frame

    def _totals(self, f: SpendFilter) -> tuple[SpendTotals, datetime]:
        def build(meta: _Meta) -> tuple[str, list[Any]]:
            table, where, params, measures = self._source(f, meta)
            # measures come first in the SQL text: their parameters (raw rows) are first in `params` too
            sql = f"SELECT {measures}, count(DISTINCT user_id)::BIGINT AS users FROM {table} WHERE {where}"  # noqa: S608
            return sql, params

        df, as_of = self._query(build)
        users = int(df.col("users")[0] or 0)
        row = self._finish(df, []).iloc[0]
        return (
            SpendTotals(
                requests=int(row["requests"]),
                failed=int(row["failed"]),
                credits=int(row["credits"]),
                base_cost_usd=row["base_cost_usd"],
                revenue_usd=row["revenue_usd"],
                margin_usd=row["margin_usd"],
                markup_pct=row["markup_pct"],
                rounding_uplift_usd=row["rounding_uplift_usd"],
                cache_hits=int(row["cache_hits"]),
                cache_saving_usd=row["cache_saving_usd"],
                users=users,
            ),
            as_of,
        )

    # ---- lookups -------------------------------------------------------------------------------------------------
    def find_user(self, user: int | str) -> int | None:
        """The id of a user given by id or email (case-insensitive), or None."""
        if isinstance(user, int) and not isinstance(user, bool):
            sql, params = "SELECT id FROM users WHERE id = ?", [user]
        else:
            sql, params = "SELECT id FROM users WHERE lower(email) = ?", [str(user).strip().lower()]
        df, _ = self._query(lambda meta: (sql, params))
        return int(df.rows[0][0]) if df.rows else None

    def options(self) -> FilterOptions:
        """What the filters can choose from: users and models with any spend row, providers, categories, the days
        covered (naive UTC instants)."""

        def build(meta: _Meta) -> tuple[str, list[Any]]:
            return (
                """
                WITH d AS (SELECT user_id, ai_model_id, provider, category, deployment_type, status, min(day) AS lo,
                                  max(day) AS hi
                           FROM daily_spend GROUP BY ALL)
                SELECT 'user' AS what, u.email AS value, u.name AS label FROM users u
                    WHERE u.id IN (SELECT user_id FROM d)
                UNION ALL SELECT DISTINCT 'model', m.model_id, m.provider FROM ai_models m
                    WHERE m.id IN (SELECT ai_model_id FROM d)
                UNION ALL SELECT DISTINCT 'provider', provider, NULL FROM d
                UNION ALL SELECT DISTINCT 'category', category, NULL FROM d
                UNION ALL SELECT DISTINCT 'deployment_type', deployment_type, NULL FROM d
                UNION ALL SELECT DISTINCT 'status', status, NULL FROM d
                UNION ALL SELECT 'first_day', CAST(min(lo) AS TEXT), NULL FROM d
                UNION ALL SELECT 'last_day', CAST(max(hi) AS TEXT), NULL FROM d
                ORDER BY 1, 2
                """,
                [],
            )

        rows, as_of = self._query(build)
        df = rows.frame()
        pick = {w: df[df["what"] == w] for w in df["what"].unique()}

        def values(w: str) -> tuple[str, ...]:
            return tuple(v for v in pick.get(w, df.iloc[0:0])["value"] if v is not None)

        def day(w: str) -> date | None:
            v = values(w)
            return date.fromisoformat(v[0]) if v else None

        users = pick.get("user", df.iloc[0:0])
        models = pick.get("model", df.iloc[0:0])
        return FilterOptions(
            users=tuple(zip(users["value"], users["label"], strict=True)),
            models=tuple(zip(models["value"], models["label"], strict=True)),
            providers=values("provider"),
            categories=values("category"),
            deployment_types=values("deployment_type"),
            statuses=values("status"),
            first_day=day("first_day"),
            last_day=day("last_day"),
            as_of=as_of,
        )

    # ---- questions -----------------------------------------------------------------------------------------------
    def totals(self, f: SpendFilter | None = None) -> tuple[SpendTotals, datetime]:
        """One row of measures for everything the filter keeps, and the as-of time."""
        return self._totals(f or SpendFilter())

    def breakdown(
        self, by: str | Sequence[str], f: SpendFilter | None = None, *, top: int | None = None
    ) -> SpendResult:
        """Spend grouped by one or more of DIMENSIONS, most credits first (ties by key); `top` keeps the first N."""
        dims = [by] if isinstance(by, str) else list(by)
        for d in dims:
            if d not in DIMENSIONS:
                raise InvalidInputError(f"Cannot group spend by {d!r}; choose from {', '.join(DIMENSIONS)}.")
        if top is not None and top <= 0:
            raise InvalidInputError("--top must be greater than zero.")
        f = f or SpendFilter()
        inner = ", ".join(f"{DIMENSIONS[d].column} AS k{i}" for i, d in enumerate(dims))
        outer, joins, keys = self._outer(dims)
        order = ", ".join(f"{DIMENSIONS[d].select[0][0]}" for d in dims)

        def build(meta: _Meta) -> tuple[str, list[Any]]:
            table, where, params, measures = self._source(f, meta)
            limit = " LIMIT ?" if top else ""
            sql = f"""
                WITH g AS (SELECT {inner}, {measures} FROM {table} WHERE {where} GROUP BY ALL)
                SELECT {outer}, {", ".join("g." + m for m in MEASURE_NAMES)} FROM g {joins}
                ORDER BY credits DESC, {order}{limit}
            """  # noqa: S608 - this module's column names and placeholders; every value is bound
            return sql, [*params, *([top] if top else [])]

        rows, as_of = self._query(build)
        return SpendResult(self._finish(rows, ["key", *keys], {"key": rows.col(keys[0])}), as_of, self.tz)

    def _outer(self, dims: list[str]) -> tuple[str, str, list[str]]:
        selects, joins, keys = [], [], []
        for i, d in enumerate(dims):
            dim = DIMENSIONS[d]
            for name, expr in dim.select:
                selects.append(f"{expr.format(i=i)} AS {name}")
                keys.append(name)
            if dim.join:
                joins.append(dim.join.format(i=i))
        return ", ".join(selects), " ".join(joins), keys

    def series(
        self,
        grain: str = "day",
        f: SpendFilter | None = None,
        *,
        split: str | None = None,
        tz: str | None = None,
    ) -> SpendResult:
        """Spend per local day, ISO week (Monday) or month, optionally split by a dimension; oldest first."""
        if grain not in GRAINS:
            raise InvalidInputError(f"Unknown time bucket {grain!r}; choose from {', '.join(GRAINS)}.")
        if split is not None and split not in DIMENSIONS:
            raise InvalidInputError(f"Cannot split spend by {split!r}; choose from {', '.join(DIMENSIONS)}.")
        tz = self._tz(tz)
        f = f or SpendFilter()
        k = f", {DIMENSIONS[split].column} AS k0" if split else ""
        kb = ", k0" if split else ""
        outer, joins, keys = self._outer([split]) if split else ("", "", [])
        final = f"""
            SELECT g.bucket{", " + outer if outer else ""}, {", ".join("g." + m for m in MEASURE_NAMES)}
            FROM g {joins}
            ORDER BY g.bucket, credits DESC{", " + keys[0] if keys else ""}
        """  # noqa: S608

        def build(meta: _Meta) -> tuple[str, list[Any]]:
            table, where, params, measures = self._source(f, meta, tz)
            if table == "daily_spend":
                sql = f"""
                    WITH g AS (
                        SELECT CAST(date_trunc('{grain}', day) AS DATE) AS bucket{k}, {measures}
                        FROM daily_spend WHERE {where} GROUP BY ALL
                    ) {final}"""  # noqa: S608
                return sql, params
            sql = f"""
                WITH q AS (
                    SELECT epoch_us(ts) // 900000000 AS q{k}, {measures} FROM spend WHERE {where} GROUP BY ALL
                ), g AS (
                    SELECT CAST(date_trunc('{grain}', timezone(?, make_timestamp(q * 900000000) AT TIME ZONE 'UTC'))
                                AS DATE) AS bucket{kb}, {RESUM_SQL}
                    FROM q GROUP BY ALL
                ) {final}"""  # noqa: S608
            return sql, [*params, tz]

        rows, as_of = self._query(build)
        buckets = [d if isinstance(d, date) else pd.Timestamp(d).date() for d in rows.col("bucket")]
        return SpendResult(self._finish(rows, ["bucket", *keys], {"bucket": buckets}), as_of, tz)

    def transactions(self, f: SpendFilter | None = None, *, limit: int = 1000, tz: str | None = None) -> SpendResult:
        """The spend rows themselves (calls, endpoint uptime debits, refunds), newest first, with local times."""
        tz = self._tz(tz)
        f = f or SpendFilter()
        # the newest rows first (a top-N on the narrow view), then names and local times for those rows only
        cols = (
            "ts, kind, user_id, provider, ai_model_id, category, status, sandbox, cache_hit, requests, credits, "
            "base_cost_usd, source_id, transaction_id"
        )

        def sql_for(g: SpendFilter) -> tuple[str, list[Any]]:
            where, params = g.where("s")
            sql = f"""
                WITH t AS (
                    SELECT {cols} FROM spend s WHERE {where}
                    ORDER BY s.ts DESC, s.kind, s.source_id DESC
                    LIMIT ?
                )
                SELECT timezone(?, t.ts AT TIME ZONE 'UTC') AS local_time, t.ts AS utc_time, t.kind,
                       coalesce(u.email, '(user ' || CAST(t.user_id AS TEXT) || ')') AS user,
                       t.provider, coalesce(m.model_id, '{UNKNOWN}') AS model, t.category, t.status, t.sandbox,
                       t.cache_hit, t.requests, t.credits, t.base_cost_usd, t.source_id, t.transaction_id
                FROM t LEFT JOIN users u ON u.id = t.user_id LEFT JOIN ai_models m ON m.id = t.ai_model_id
                ORDER BY t.ts DESC, t.kind, t.source_id DESC
            """  # noqa: S608
            return sql, [*params, int(limit), tz]

        # Rows are stored in time order, so the last day or week of a range is read without touching older row
        # groups; widen only when that window holds fewer than `limit` rows.
        windows: list[SpendFilter] = []
        if f.end is not None:
            for back in (timedelta(days=1), timedelta(days=7)):
                lo = f.end - back
                if f.start is None or lo > f.start:
                    windows.append(f.between(lo, f.end))
        windows.append(f)
        for g in windows:
            rows, as_of = self._query(lambda meta, g=g: sql_for(g))
            if len(rows.rows) >= limit:
                break
        df = rows.frame()
        df["revenue_usd"] = [Decimal(int(x)) * self.credit_usd for x in df["credits"]]
        df["margin_usd"] = [r - b for r, b in zip(df["revenue_usd"], df["base_cost_usd"], strict=True)]
        return SpendResult(df, as_of, tz)

    # ---- month to date and forecast ------------------------------------------------------------------------------
    def _now_local(self, now: datetime | None, tz: str, as_of: datetime) -> tuple[datetime, datetime]:
        """(now UTC naive, now local naive); `now` defaults to the store's as-of time."""
        now = now or as_of
        local = now.replace(tzinfo=UTC).astimezone(zone(tz)).replace(tzinfo=None)
        return now, local

    def forecast(
        self, f: SpendFilter | None = None, *, now: datetime | None = None, tz: str | None = None
    ) -> MonthForecast:
        """This month's revenue to date and forecast to month end (the filter's date range is ignored)."""
        tz = self._tz(tz)
        base = (f or SpendFilter()).between(None, None)
        as_of = self.as_of()
        now, local = self._now_local(now, tz, as_of)
        today = local.date()
        month_start = today.replace(day=1)
        month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        hist_start = min(month_start, today - timedelta(days=56))
        start_utc = local_midnight_utc(hist_start, tz)
        daily = self.series("day", base.between(start_utc, local_midnight_utc(today + timedelta(days=1), tz)), tz=tz)
        frame = daily.frame
        day_start = local_midnight_utc(today, tz)
        day_len = (local_midnight_utc(today + timedelta(days=1), tz) - day_start).total_seconds()
        fraction = min(max((now - day_start).total_seconds() / day_len, 0.0), 1.0)
        c = float(self.credit_usd)
        revenue = pd.Series([float(x) * c for x in frame["credits"]], index=list(frame["bucket"]), dtype=float)
        cost = pd.Series([float(x) for x in frame["base_cost_usd"]], index=list(frame["bucket"]), dtype=float)
        kw = {"today": today, "today_fraction": fraction, "month_end": month_end, "month_start": month_start}
        fr = forecast_month(revenue, **kw)
        fc = forecast_month(cost, **kw)
        mtd = frame[frame["bucket"] >= month_start]
        rev_mtd = sum((Decimal(int(x)) * self.credit_usd for x in mtd["credits"]), Decimal(0))
        cost_mtd = sum(mtd["base_cost_usd"], Decimal(0))

        def usd(x: float) -> Decimal:
            return Decimal(repr(x)).quantize(CENT)

        return MonthForecast(
            month=month_start,
            as_of=daily.as_of,
            tz=tz,
            revenue_to_date_usd=rev_mtd,
            revenue_forecast_usd=usd(fr.forecast),
            revenue_low_usd=usd(fr.low),
            revenue_high_usd=usd(fr.high),
            base_cost_to_date_usd=cost_mtd,
            base_cost_forecast_usd=usd(fc.forecast),
            margin_forecast_usd=usd(fr.forecast) - usd(fc.forecast),
            method=fr.method,
            band="90% prediction interval",
            daily=fr.daily,
        )

    def kpis(self, f: SpendFilter | None = None, *, now: datetime | None = None, tz: str | None = None) -> Kpis:
        """This month's whole local days through today, last month up to the same point (day of month and time of
        day), last month in full, the forecast and active users. The filter's date range is ignored."""
        tz = self._tz(tz)
        base = (f or SpendFilter()).between(None, None)
        as_of = self.as_of()
        now, local = self._now_local(now, tz, as_of)
        month_start = local.date().replace(day=1)
        last_start = (month_start - timedelta(days=1)).replace(day=1)
        this_utc = local_midnight_utc(month_start, tz)
        last_utc = local_midnight_utc(last_start, tz)
        elapsed = local - datetime.combine(month_start, datetime.min.time())
        same_local = datetime.combine(last_start, datetime.min.time()) + elapsed
        same_utc = min(same_local.replace(tzinfo=zone(tz)).astimezone(UTC).replace(tzinfo=None), this_utc)
        tomorrow_utc = local_midnight_utc(local.date() + timedelta(days=1), tz)
        mtd, _ = self._totals(base.between(this_utc, tomorrow_utc))
        same, _ = self._totals(base.between(last_utc, max(same_utc, last_utc + timedelta(microseconds=1))))
        last, _ = self._totals(base.between(last_utc, this_utc))
        fc = self.forecast(base, now=now, tz=tz)
        return Kpis(
            as_of=fc.as_of,
            tz=tz,
            month=month_start,
            month_to_date=mtd,
            last_month_same_point=same,
            last_month=last,
            forecast=fc,
            active_users=mtd.users,
        )

    # ---- anomalies -----------------------------------------------------------------------------------------------
    def anomalies(
        self,
        f: SpendFilter | None = None,
        *,
        by: Sequence[str] = ("user", "model"),
        now: datetime | None = None,
        days: int = 30,
        tz: str | None = None,
        threshold: float = THRESHOLD,
        min_excess_usd: Decimal = Decimal("1.00"),
    ) -> SpendResult:
        """Days far above a user's or a model's own baseline (see `core.analytics.anomalies`), in revenue USD.

        The days checked are the filter's date range, or the last `days` local days up to `now`."""
        tz = self._tz(tz)
        f = f or SpendFilter()
        as_of = self.as_of()
        now, local = self._now_local(now, tz, as_of)
        last_day = (
            (f.end.replace(tzinfo=UTC).astimezone(zone(tz)).replace(tzinfo=None) - timedelta(microseconds=1)).date()
            if f.end
            else local.date()
        )
        first_day = (
            f.start.replace(tzinfo=UTC).astimezone(zone(tz)).date() if f.start else last_day - timedelta(days=days - 1)
        )
        start_utc = local_midnight_utc(first_day - timedelta(days=28), tz)
        end_utc = local_midnight_utc(last_day + timedelta(days=1), tz)
        c = float(self.credit_usd)
        found = []
        result_as_of = as_of
        for dim in by:
            s = self.series("day", f.between(start_utc, end_utc), split=dim, tz=tz)
            result_as_of = s.as_of
            label = DIMENSIONS[dim].select[0][0]
            revenue = [float(x) * c for x in s.frame["credits"]]
            daily = pd.DataFrame({"entity": s.frame[label], "day": s.frame["bucket"], "value": revenue})
            a = find_anomalies(
                daily, first_day=first_day, last_day=last_day, threshold=threshold, min_excess=float(min_excess_usd)
            )
            a.insert(0, "dimension", dim)
            found.append(a)
        out = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
        if not out.empty:
            for col in ("value", "baseline_median", "excess"):
                out[col] = [Decimal(repr(float(v))).quantize(CENT) for v in out[col]]
            out["ratio"] = [None if pd.isna(v) else round(float(v), 1) for v in out["ratio"]]
            out["score"] = [round(float(v), 1) for v in out["score"]]
            out = out.rename(
                columns={"value": "revenue_usd", "baseline_median": "baseline_usd", "excess": "excess_usd"}
            ).drop(columns=["baseline_mad"])
            out = out.sort_values(["excess_usd", "day"], ascending=[False, True], ignore_index=True)
        else:
            out = pd.DataFrame(
                columns=["dimension", "entity", "day", "revenue_usd", "baseline_usd", "excess_usd", "ratio", "score"]
            )
        return SpendResult(out, result_as_of, tz)
