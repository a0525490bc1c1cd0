"""Wiring the analytics store to the system of record: where the store lives, syncing it when stale, the queries.

The `*_for_database` functions take an engine and settings (what `BillingService` holds); the others take a
`Runtime` (pages and the command line).
"""

from __future__ import annotations

from sqlalchemy import Engine

from core.analytics.queries import SpendQueries
from core.analytics.store import AnalyticsStore
from core.analytics.sync import Progress, SyncReport, sync
from core.config import Settings
from core.runtime import Runtime

STALE_AFTER_SECONDS = 300.0


def store_at(settings: Settings) -> AnalyticsStore:
    return AnalyticsStore(settings.analytics_path)


def sync_database(
    engine: Engine,
    settings: Settings,
    *,
    full: bool = False,
    max_age_seconds: float | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the store named by `settings` from `engine` (see `core.analytics.sync`)."""
    return sync(
        engine,
        store_at(settings),
        full=full,
        max_age_seconds=max_age_seconds,
        reporting_tz=settings.reporting_tz,
        credit_usd=settings.credit_usd,
        progress=progress,
    )


def queries_for_database(
    engine: Engine, settings: Settings, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS
) -> SpendQueries:
    """The spend queries over the store named by `settings`, synced first when it is missing or older than the limit
    (0: whenever the database holds rows the store lacks; None: never sync here)."""
    if sync_if_older_than is not None:
        sync_database(engine, settings, max_age_seconds=sync_if_older_than)
    return SpendQueries(store_at(settings), credit_usd=settings.credit_usd, reporting_tz=settings.reporting_tz)


def store_for(rt: Runtime) -> AnalyticsStore:
    return store_at(rt.settings)


def sync_store(
    rt: Runtime, *, full: bool = False, max_age_seconds: float | None = None, progress: Progress | None = None
) -> SyncReport:
    """Sync the runtime's analytics store from its database."""
    return sync_database(rt.engine, rt.settings, full=full, max_age_seconds=max_age_seconds, progress=progress)


def spend_queries(rt: Runtime, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS) -> SpendQueries:
    """The spend queries over the runtime's store (see `queries_for_database`)."""
    return queries_for_database(rt.engine, rt.settings, sync_if_older_than=sync_if_older_than)
