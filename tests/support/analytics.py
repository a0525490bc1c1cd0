"""Shortcuts for analytics tests: the analytics copy of a test database, as the services container builds it."""

from __future__ import annotations

from typing import Any

from core.analytics import AnalyticsCopy, AnalyticsStore, SpendQueries, SyncReport
from core.db import Database


def copy_of(db: Database) -> AnalyticsCopy:
    return AnalyticsCopy(db.engine, db.settings)


def store_for(db: Database) -> AnalyticsStore:
    return copy_of(db).store


def sync_store(db: Database, **kwargs: Any) -> SyncReport:
    return copy_of(db).sync(**kwargs)


def spend_queries(db: Database, **kwargs: Any) -> SpendQueries:
    return copy_of(db).queries(**kwargs)
