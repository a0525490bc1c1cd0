"""Day, week and month buckets are local calendar periods, DST changes included, in the rollup and from the rows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from core.analytics import SpendFilter, SpendQueries
from core.db.models import AIModel, AIUsageLog, User
from tests.conftest import make_runtime
from tests.support.analytics import store_for, sync_store

# (UTC instant, credits). New York springs forward on 2025-03-09 (UTC-5 -> UTC-4) and falls back on 2025-11-02.
ROWS = [
    (datetime(2025, 3, 9, 4, 59), 1),  # 23:59 EST on Mar 8
    (datetime(2025, 3, 9, 5, 0), 10),  # 00:00 EST on Mar 9
    (datetime(2025, 3, 10, 3, 59), 100),  # 23:59 EDT on Mar 9 (the 23-hour day)
    (datetime(2025, 3, 10, 4, 0), 1000),  # 00:00 EDT on Mar 10
    (datetime(2025, 11, 2, 4, 0), 2),  # 00:00 EDT on Nov 2
    (datetime(2025, 11, 3, 4, 59), 20),  # 23:59 EST on Nov 2 (the 25-hour day)
    (datetime(2025, 11, 3, 5, 0), 200),  # 00:00 EST on Nov 3
    (datetime(2025, 3, 31, 23, 30), 5000),  # 19:30 EDT on Mar 31; 05:00 IST on Apr 1 in Kolkata
]


@pytest.fixture(params=["America/New_York", "UTC"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SpendQueries:
    """The same rows, with the daily rollup in New York (so New York days come from it) or in UTC (from rows)."""
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, reporting_tz=request.param)
    with rt.session() as s:
        user = User(email="tz@example.test", name="TZ", role="pm")
        s.add(user)
        s.flush()
        model = s.execute(select(AIModel.id, AIModel.provider, AIModel.category, AIModel.deployment_type)).first()
        s.execute(
            insert(AIUsageLog),
            [
                {
                    "created_at": at,
                    "user_id": user.id,
                    "ai_model_id": model[0],
                    "provider": model[1],
                    "category": model[2],
                    "deployment_type": model[3],
                    "cost_credits": c,
                    "base_cost_usd": Decimal(0),
                    "status": "success",
                }
                for at, c in ROWS
            ],
        )
    sync_store(rt)
    yield SpendQueries(store_for(rt), credit_usd=Decimal("0.04"), reporting_tz="America/New_York")
    rt.dispose()


def _series(q: SpendQueries, grain: str, tz: str, f: SpendFilter | None = None) -> dict[date, int]:
    frame = q.series(grain, f or SpendFilter(), tz=tz).frame
    return dict(zip(frame["bucket"], frame["credits"], strict=True))


def test_days_across_spring_forward_and_fall_back(store: SpendQueries) -> None:
    days = _series(store, "day", "America/New_York")
    assert days[date(2025, 3, 8)] == 1
    assert days[date(2025, 3, 9)] == 110  # 00:00 EST .. 23:59 EDT: 23 hours
    assert days[date(2025, 3, 10)] == 1000
    assert days[date(2025, 11, 2)] == 22  # 25 hours
    assert days[date(2025, 11, 3)] == 200
    assert days[date(2025, 3, 31)] == 5000


def test_the_same_rows_in_other_zones(store: SpendQueries) -> None:
    utc = _series(store, "day", "UTC")
    assert utc[date(2025, 3, 9)] == 11 and utc[date(2025, 3, 10)] == 1100
    kolkata = _series(store, "day", "Asia/Kolkata")  # UTC+5:30, no DST
    assert kolkata[date(2025, 4, 1)] == 5000
    assert kolkata[date(2025, 3, 9)] == 11  # 10:29 and 10:30 IST on Mar 9
    assert kolkata[date(2025, 3, 10)] == 1100


def test_weeks_start_on_monday_and_months_are_local(store: SpendQueries) -> None:
    weeks = _series(store, "week", "America/New_York")
    assert weeks[date(2025, 3, 3)] == 111  # Mar 8 (Sat) and Mar 9 (Sun) are in the week of Monday Mar 3
    assert weeks[date(2025, 3, 10)] == 1000
    months = _series(store, "month", "America/New_York")
    assert months[date(2025, 3, 1)] == 6111
    assert _series(store, "month", "Asia/Kolkata")[date(2025, 4, 1)] == 5000


def test_date_filters_are_local_days(store: SpendQueries) -> None:
    f = SpendFilter.dates(date(2025, 3, 9), date(2025, 3, 9), tz="America/New_York")
    assert store.totals(f)[0].credits == 110
    f = SpendFilter.dates(date(2025, 3, 9), date(2025, 3, 9), tz="UTC")
    assert store.totals(f)[0].credits == 11
