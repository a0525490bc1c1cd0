"""The analytics copy of the system of record: where the DuckDB store lives, syncing it, and the spend queries over it.

`core.services` builds one `AnalyticsCopy` per process over the database's engine. It also answers the
specification's two per-user usage questions for `BillingService` (which does not import analytics), syncing first
so a call committed a moment ago is counted.
"""

from __future__ import annotations

from sqlalchemy import Engine

from core.analytics import usage
from core.analytics.queries import SpendQueries
from core.analytics.store import AnalyticsStore
from core.analytics.sync import Progress, SyncReport, sync
from core.config import Settings
from core.db.models import utcnow

STALE_AFTER_SECONDS = 300.0


class AnalyticsCopy:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.store = AnalyticsStore(settings.analytics_path)

    def sync(
        self, *, full: bool = False, max_age_seconds: float | None = None, progress: Progress | None = None
    ) -> SyncReport:
        """Copy new rows from the database (see `core.analytics.sync`); with `max_age_seconds`, only when the store is
        missing or older than that (0: whenever the database holds rows the store lacks)."""
        return sync(
            self.engine,
            self.store,
            full=full,
            max_age_seconds=max_age_seconds,
            reporting_tz=self.settings.reporting_tz,
            credit_usd=self.settings.credit_usd,
            progress=progress,
        )

    def queries(self, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS) -> SpendQueries:
        """The spend queries over the store, synced first when it is missing or older than the limit (0: whenever the
        database holds rows the store lacks; None: never sync here)."""
        if sync_if_older_than is not None:
            self.sync(max_age_seconds=sync_if_older_than)
        return SpendQueries(self.store, credit_usd=self.settings.credit_usd, reporting_tz=self.settings.reporting_tz)

    # ---- the specification's usage questions (BillingService.get_total_usage / get_usage_by_provider) ---------------
    def total_usage(self, user_id: int, days: int, *, include_sandbox: bool = False) -> usage.UserUsage:
        q = self.queries(sync_if_older_than=0)
        return usage.get_total_usage(q, user_id, days, now=utcnow(), include_sandbox=include_sandbox)

    def usage_by_provider(self, user_id: int, days: int, *, include_sandbox: bool = False) -> list[usage.ProviderUsage]:
        q = self.queries(sync_if_older_than=0)
        return usage.get_usage_by_provider(q, user_id, days, now=utcnow(), include_sandbox=include_sandbox)
