"""The Spend page's service (issue 17): date presets, day/week/month buckets that add up (DST included), the running
bucket marked partial, an empty period that says the sandbox hid its calls, and one's own view without finance's
figures. On SQLite, with a known history."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM, Principal
from core.errors import InvalidInputError
from core.services import Services
from core.services.spend import (
    FINANCE_COLUMNS,
    PRESETS,
    PageQuery,
    SpendFilter,
    bucket_start,
    counted_days,
    preset_range,
)
from core.users import UserView
from tests.conftest import make_runtime
from tests.core.optimize.history import model, user, write_usage

FIRST = datetime(2026, 2, 20)  # over two DST changes: 29 March (Europe) and 8 March (America)
DAYS = 75
NOW = datetime(2026, 4, 15, 13, 30)  # a Wednesday afternoon, UTC


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, dict[str, UserView]]]:
    """Ana (engineer) and Ben (PM) with calls at seeded random times, each 1-9 credits; five sandbox calls of
    Ana's on 1 March, the only calls that day; Fin (finance) with none."""
    tmp = tmp_path_factory.mktemp("spend_page")
    db = make_runtime(f"sqlite:///{tmp / 'app.db'}", tmp)
    people = {
        "ana": user(db, "ana@example.com", role="engineer"),
        "ben": user(db, "ben@example.com", role="pm"),
        "fin": user(db, "fin@example.com", role="finance"),
    }
    chat = model(db, "gpt-4o-mini")
    rng = random.Random(17)
    for who in ("ana", "ben"):
        for _ in range(400):
            at = FIRST + timedelta(seconds=rng.randrange(DAYS * 86400))
            if at.date() == date(2026, 3, 1):
                continue
            write_usage(db, people[who], chat, [at], "0.0123", cost_credits=rng.randint(1, 9))
    sandbox = [datetime(2026, 3, 1, 10, m) for m in range(5)]
    write_usage(db, people["ana"], chat, sandbox, "0.002", sandbox=True, provider="sandbox")
    services = Services(db)
    services.spend.sync(SYSTEM)
    yield services, people
    services.close()
    db.dispose()


def as_(people: dict[str, UserView], who: str) -> Principal:
    return Principal.of(people[who])


def test_presets_cover_the_days_they_say() -> None:
    today = date(2026, 3, 15)
    assert preset_range("today", today) == (today, today)
    assert preset_range("7 days", today) == (date(2026, 3, 9), today)
    assert preset_range("30 days", today) == (date(2026, 2, 14), today)
    assert preset_range("month to date", today) == (date(2026, 3, 1), today)
    assert preset_range("last month", today) == (date(2026, 2, 1), date(2026, 2, 28))
    assert preset_range("last month", date(2026, 1, 31)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert PRESETS[-1] == "custom"
    with pytest.raises(InvalidInputError, match="Unknown date preset"):
        preset_range("custom", today)


def test_buckets_start_on_the_day_the_monday_and_the_first() -> None:
    day = date(2026, 4, 15)  # a Wednesday
    assert [bucket_start(day, g) for g in ("day", "week", "month")] == [day, date(2026, 4, 13), date(2026, 4, 1)]
    with pytest.raises(InvalidInputError, match="Unknown time bucket"):
        bucket_start(day, "fortnight")


def test_a_week_or_month_the_period_starts_or_ends_inside_of_counts_only_its_days() -> None:
    import pandas as pd

    weeks = pd.DataFrame({"bucket": [date(2026, 4, 13), date(2026, 4, 20), date(2026, 4, 27)], "credits": [1, 2, 3]})
    out = counted_days(weeks, "week", date(2026, 4, 15), date(2026, 4, 28))
    assert list(out["counted_from"]) == [date(2026, 4, 15), date(2026, 4, 20), date(2026, 4, 27)]
    assert list(out["counted_to"]) == [date(2026, 4, 19), date(2026, 4, 26), date(2026, 4, 28)]
    months = pd.DataFrame({"bucket": pd.to_datetime(["2026-01-01", "2026-02-01"])})
    out = counted_days(months, "month", date(2026, 1, 10), date(2026, 3, 31))
    assert list(out["counted_from"]) == [date(2026, 1, 10), date(2026, 2, 1)]
    assert list(out["counted_to"]) == [date(2026, 1, 31), date(2026, 2, 28)]
    assert counted_days(weeks, "day", date(2026, 4, 15), date(2026, 4, 28)) is weeks  # a day counts whole


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.integers(0, DAYS - 1),
    length=st.integers(1, DAYS),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    grain=st.sampled_from(["week", "month"]),
)
def test_week_and_month_totals_are_the_sums_of_their_days(world, first: int, length: int, tz: str, grain: str) -> None:
    services, _ = world
    since = FIRST.date() + timedelta(days=first)
    f = SpendFilter.dates(since, since + timedelta(days=length - 1), tz=tz)
    days = services.spend.series(SYSTEM, "day", f, tz=tz, sync_if_older_than=None).frame
    buckets = services.spend.series(SYSTEM, grain, f, tz=tz, sync_if_older_than=None).frame
    want: dict[date, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for d, requests, credits, cost in zip(
        days["bucket"], days["requests"], days["credits"], days["base_cost_usd"], strict=True
    ):
        acc = want[bucket_start(d, grain)]
        acc[0] += int(requests)
        acc[1] += int(credits)
        acc[2] += cost
    got = {
        b: [int(r), int(c), cost]
        for b, r, c, cost in zip(
            buckets["bucket"], buckets["requests"], buckets["credits"], buckets["base_cost_usd"], strict=True
        )
    }
    assert got == dict(want)
    assert all(bucket_start(b, grain) == b for b in got)


def test_a_page_grouped_by_week_marks_the_running_week_partial(world) -> None:
    services, people = world
    query = PageQuery(since=date(2026, 3, 16), until=date(2026, 4, 15), grain="week")
    page = services.spend.page(as_(people, "fin"), query, now=NOW)
    buckets = sorted(set(page.series_by_provider.frame["bucket"]))
    assert all(b.weekday() == 0 for b in buckets) and buckets[-1] == date(2026, 4, 13)
    assert page.grain == "week" and page.partial_bucket == date(2026, 4, 13)
    totals = page.series_totals.frame
    assert int(totals["credits"].sum()) == page.totals.credits == int(page.top_users.frame["credits"].sum())
    # a period that ended before today has no partial bucket
    past = services.spend.page(as_(people, "fin"), replace(query, until=date(2026, 4, 5)), now=NOW)
    assert past.partial_bucket is None
    with pytest.raises(InvalidInputError, match="Unknown time bucket"):
        services.spend.page(as_(people, "fin"), replace(query, grain="hour"), now=NOW)


def test_every_user_and_model_not_a_top_ten(world) -> None:
    services, people = world
    query = PageQuery(since=FIRST.date(), until=NOW.date())
    page = services.spend.page(as_(people, "fin"), query, now=NOW)
    assert sorted(page.top_users.frame["user"]) == ["ana@example.com", "ben@example.com"]
    q = services.analytics.queries(sync_if_older_than=None)
    assert page.totals == q.totals(query.filter(q.tz))[0]  # summed from every user's row, as the engine sums them
    assert page.finance and "markup_pct" in page.top_users.frame.columns
    credits = list(page.top_models.frame["credits"])
    assert credits == sorted(credits, reverse=True)  # most spend first


def test_an_empty_period_says_how_many_sandbox_calls_are_hidden(world) -> None:
    services, people = world
    query = PageQuery(since=date(2026, 3, 1), until=date(2026, 3, 1))
    page = services.spend.page(as_(people, "fin"), query, now=NOW)
    assert page.totals.requests == 0 and page.hidden_sandbox_requests == 5
    shown = services.spend.page(as_(people, "fin"), replace(query, include_sandbox=True), now=NOW)
    assert shown.totals.requests == 5 and shown.hidden_sandbox_requests == 0


def test_ones_own_view_has_ones_spend_and_credits_without_finances_figures(world) -> None:
    services, people = world
    query = PageQuery(since=FIRST.date(), until=NOW.date(), drill_user="ana@example.com")
    page = services.spend.page(as_(people, "ana"), query, now=NOW)
    assert not page.finance and page.drill is None  # no drill-down into oneself
    assert page.balance == services.users.get(SYSTEM, "ana@example.com").credit_balance
    assert list(page.top_users.frame["user"]) == ["ana@example.com"]
    fin = services.spend.page(as_(people, "fin"), replace(query, users=("ana@example.com",)), now=NOW)
    assert page.totals.credits == fin.totals.credits and page.totals.revenue_usd == fin.totals.revenue_usd
    frames = [
        page.series_by_provider.frame,
        page.top_users.frame,
        page.top_models.frame,
        page.top_keys.frame,
        page.provider_models.frame,
        page.series_totals.frame,
        page.transactions.frame,
    ]
    for frame in frames:
        assert not set(FINANCE_COLUMNS) & set(frame.columns), frame.columns
    assert set(page.transactions.frame["user"]) == {"ana@example.com"}
    assert page.totals.margin_usd == 0 and page.totals.markup_pct is None
    assert page.kpis.month_to_date.margin_usd == 0 and page.kpis.forecast.margin_forecast_usd == 0
    assert fin.totals.margin_usd != 0  # finance does see it


def test_the_command_lines_questions_withhold_finances_figures_as_the_page_does(world) -> None:
    """`spend --as PM` asks the same services as the page: one's own spend and credits, never the provider cost,
    margin, markup or rounding uplift (finance and admins still get them)."""
    services, people = world
    f = SpendFilter.dates(FIRST.date(), NOW.date(), tz="UTC")
    for who in ("ana", "ben"):
        me = as_(people, who)
        for result in (
            services.spend.breakdown(me, "model", f, sync_if_older_than=None),
            services.spend.series(me, "day", f, sync_if_older_than=None),
            services.spend.series(me, "day", f, split="provider", sync_if_older_than=None),
        ):
            assert not set(FINANCE_COLUMNS) & set(result.frame.columns), result.frame.columns
            assert result.frame["credits"].sum() > 0
        kpis = services.spend.kpis(me, f)
        assert (kpis.month_to_date.margin_usd, kpis.month_to_date.base_cost_usd) == (0, 0)
        forecast = services.spend.forecast(me, f, sync_if_older_than=None)
        assert (forecast.base_cost_to_date_usd, forecast.margin_forecast_usd) == (0, 0)
    seen = services.spend.breakdown(as_(people, "fin"), "model", f, sync_if_older_than=None).frame
    assert set(FINANCE_COLUMNS) <= set(seen.columns) and seen["margin_usd"].sum() != 0


def test_the_lines_series_has_every_bucket_a_day_without_spend_a_zero(world) -> None:
    services, people = world
    query = PageQuery(since=date(2026, 2, 25), until=date(2026, 3, 4))  # 1 March: sandbox calls only
    page = services.spend.page(as_(people, "fin"), query, now=NOW)
    totals = page.series_totals.frame
    assert list(totals["bucket"]) == [date(2026, 2, 25) + timedelta(days=i) for i in range(8)]
    (quiet,) = totals[totals["bucket"] == date(2026, 3, 1)].to_dict("records")
    assert quiet["requests"] == 0 and quiet["credits"] == 0
    assert quiet["revenue_usd"] == Decimal(0) and quiet["margin_usd"] == Decimal(0)  # a line through zero
    assert int(totals["credits"].sum()) == page.totals.credits
    weeks = services.spend.page(as_(people, "ben"), replace(query, grain="week"), now=NOW).series_totals.frame
    assert list(weeks["bucket"]) == [date(2026, 2, 23), date(2026, 3, 2)]  # one's own view, by week: no gap either
