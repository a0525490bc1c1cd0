"""The analytics copy of the system of record: where the DuckDB store lives, syncing it, and the spend queries over it.

`core.services` builds one `AnalyticsCopy` per process over the database's engine. It also answers the
specification's two per-user usage questions for `BillingService` (which does not import analytics), syncing first
so a call committed a moment ago is counted.

Freshness, one rule for every spend figure: a question syncs first when the store is older than its limit
(STALE_AFTER_SECONDS by default), and always when this process has written to the ledger since the last sync
(`BillingService` calls `written` after each write it commits). So a charge, refund or grant someone has just seen
(a Playground result, a refund on the Ledger page, `x-credits-remaining`) is in the next spend figure this process
shows, next to the balance that already counts it; writes made by other processes show within the limit, and every
answer says its `as_of`.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from core.analytics import usage
from core.analytics.queries import SpendQueries
from core.analytics.store import AnalyticsStore
from core.analytics.sync import Progress, SyncReport, sync
from core.config import Settings
from core.db.models import utcnow

STALE_AFTER_SECONDS = 300.0
BACKGROUND_LOCK_SECONDS = 5.0  # the longest a background check waits for another process's sync (background_queries)
# The age limit of a one-off question (a command line run): sync whenever the database holds rows the store lacks, so
# `spend` right after `generate` in another process counts the call that `credits balance` already does.
UP_TO_DATE = 0.0


class AnalyticsCopy:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.store = AnalyticsStore(settings.analytics_path)
        self._lock = threading.Lock()
        self._writes = 0  # ledger writes this process has committed
        self._synced_writes = 0  # of which the store is known to hold every one

    def written(self) -> None:
        """This process has just committed a ledger write: the next sync with an age limit syncs whatever its age."""
        with self._lock:
            self._writes += 1

    def sync(
        self,
        *,
        full: bool = False,
        max_age_seconds: float | None = None,
        progress: Progress | None = None,
        after_own_writes: bool = True,
        lock_timeout: float | None = None,
    ) -> SyncReport:
        """Copy new rows from the database (see `core.analytics.sync`); with `max_age_seconds`, only when the store is
        missing or older than that (0: whenever the database holds rows the store lacks); after a ledger write of
        this process (`written`), whatever its age, unless `after_own_writes` is False (a background check that need
        not count the latest charge: the age limit holds, and the next figure shown still syncs for the write)."""
        with self._lock:
            seen = self._writes
            if not after_own_writes:
                seen = self._synced_writes  # this sync vouches for no write: a figure shown after it still syncs
            elif max_age_seconds is not None and seen != self._synced_writes:
                max_age_seconds = 0
        report = sync(
            self.engine,
            self.store,
            full=full,
            max_age_seconds=max_age_seconds,
            reporting_tz=self.settings.reporting_tz,
            credit_usd=self.settings.credit_usd,
            progress=progress,
            lock_timeout=lock_timeout,
        )
        with self._lock:
            self._synced_writes = max(self._synced_writes, seen)
        return report

    def queries(
        self, *, sync_if_older_than: float | None = STALE_AFTER_SECONDS, after_own_writes: bool = True
    ) -> SpendQueries:
        """The spend queries over the store, synced first when it is missing or older than the limit (0: whenever the
        database holds rows the store lacks; None: never sync here); `after_own_writes`: see `sync`."""
        if sync_if_older_than is not None:
            self.sync(max_age_seconds=sync_if_older_than, after_own_writes=after_own_writes)
        return SpendQueries(self.store, credit_usd=self.settings.credit_usd, reporting_tz=self.settings.reporting_tz)

    def background_queries(self) -> SpendQueries:
        """The spend queries for a check nobody waits on (the app's spend-anomaly alerts): synced when the store is
        missing or older than STALE_AFTER_SECONDS, not for this process's own latest writes, as a sync copies it.
        Another process's sync is waited for BACKGROUND_LOCK_SECONDS at most (then SyncBusyError: the check waits
        for its next turn), so a long `analytics sync --full` elsewhere never holds up the alert timer's turn."""
        self.sync(max_age_seconds=STALE_AFTER_SECONDS, after_own_writes=False, lock_timeout=BACKGROUND_LOCK_SECONDS)
        return self.queries(sync_if_older_than=None)

    # ---- the specification's usage questions (BillingService.get_total_usage / get_usage_by_provider) ---------------
    def total_usage(self, user_id: int, days: int, *, include_sandbox: bool = False) -> usage.UserUsage:
        q = self.queries(sync_if_older_than=UP_TO_DATE)
        return usage.get_total_usage(q, user_id, days, now=utcnow(), include_sandbox=include_sandbox)

    def usage_by_provider(self, user_id: int, days: int, *, include_sandbox: bool = False) -> list[usage.ProviderUsage]:
        q = self.queries(sync_if_older_than=UP_TO_DATE)
        return usage.get_usage_by_provider(q, user_id, days, now=utcnow(), include_sandbox=include_sandbox)
