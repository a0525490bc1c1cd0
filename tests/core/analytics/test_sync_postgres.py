"""The same sync on PostgreSQL (ADBC's libpq driver): full, incremental, exact decimals, against the reference."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.analytics import SpendFilter
from core.db import Database
from tests.core.analytics.history import reference_measures, reference_spend, write_history
from tests.core.analytics.test_sync import T0, assert_matches_source, queries
from tests.support.analytics import store_for, sync_store

pytestmark = pytest.mark.postgres


def test_sync_from_postgresql_full_then_incremental(pg_runtime: Database) -> None:
    rt = pg_runtime
    write_history(rt, seed=21, rows=500, start=T0, end=T0 + timedelta(days=8))
    first = sync_store(rt)
    assert first.mode == "full" and first.usage_rows == 500
    assert_matches_source(rt)

    write_history(rt, seed=22, rows=120, start=T0 + timedelta(days=8), end=T0 + timedelta(days=9))
    second = sync_store(rt)
    assert second.mode == "incremental" and second.usage_rows == 120
    assert sync_store(rt).mode == "none"
    assert_matches_source(rt)

    ref = reference_spend(rt)
    by_provider = queries(rt).breakdown("provider", SpendFilter()).frame.set_index("key")
    for provider, group in ref[~ref["sandbox"]].groupby("provider"):
        want = reference_measures(group)
        assert by_provider.loc[provider, "credits"] == want["credits"]
        assert by_provider.loc[provider, "base_cost_usd"] == want["base_cost_usd"]


def test_postgresql_numeric_arrives_exact(pg_runtime: Database) -> None:
    rt = pg_runtime
    write_history(rt, seed=23, rows=20, start=T0, end=T0 + timedelta(days=1), extras=False)
    with rt.session() as s:
        s.execute(text("UPDATE ai_usage_log SET base_cost_usd = 123456789.123456789 WHERE id = 1"))
    sync_store(rt)
    con = store_for(rt).connect()
    assert con.execute("SELECT base_cost_usd, base_nano FROM ai_usage_log WHERE id = 1").fetchall() == [
        (Decimal("123456789.123456789"), 123456789123456789)
    ]
    assert store_for(rt).state().source.startswith("postgresql://")


def test_the_fingerprint_never_holds_the_password() -> None:
    from core.analytics.extract import Source
    from core.db.engine import make_engine

    src = Source.from_engine(make_engine("postgresql+psycopg://finance:s3cret@db.internal:5432/credits"))
    assert "s3cret" not in src.fingerprint and "s3cret" in src.uri
    assert src.fingerprint == "postgresql://finance:***@db.internal:5432/credits"
