"""Optimize's reads of the analytics store: requests per minute and what they cost, per model or per endpoint.

The break-even simulator's "history" profile counts a model's requests per minute in SQL; here the same counts come
from the DuckDB copy for every model at once (one scan of the period instead of one SQLite query per model), so the
whole savings list stays within its time budget at millions of rows. Cache hits never reach a GPU and are not traffic;
sandbox calls are not real traffic either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np

from core.optimize.period import Period

NANO = 10**9
TRAFFIC = "NOT cache_hit AND NOT sandbox"


def epoch_us(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1)).total_seconds()) * 1_000_000 + t.microsecond


@dataclass(frozen=True, eq=False)
class Counts:
    """Requests per minute of a period (index 0 = the period's first minute) and what the successful ones cost."""

    per_minute: np.ndarray  # int64
    cost_usd: Decimal  # provider cost of the successful calls among them

    @property
    def requests(self) -> int:
        return int(self.per_minute.sum())


def minute_counts(
    con: duckdb.DuckDBPyConnection, period: Period, key_sql: str, where_sql: str, params: Sequence[Any]
) -> dict[Any, Counts]:
    """Counts per minute and cost for each value of `key_sql` among the rows `where_sql` keeps in `period`.

    `key_sql` and `where_sql` are this package's own SQL over `ai_usage_log`; values come in `params` (bound)."""
    where = f"created_at >= ? AND created_at < ? AND {TRAFFIC} AND ({where_sql})"
    got = con.execute(
        f"SELECT {key_sql} AS k, (epoch_us(created_at) - ?) // 60000000 AS m, sum(requests_count)::BIGINT AS n, "  # noqa: S608 - own SQL, bound values
        f"coalesce(sum(base_nano) FILTER (WHERE status = 'success'), 0)::BIGINT AS cost "
        f"FROM ai_usage_log WHERE {where} GROUP BY ALL",
        [epoch_us(period.start), period.start, period.end, *params],
    ).fetchnumpy()
    keys = got["k"]
    out: dict[Any, Counts] = {}
    for key in dict.fromkeys(keys.tolist()):
        sel = keys == key
        arr = np.zeros(period.minutes, dtype=np.int64)
        arr[got["m"][sel].astype(np.int64)] = got["n"][sel]  # one row per (key, minute): no minute repeats
        cost = int(got["cost"][sel].astype(np.int64).sum())
        out[key] = Counts(arr, Decimal(cost).scaleb(-9))
    return out
