"""The Spend page's charts: a short date axis is ticked at its buckets, written as dates, never as times of day."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pages.charts.spend_charts import lines, stacked_bars


def _days(*days: date) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": [pd.Timestamp(d) for d in days for _ in (0, 1)],
            "provider": ["openai", "anthropic"] * len(days),
            "revenue_usd": [1.5, 2.0] * len(days),
        }
    )


@pytest.mark.parametrize(
    ("days", "grain", "shown"),
    [
        ((date(2026, 12, 6),), "day", "%b %-d, %Y"),  # "today": one bar, plotly ticked it "00:00:00"
        ((date(2026, 12, 5), date(2026, 12, 6)), "day", "%b %-d, %Y"),  # two days: it ticked "12:00" between
        ((date(2026, 11, 1), date(2026, 12, 1)), "month", "%b %Y"),
    ],
)
def test_few_buckets_are_ticked_at_each_bucket_as_a_date(days: tuple[date, ...], grain: str, shown: str) -> None:
    frame = _days(*days)
    bars = stacked_bars(
        frame, x="bucket", y="revenue_usd", color="provider", colors={}, partial=days[-1], title="t", grain=grain
    )
    line = lines(
        frame, x="bucket", y="revenue_usd", series="provider", colors={}, partial=days[-1], title="t", grain=grain
    )
    for fig in (bars, line):
        axis = fig.layout.xaxis
        assert [pd.Timestamp(v).date() for v in axis.tickvals] == list(days)
        assert axis.tickformat == shown and "%H" not in axis.tickformat


def test_a_long_axis_keeps_plotlys_own_ticks() -> None:
    frame = _days(*pd.date_range("2026-11-01", periods=30).date)
    fig = stacked_bars(frame, x="bucket", y="revenue_usd", color="provider", colors={}, partial=None, title="t")
    assert fig.layout.xaxis.tickvals is None
