"""`SpendQueries`: the finance questions, answered from the analytics store.

Measures (every grouping returns them; money as exact `Decimal`):
- requests: calls recorded (sum of `requests_count`; ledger rows add 0); failed: failed calls;
- credits: credits charged, net of refunds, endpoint uptime included;
- base_cost_usd: what the providers cost (sandbox rows carry a would-be cost and are excluded unless asked for); a
  response-cache hit never reached a provider and costs nothing here;
- revenue_usd = credits x `credit_usd` (the credits a cache hit was charged included); margin_usd = revenue - base
  cost;
- markup_pct = (revenue / base cost - 1) x 100, the effective markup (None without base cost);
- rounding_uplift_usd = sum over rows of ceil(priced cost / credit_usd) x credit_usd - priced cost: what rounding each
  call up to whole credits earns before the markup (part of the margin, shown apart from it); the priced cost is the
  provider cost, but for a cache hit the catalog cost it was charged at (0 when cache hits are free); 0 for a call
  billed by accrual, which is not rounded on its own, and for a sandbox call, which is never charged
  (`core.analytics.schema.ROUNDING_UPLIFT_NANO`);
- cache_hits and cache_saving_usd: responses served from the response cache and the provider cost they avoided: what
  they would have cost at catalog prices, whether or not the user was charged for them (CHARGE_CACHE_HITS). It is
  not part of base_cost_usd; when hits are charged, it is margin.

Time buckets are calendar days, ISO weeks (starting Monday) or months in the reporting time zone, DST included: rows
are first summed per UTC quarter hour (every offset in use is a whole number of quarter hours), then each quarter
hour is converted to local time with DuckDB's ICU time zones and summed into its local bucket.

Every answer carries `as_of`: the sync time of the store version it was read from (naive UTC), after which rows may
exist that it does not show.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from core.analytics.anomalies import THRESHOLD, find_anomalies
from core.analytics.filters import SpendFilter, local_midnight_utc, zone
from core.analytics.forecast import forecast_month
from core.analytics.schema import ROUNDING_UPLIFT_NANO, UNKNOWN
from core.analytics.store import AnalyticsStore
from core.errors import InvalidInputError

NANO = 10**9
CENT = Decimal("0.01")
GRAINS = ("day", "week", "month")

MEASURES_SQL = (
    """
    sum(requests)::BIGINT AS requests,
    (count(*) FILTER (WHERE status = 'failed' AND kind = 'usage'))::BIGINT AS failed,
    sum(credits)::BIGINT AS credits,
    sum(base_nano)::BIGINT AS base_nano,
    sum({uplift})::BIGINT AS uplift_nano,
    (count(*) FILTER (WHERE cache_hit))::BIGINT AS cache_hits,
    coalesce(sum(cache_saving_nano), 0)::BIGINT AS cache_saving_nano
"""
).replace("{uplift}", ROUNDING_UPLIFT_NANO.format(c="?"))
RESUM_SQL = """
    sum(requests)::BIGINT AS requests, sum(failed)::BIGINT AS failed, sum(credits)::BIGINT AS credits,
    sum(base_nano)::BIGINT AS base_nano, sum(uplift_nano)::BIGINT AS uplift_nano,
    sum(cache_hits)::BIGINT AS cache_hits, sum(cache_saving_nano)::BIGINT AS cache_saving_nano
"""
MEASURE_NAMES = ("requests", "failed", "credits", "base_nano", "uplift_nano", "cache_hits", "cache_saving_nano")
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
    # a row's team is its user's team now (users.team_id): moving someone moves their history with them
    "team": _Dim(
        "(SELECT tu.team_id FROM users tu WHERE tu.id = user_id)",
        (("team", "coalesce(a{i}.name, '(no team)')"), ("team_id", "g.k{i}")),
        "LEFT JOIN teams a{i} ON a{i}.id = g.k{i}",
    ),
    "provider": _Dim("provider", (("provider", "g.k{i}"),)),
    "category": _Dim("category", (("category", "g.k{i}"),)),
    "deployment_type": _Dim("deployment_type", (("deployment_type", "g.k{i}"),)),
    "kind": _Dim("kind", (("kind", "g.k{i}"),)),
    "status": _Dim("status", (("status", "g.k{i}"),)),
    "api_key": _Dim(
        "api_key_id",
        (
            (
                "api_key",
                "CASE WHEN g.k{i} IS NULL THEN '(no key)' ELSE coalesce(a{i}.prefix || '… ' || a{i}.name, "
                "'(key ' || CAST(g.k{i} AS TEXT) || ')') END",
            ),
            ("api_key_id", "g.k{i}"),
        ),
        "LEFT JOIN api_keys a{i} ON a{i}.id = g.k{i}",
    ),
    "source": _Dim("source", (("source", f"coalesce(g.k{{i}}, '{UNKNOWN}')"),)),
}


@dataclass(frozen=True)
class _Rows:
    names: list[str]
    rows: list[tuple[Any, ...]]
    meta: _Meta  # of the store version the rows were read from

    def col(self, name: str) -> list[Any]:
        i = self.names.index(name)
        return [r[i] for r in self.rows]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.rows, columns=self.names)


@dataclass(frozen=True)
class _Meta:
    tz: str  # the daily rollup's time zone
    credit_nano: int  # and credit price
    user_ids: dict[str, int]  # lower-case email -> user id
    users: dict[int, tuple[str, str | None]]  # id -> (email, name)
    models: dict[int, tuple[str, str | None, str]]  # id -> (model id, name, provider)
    teams: dict[int, str] = field(default_factory=dict)  # id -> name
    keys: dict[int, str] = field(default_factory=dict)  # API key id -> "prefix… name"

    def labels(self, dim: str, keys: list[Any]) -> dict[str, list[Any]]:
        """A dimension's output columns (DIMENSIONS[dim].select names) for raw key values, named in Python: the
        same text the SQL joins give, without a join in the query."""
        if dim == "user":
            found = [self.users.get(k) for k in keys]
            return {
                "user": [u[0] if u else f"(user {k})" for u, k in zip(found, keys, strict=True)],
                "user_name": [u[1] if u else None for u in found],
                "user_id": list(keys),
            }
        if dim == "model":
            found_m = [self.models.get(k) if k is not None else None for k in keys]
            return {
                "model": [m[0] if m else UNKNOWN for m in found_m],
                "model_name": [m[1] if m else None for m in found_m],
                "model_provider": [m[2] if m else None for m in found_m],
            }
        if dim == "team":
            return {"team": [self.teams.get(k, "(no team)") for k in keys], "team_id": list(keys)}
        if dim == "api_key":
            return {
                "api_key": [
                    "(no key)" if k is None else self.keys.get(k, f"(key {k})")
                    for k in keys  # as the SQL names them
                ],
                "api_key_id": list(keys),
            }
        if dim == "source":
            return {"source": [UNKNOWN if k is None else k for k in keys]}
        return {DIMENSIONS[dim].select[0][0]: list(keys)}

    def resolve(self, f: SpendFilter) -> SpendFilter:
        """The filter with its emails turned into user ids (a constant list lets the scans skip row groups); an
        email nobody has keeps nothing."""
        if not f.users:
            return f
        ids = {self.user_ids[e] for u in f.users if (e := u.strip().lower()) in self.user_ids}
        if f.user_ids:
            ids &= set(f.user_ids)
        return replace(f, users=(), user_ids=tuple(sorted(ids)) or (-1,))


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
    api_keys: tuple[tuple[int, str, str], ...]  # (id, "prefix… name", owner email) of keys with spend
    sources: tuple[str, ...]
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


def _nulls_first(v: Any) -> tuple[bool, Any]:
    """A sort key putting None first, as `NULLS FIRST` does."""
    return (v is not None, v if v is not None else 0)


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

    # ---- plumbing ------------------------------------------------------------------------------------------------
    def _query(self, build: Callable[[_Meta], tuple[str, list[Any]]]) -> tuple[_Rows, datetime]:
        """Read the published version's sync state, build the SQL for it, run it in the same cursor."""
        con, version, memo = self.store.connect_versioned()
        try:
            state = memo.get("state")
            if state is None:  # a version never changes: read its sync state and users once per process
                synced_at, rollup_tz, rollup_nano = con.execute(
                    "SELECT synced_at, rollup_tz, rollup_credit_nano FROM sync_state"
                ).fetchall()[0]
                users = con.execute("SELECT id, email, name FROM users").fetchall()
                models = con.execute("SELECT id, model_id, model_name, provider FROM ai_models").fetchall()
                teams = con.execute("SELECT id, name FROM teams").fetchall()
                keys = con.execute("SELECT id, prefix || '… ' || name FROM api_keys").fetchall()
                state = (
                    synced_at,
                    _Meta(
                        rollup_tz,
                        int(rollup_nano),
                        {e.lower(): i for i, e, _n in users},
                        {i: (e, n) for i, e, n in users},
                        {i: (m, n, p) for i, m, n, p in models},
                        dict(teams),
                        {i: label for i, label in keys},
                    ),
                )
                memo["state"] = state
            synced_at, meta = state
            sql, params = build(meta)
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        finally:
            con.close()
        return _Rows(names, rows, meta), self.store.as_of_version(version, synced_at)

    def _source(self, f: SpendFilter, meta: _Meta, tz: str | None = None) -> tuple[str, str, list[Any], str]:
        """(table, condition, parameters, measures SQL): the daily rollup when it can answer exactly (its time zone
        and credit price, whole local days), else the rows."""
        f = meta.resolve(f)
        if meta.credit_nano == self.credit_nano and (tz is None or tz == meta.tz):
            days = f.day_range(meta.tz)
            if days is not None:
                where, params = f.where(days=days)
                return "daily_spend", where, params, RESUM_SQL
        where, params = f.where()
        return "spend", where, [self.credit_nano] * MEASURES_SQL.count("?") + params, MEASURES_SQL

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
        cols = dict(zip(rows.names, zip(*rows.rows, strict=True), strict=True)) if rows.rows else {}
        ints = {n: [int(v or 0) for v in cols.get(n, ())] for n in ("requests", "failed", "credits", "cache_hits")}
        base = [_usd(v) for v in cols.get("base_nano", ())]
        revenue = [Decimal(x) * c for x in ints["credits"]]
        out.update(
            requests=np.array(ints["requests"], dtype=np.int64),
            failed=np.array(ints["failed"], dtype=np.int64),
            credits=np.array(ints["credits"], dtype=np.int64),
            base_cost_usd=base,
            revenue_usd=revenue,
            margin_usd=[r - b for r, b in zip(revenue, base, strict=True)],
            markup_pct=[
                ((r / b - 1) * 100).quantize(CENT) if b > 0 else None for r, b in zip(revenue, base, strict=True)
            ],
            rounding_uplift_usd=[_usd(v) for v in cols.get("uplift_nano", ())],
            cache_hits=np.array(ints["cache_hits"], dtype=np.int64),
            cache_saving_usd=[_usd(v) for v in cols.get("cache_saving_nano", ())],
        )
        frame = pd.DataFrame(out, columns=[*keys, *OUTPUT_MEASURES])
        return frame

    def _totals(self, f: SpendFilter) -> tuple[SpendTotals, datetime]:
        def build(meta: _Meta) -> tuple[str, list[Any]]:
            table, where, params, measures = self._source(f, meta)
            # measures come first in the SQL text: their parameters (raw rows) are first in `params` too
            sql = f"SELECT {measures}, count(DISTINCT user_id)::BIGINT AS users FROM {table} WHERE {where}"  # noqa: S608
            return sql, params

        df, as_of = self._query(build)
        return self._as_totals(df, users=int(df.col("users")[0] or 0)), as_of

    def _as_totals(self, one_row: _Rows, *, users: int) -> SpendTotals:
        row = self._finish(one_row, []).iloc[0]
        return SpendTotals(
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
                WITH d AS (SELECT user_id, ai_model_id, provider, category, deployment_type, status, api_key_id,
                                  source, min(day) AS lo, max(day) AS hi
                           FROM daily_spend GROUP BY ALL)
                SELECT 'user' AS what, u.email AS value, u.name AS label FROM users u
                    WHERE u.id IN (SELECT user_id FROM d)
                UNION ALL SELECT DISTINCT 'model', m.model_id, m.provider FROM ai_models m
                    WHERE m.id IN (SELECT ai_model_id FROM d)
                UNION ALL SELECT DISTINCT 'provider', provider, NULL FROM d
                UNION ALL SELECT DISTINCT 'category', category, NULL FROM d
                UNION ALL SELECT DISTINCT 'deployment_type', deployment_type, NULL FROM d
                UNION ALL SELECT DISTINCT 'status', status, NULL FROM d
                UNION ALL SELECT DISTINCT 'source', source, NULL FROM d WHERE source IS NOT NULL
                UNION ALL SELECT 'api_key', CAST(k.id AS TEXT),
                                 k.prefix || '… ' || k.name || '|' || coalesce(u.email, '')
                    FROM api_keys k LEFT JOIN users u ON u.id = k.owner_id WHERE k.id IN (SELECT api_key_id FROM d)
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
        keys = pick.get("api_key", df.iloc[0:0])
        return FilterOptions(
            users=tuple(zip(users["value"], users["label"], strict=True)),
            models=tuple(zip(models["value"], models["label"], strict=True)),
            providers=values("provider"),
            categories=values("category"),
            deployment_types=values("deployment_type"),
            statuses=values("status"),
            api_keys=tuple(
                (int(i), *label.rsplit("|", 1)) for i, label in zip(keys["value"], keys["label"], strict=True)
            ),
            sources=values("source"),
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
        # ties on credits go by label, then by the raw key (two models can share an id under different providers)
        order = ", ".join(
            [*(DIMENSIONS[d].select[0][0] for d in dims), *(f"g.k{i} NULLS FIRST" for i in range(len(dims)))]
        )

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
        return self._series_result(*self._series_rows(grain, f, split, tz))

    def split_series(
        self, grain: str, f: SpendFilter | None, split: str, *, tz: str | None = None
    ) -> tuple[SpendResult, SpendResult, SpendTotals]:
        """From one query: the series split by `split`, the same rows summed per key (what `breakdown(split, f)`
        gives) and their totals (whose `users` is 0: a split other than by user cannot count users)."""
        if split not in DIMENSIONS:
            raise InvalidInputError(f"Cannot split spend by {split!r}; choose from {', '.join(DIMENSIONS)}.")
        rows, labels, as_of, tz = self._series_rows(grain, f, split, tz)
        at = [rows.names.index(m) for m in MEASURE_NAMES]
        k0 = rows.names.index("k0")
        groups: dict[Any, list[int]] = {}  # raw key -> measure sums
        label_of: dict[Any, tuple[Any, ...]] = {}
        for label, row in zip(zip(*labels.values(), strict=True), rows.rows, strict=True):
            acc = groups.get(row[k0])
            if acc is None:
                acc = groups[row[k0]] = [0] * len(at)
                label_of[row[k0]] = label
            for j, i in enumerate(at):
                acc[j] += int(row[i] or 0)
        credits = MEASURE_NAMES.index("credits")
        ordered = sorted(groups, key=lambda k: (-groups[k][credits], str(label_of[k][0]), _nulls_first(k)))
        names = list(labels)
        key_cols = {n: [label_of[k][j] for k in ordered] for j, n in enumerate(names)}
        sums = _Rows(list(MEASURE_NAMES), [tuple(groups[k]) for k in ordered], rows.meta)
        by_key = self._finish(sums, ["key", *names], {"key": key_cols[names[0]], **key_cols})
        total = _Rows(
            list(MEASURE_NAMES), [tuple(sum(v[j] for v in groups.values()) for j in range(len(at)))], rows.meta
        )
        return (
            self._series_result(rows, labels, as_of, tz),
            SpendResult(by_key, as_of, tz),
            self._as_totals(total, users=0),
        )

    def _series_rows(
        self, grain: str, f: SpendFilter | None, split: str | None, tz: str | None
    ) -> tuple[_Rows, dict[str, list[Any]], datetime, str]:
        """The series' measure rows in order, the split's label columns in the same order, the as-of, the zone."""
        if grain not in GRAINS:
            raise InvalidInputError(f"Unknown time bucket {grain!r}; choose from {', '.join(GRAINS)}.")
        if split is not None and split not in DIMENSIONS:
            raise InvalidInputError(f"Cannot split spend by {split!r}; choose from {', '.join(DIMENSIONS)}.")
        tz = self._tz(tz)
        f = f or SpendFilter()
        k = f", {DIMENSIONS[split].column} AS k0" if split else ""
        kb = ", k0" if split else ""
        bucket = "day" if grain == "day" else f"CAST(date_trunc('{grain}', day) AS DATE)"

        def build(meta: _Meta) -> tuple[str, list[Any]]:
            table, where, params, measures = self._source(f, meta, tz)
            if table == "daily_spend":
                sql = f"SELECT {bucket} AS bucket{k}, {measures} FROM daily_spend WHERE {where} GROUP BY ALL"  # noqa: S608
                return sql, params
            sql = f"""
                WITH q AS (
                    SELECT epoch_us(ts) // 900000000 AS q{k}, {measures} FROM spend WHERE {where} GROUP BY ALL
                )
                SELECT CAST(date_trunc('{grain}', timezone(?, make_timestamp(q * 900000000) AT TIME ZONE 'UTC'))
                            AS DATE) AS bucket{kb}, {RESUM_SQL}
                FROM q GROUP BY ALL"""  # noqa: S608
            return sql, [*params, tz]

        raw, as_of = self._query(build)
        # names and order (bucket, most credits first, then the label) are applied here rather than by a join and an
        # ORDER BY in the query: the groups are few, and the query plans in half the time without them
        labels = raw.meta.labels(split, raw.col("k0")) if split else {}
        first = labels[next(iter(labels))] if labels else [""] * len(raw.rows)
        credits = raw.col("credits")
        raw_keys = raw.col("k0") if split else [None] * len(raw.rows)
        order = sorted(
            range(len(raw.rows)),
            key=lambda i: (raw.rows[i][0], -int(credits[i] or 0), str(first[i]), _nulls_first(raw_keys[i])),
        )
        rows = _Rows(raw.names, [raw.rows[i] for i in order], raw.meta)
        return rows, {n: [v[i] for i in order] for n, v in labels.items()}, as_of, tz

    def _series_result(self, rows: _Rows, labels: dict[str, list[Any]], as_of: datetime, tz: str) -> SpendResult:
        buckets = [d if isinstance(d, date) else pd.Timestamp(d).date() for d in rows.col("bucket")]
        return SpendResult(self._finish(rows, ["bucket", *labels], {"bucket": buckets, **labels}), as_of, tz)

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
            where, params = g.where()
            sql = f"SELECT {cols} FROM spend WHERE {where} ORDER BY ts DESC, kind, source_id DESC LIMIT ?"  # noqa: S608
            return sql, [*params, int(limit)]

        # Rows are stored in time order, so a recent window is read without touching older row groups. The daily
        # rollup's row counts say how many recent days hold `limit` rows; only those are read (all of the range when
        # that window turns out short, e.g. when the range ends inside a day).
        start = self._newest_rows_start(f, limit)
        narrow = f if start is None else f.between(max(start, f.start or start), f.end)
        raw, as_of = self._query(lambda meta: sql_for(meta.resolve(narrow)))
        if start is not None and len(raw.rows) < limit:
            raw, as_of = self._query(lambda meta: sql_for(meta.resolve(f)))
        # names and local times for these rows only, here rather than by joins in the query (see `series`)
        col = {n: list(v) for n, v in zip(raw.names, zip(*raw.rows, strict=True), strict=True)} if raw.rows else {}
        col = {n: col.get(n, []) for n in raw.names}
        utc = pd.DatetimeIndex(col["ts"], dtype="datetime64[us]")
        revenue = [Decimal(x) * self.credit_usd for x in col["credits"]]
        out = pd.DataFrame(
            {
                "local_time": utc.tz_localize("UTC").tz_convert(zone(tz)).tz_localize(None),
                "utc_time": utc,
                "kind": col["kind"],
                "user": raw.meta.labels("user", col["user_id"])["user"],
                "provider": col["provider"],
                "model": raw.meta.labels("model", col["ai_model_id"])["model"],
                **{
                    c: col[c]
                    for c in ("category", "status", "sandbox", "cache_hit", "requests", "credits", "base_cost_usd")
                },
                "source_id": col["source_id"],
                "transaction_id": col["transaction_id"],
                "revenue_usd": revenue,
                "margin_usd": [r - b for r, b in zip(revenue, col["base_cost_usd"], strict=True)],
            }
        )
        return SpendResult(out, as_of, tz)

    def _newest_rows_start(self, f: SpendFilter, limit: int) -> datetime | None:
        """The latest local midnight (rollup time zone, naive UTC) after which the rollup counts at least `limit` rows
        the filter keeps, or None when the whole range is needed."""
        rollup_tz: list[str] = []

        def build(meta: _Meta) -> tuple[str, list[Any]]:
            g = meta.resolve(f)
            first = g.start.replace(tzinfo=UTC).astimezone(zone(meta.tz)).date() if g.start else None
            after = None  # the local day after the last one the range touches
            if g.end is not None:
                local_end = g.end.replace(tzinfo=UTC).astimezone(zone(meta.tz))
                after = local_end.date() + timedelta(days=0 if local_end.time() == time(0) else 1)
            where, params = g.where(days=(first, after))
            sql = f"SELECT day, sum(rows) AS n FROM daily_spend WHERE {where} GROUP BY day ORDER BY day DESC"  # noqa: S608
            rollup_tz.append(meta.tz)
            return sql, params

        rows, _ = self._query(build)
        seen = 0
        for day, n in rows.rows:
            seen += int(n)
            if seen >= limit:
                return local_midnight_utc(day, rollup_tz[0])
        return None

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
