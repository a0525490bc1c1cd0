"""The history adapter: a model's recorded requests per minute or hour, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.breakeven import EmptyHistoryError
from core.breakeven.errors import InvalidRateError
from core.breakeven.history import HistoryDays, catalog_gpus, load_history, observed_request_size
from core.catalog import UnknownModelError
from core.db import Database
from core.db.models import AIModel, AIUsageLog
from core.demo import write_demo_history
from core.services.breakeven import BreakevenInput, history_days, simulate
from tests.conftest import services_of

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def utc_days(since: date, until: date) -> HistoryDays:
    return history_days(since, until, "UTC")


@pytest.fixture
def demo(runtime: Database) -> Database:
    write_demo_history(runtime, rows=4000, days=20, seed=5, end=END)
    return runtime


def _recorded(rt: Database, model_id: str, start: datetime, end: datetime) -> int:
    with rt.session() as s:
        pks = select(AIModel.id).where(AIModel.model_id == model_id)
        return int(
            s.scalar(
                select(func.coalesce(func.sum(AIUsageLog.requests_count), 0)).where(
                    AIUsageLog.ai_model_id.in_(pks),
                    AIUsageLog.created_at >= start,
                    AIUsageLog.created_at < end,
                    AIUsageLog.cache_hit.is_(False),
                )
            )
            or 0
        )


@pytest.mark.parametrize("resolution", ["minute", "hour"])
def test_history_counts_every_recorded_request_in_its_bucket(demo: Database, resolution: str) -> None:
    since, until = date(2026, 11, 5), date(2026, 11, 18)
    with demo.session() as s:
        hist = load_history(s, MODEL, utc_days(since, until), resolution=resolution, now=END)
    start, end = datetime(2026, 11, 5), datetime(2026, 11, 19)
    assert hist.start == start and hist.end == end
    assert hist.counts.size == 14 * 1440 // hist.bucket_minutes
    assert hist.requests == _recorded(demo, MODEL, start, end) > 0


def test_minute_buckets_land_in_the_right_minute(demo: Database) -> None:
    with demo.session() as s:
        hist = load_history(s, MODEL, utc_days(date(2026, 11, 10), date(2026, 11, 10)), now=END)
        first = int(hist.counts.nonzero()[0][0])
        at = datetime(2026, 11, 10) + timedelta(minutes=first)
    assert _recorded(demo, MODEL, at, at + timedelta(minutes=1)) == hist.counts[first]
    assert _recorded(demo, MODEL, datetime(2026, 11, 10), at) == 0


def test_the_range_stops_at_now(demo: Database) -> None:
    with demo.session() as s:
        hist = load_history(s, MODEL, utc_days(date(2026, 11, 20), date(2026, 11, 25)), now=END)
    assert hist.end == datetime(2026, 11, 20, 12, 1)
    assert hist.counts.size == 12 * 60 + 1


def test_empty_history_and_unknown_model_are_refused(demo: Database) -> None:
    with demo.session() as s:
        with pytest.raises(EmptyHistoryError, match=r"no recorded requests between 2025-01-01 and 2025-01-31 \(UTC\)"):
            load_history(s, MODEL, utc_days(date(2025, 1, 1), date(2025, 1, 31)), now=END)
        with pytest.raises(UnknownModelError, match="not in the catalog"):
            load_history(s, "no/such-model", utc_days(date(2026, 11, 1), date(2026, 11, 2)), now=END)
        with pytest.raises(EmptyHistoryError, match="future"):
            load_history(s, MODEL, utc_days(date(2026, 12, 1), date(2026, 12, 2)), now=END)


def test_observed_request_size_is_the_average_successful_request(demo: Database) -> None:
    with demo.session() as s:
        size = observed_request_size(s, MODEL, datetime(2026, 11, 1), datetime(2026, 11, 21))
        none = observed_request_size(s, MODEL, datetime(2020, 1, 1), datetime(2020, 1, 3))
    assert size is not None and size.input_tokens > 0 and size.output_tokens > 0
    assert none is None


def test_catalog_gpus_switch_between_the_products_rate_and_the_list_price(demo: Database) -> None:
    with demo.session() as s:
        spec = {g.id: str(g.hourly_usd) for g in catalog_gpus(s, {})}
        listed = {g.id: str(g.hourly_usd) for g in catalog_gpus(s, {}, list_price=True)}
    assert spec == {"T4": "0.600000000", "L4": "0.800000000", "A10G": "1.000000000", "A100": "4.000000000"}
    assert listed["T4"] == "0.500000000" and listed["A100"] == "2.500000000"


def test_simulate_replays_a_models_history_with_its_memory_and_catalog_price(demo: Database) -> None:
    inp = BreakevenInput(profile="history", model_id=MODEL, since=date(2026, 11, 1), until=date(2026, 11, 19))
    with demo.session() as s:
        result = simulate(s, inp, now=END)
    ev = result.evaluation
    assert result.traffic.profile == "history"
    assert ev.requests == _recorded(demo, MODEL, datetime(2026, 11, 1), datetime(2026, 11, 20))
    assert ev.option("T4 always-on").excluded_reason is not None  # an 18 GB model does not fit a T4
    assert "average request recorded in the history" in result.serverless_basis
    assert result.history and result.history["requests"] == ev.requests


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("engineer", True), ("finance", False), ("pm", False)])
def test_only_engineers_and_admins_run_the_simulator(sqlite_runtime: Database, role: str, allowed: bool) -> None:
    from core.access import Principal, Role
    from core.errors import PermissionDeniedError

    who = Principal(user_id=1, email=f"{role}@example.com", name=role, role=Role(role))
    inp = BreakevenInput(requests_per_hour=60, hours=24)
    breakeven = services_of(sqlite_runtime).breakeven
    if allowed:
        assert breakeven.simulate(who, inp).evaluation.requests == 1440
    else:
        with pytest.raises(PermissionDeniedError, match="may not run the break-even simulator"):
            breakeven.simulate(who, inp)


@pytest.mark.parametrize("resolution", ["minute", "hour"])
@pytest.mark.parametrize(
    ("tz", "first_midnight"),
    [("America/New_York", datetime(2026, 11, 5, 5, 0)), ("Asia/Kolkata", datetime(2026, 11, 4, 18, 30))],
)
def test_days_are_local_days_and_each_is_a_whole_number_of_buckets(
    demo: Database, resolution: str, tz: str, first_midnight: datetime
) -> None:
    """Nov 5-8 in New York start at 05:00 UTC; in Kolkata (UTC+5:30) at 18:30 UTC the day before, so hours counted
    from a UTC hour would straddle two local days there."""
    with demo.session() as s:
        hist = load_history(s, MODEL, history_days(date(2026, 11, 5), date(2026, 11, 8), tz), resolution=resolution)
    assert hist.start == first_midnight and hist.end == first_midnight + timedelta(days=4)
    per_day = 1440 // hist.bucket_minutes
    assert hist.counts.size == 4 * per_day
    for k in range(4):
        day = first_midnight + timedelta(days=k)
        got = int(hist.counts[k * per_day : (k + 1) * per_day].sum())
        assert got == _recorded(demo, MODEL, day, day + timedelta(days=1)) > 0, (tz, k)


def test_the_range_stops_at_now_in_local_days(demo: Database) -> None:
    """END is 07:00 on Nov 20 in New York: the range holds that day's first 7 hours and the minute now falls in."""
    with demo.session() as s:
        hist = load_history(s, MODEL, history_days(date(2026, 11, 20), date(2026, 11, 25), "America/New_York"), now=END)
    assert hist.start == datetime(2026, 11, 20, 5, 0) and hist.end == datetime(2026, 11, 20, 12, 1)
    assert hist.counts.size == 7 * 60 + 1


def test_today_and_the_messages_are_the_reporting_zones() -> None:
    late = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 22:00 on Nov 19 in New York
    days = history_days(None, None, "America/New_York", late)
    assert (days.since, days.until) == (date(2026, 10, 21), date(2026, 11, 19))
    assert days.end == datetime(2026, 11, 20, 5, 0)
    assert history_days(None, None, "UTC", late).until == date(2026, 11, 20)


def test_an_empty_range_names_its_time_zone(demo: Database) -> None:
    days = history_days(date(2025, 1, 1), date(2025, 1, 31), "America/New_York")
    with demo.session() as s, pytest.raises(EmptyHistoryError, match=r"2025-01-31 \(America/New_York\): widen"):
        load_history(s, MODEL, days, now=END)


def test_a_start_after_today_without_an_end_says_so_and_offers_no_swap() -> None:
    """With no end given, the end is today: "swap the dates" named an end nobody typed."""
    now = datetime(2026, 12, 7, 12, 0)
    with pytest.raises(InvalidRateError) as refused:
        history_days(date(2026, 12, 9), None, "UTC", now)
    assert str(refused.value) == (
        "The range starts on 2026-12-09, after today (2026-12-07 in UTC): the history has no such days yet; pick an "
        "earlier start."
    )
    assert history_days(date(2026, 12, 7), None, "UTC", now).until == date(2026, 12, 7)
