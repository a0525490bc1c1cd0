"""Wiring the analytics store to a `Runtime`: where the store lives, syncing it when stale, and the queries."""

from __future__ import annotations

from core.analytics.queries import SpendQueries
from core.analytics.store import AnalyticsStore
from core.analytics.sync import SyncReport, sync
from core.runtime import Runtime

STALE_AFTER_SECONDS = 300.0


def store_for(rt: Runtime) -> AnalyticsStore:
    return AnalyticsStore(rt.settings.analytics_path)


def sync_store(rt: Runtime, *, full: bool = False, max_age_seconds: float | None = None) -> SyncReport:
    """Sync the runtime's analytics store from its database (see `core.analytics.sync`)."""
    return sync(
        rt.engine,
        store_for(rt),
        full=full,
        max_age_seconds=max_age_seconds,
        reporting_tz=rt.settings.reporting_tz,
        credit_usd=rt.settings.credit_usd,
    )


def spend_queries(rt: Runtime, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS) -> SpendQueries:
    """The spend queries over the runtime's store, synced first when it is missing or older than the limit
    (None: never sync here)."""
    if sync_if_older_than is not None:
        sync_store(rt, max_age_seconds=sync_if_older_than)
    return SpendQueries(store_for(rt), credit_usd=rt.settings.credit_usd, reporting_tz=rt.settings.reporting_tz)
