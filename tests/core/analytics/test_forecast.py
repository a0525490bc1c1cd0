"""The month-end forecast recovers a known trend and weekly shape, and its band covers the truth."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from core.analytics.forecast import forecast_month

WEEKLY = np.array([100.0, 110.0, 105.0, 120.0, 90.0, 30.0, 20.0])  # Monday .. Sunday


def truth(d: date, origin: date) -> float:
    return WEEKLY[d.weekday()] + 2.0 * (d - origin).days  # +2 per day


def series(origin: date, today: date, fraction: float, noise: float, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    days = [origin + timedelta(days=i) for i in range((today - origin).days + 1)]
    values = [truth(d, origin) + rng.normal(0, noise) for d in days]
    values[-1] = truth(today, origin) * fraction  # today is partial
    return pd.Series(values, index=days)


def test_recovers_trend_and_weekday_seasonality() -> None:
    """Over 40 noisy histories: the forecast lands near the realised month and the 90% band covers it ~90% of the
    time."""
    origin, today, month_end = date(2025, 1, 1), date(2025, 3, 12), date(2025, 3, 31)
    errors, covered = [], 0
    for seed in range(40):
        hist = series(origin, today, 0.5, noise=5.0, seed=seed)
        fc = forecast_month(hist, today=today, today_fraction=0.5, month_end=month_end, month_start=date(2025, 3, 1))
        assert "trend + weekday" in fc.method
        rng = np.random.default_rng(1000 + seed)
        mtd = sum(v for d, v in hist.items() if date(2025, 3, 1) <= d < today)
        rest = [truth(today + timedelta(days=i), origin) for i in range((month_end - today).days + 1)]
        realised = mtd + sum(rest) + rng.normal(0, 5.0 * np.sqrt(len(rest) - 0.5))
        errors.append(abs(fc.forecast - realised) / realised)
        covered += fc.low <= realised <= fc.high
        assert fc.high - fc.low < 0.06 * realised  # little noise: a tight band
    assert np.mean(errors) < 0.01
    assert covered >= 32  # 90% nominal; at least 80% of 40


def test_noisier_history_gives_a_wider_band() -> None:
    origin, today = date(2025, 1, 1), date(2025, 3, 12)
    kw = {"today": today, "today_fraction": 0.5, "month_end": date(2025, 3, 31), "month_start": date(2025, 3, 1)}
    quiet = forecast_month(series(origin, today, 0.5, noise=2.0, seed=7), **kw)
    loud = forecast_month(series(origin, today, 0.5, noise=20.0, seed=7), **kw)
    assert loud.high - loud.low > 3 * (quiet.high - quiet.low)


def test_month_to_date_is_the_actual_and_the_floor_of_the_band() -> None:
    origin, today = date(2025, 2, 20), date(2025, 3, 3)  # too little history for a trend
    s = series(origin, today, 1.0, noise=0.0, seed=1)
    fc = forecast_month(s, today=today, today_fraction=1.0, month_end=date(2025, 3, 31), month_start=date(2025, 3, 1))
    mtd = sum(s[d] for d in s.index if d >= date(2025, 3, 1))
    assert fc.actual_to_date == pytest.approx(mtd)
    assert "too little history" in fc.method
    assert fc.low >= mtd and fc.forecast > mtd
    assert list(fc.daily.columns) == ["day", "actual", "predicted", "low", "high"]


def test_last_moment_of_the_month_forecasts_the_actual() -> None:
    origin, today = date(2025, 1, 1), date(2025, 3, 31)
    s = series(origin, today, 1.0, noise=5.0, seed=4)
    fc = forecast_month(s, today=today, today_fraction=1.0, month_end=today, month_start=date(2025, 3, 1))
    assert fc.forecast == pytest.approx(fc.actual_to_date)
    assert fc.high - fc.low < 1.0  # nothing left to predict except parameter noise times zero weight
