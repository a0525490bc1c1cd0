"""Spend analytics: a DuckDB copy of the usage and ledger tables, synced incrementally, and the spend queries.

`AnalyticsCopy(engine, settings)` owns the store: `.queries()` gives a `SpendQueries` over it (synced first when stale),
`.sync(full=...)` syncs it; `get_total_usage` / `get_usage_by_provider` answer the specification's two per-user
questions. See `schema` (what counts as spend), `store` (files and concurrency), `sync` (watermarks).
"""

from core.analytics.copy import STALE_AFTER_SECONDS, AnalyticsCopy
from core.analytics.filters import SpendFilter
from core.analytics.queries import DIMENSIONS, GRAINS, Kpis, MonthForecast, SpendQueries, SpendResult, SpendTotals
from core.analytics.store import AnalyticsStore, AnalyticsUnavailableError, StoreState
from core.analytics.sync import SyncReport
from core.analytics.usage import ProviderUsage, UserUsage, get_total_usage, get_usage_by_provider

__all__ = [
    "DIMENSIONS",
    "GRAINS",
    "STALE_AFTER_SECONDS",
    "AnalyticsCopy",
    "AnalyticsStore",
    "AnalyticsUnavailableError",
    "Kpis",
    "MonthForecast",
    "ProviderUsage",
    "SpendFilter",
    "SpendQueries",
    "SpendResult",
    "SpendTotals",
    "StoreState",
    "SyncReport",
    "UserUsage",
    "get_total_usage",
    "get_usage_by_provider",
]
