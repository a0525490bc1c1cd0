"""Traffic profiles: deterministic for a seed, at the rate asked for, with the shape their names promise."""

from __future__ import annotations

import numpy as np
import pytest

from core.breakeven import from_counts, make_traffic
from core.breakeven.traffic import diurnal_shape, even_counts


@pytest.mark.parametrize("profile", ["flat", "poisson", "diurnal", "bursty"])
def test_profiles_are_deterministic_for_a_seed_and_carry_the_rate(profile: str) -> None:
    a = make_traffic(profile, 120, 24 * 28, seed=3)
    b = make_traffic(profile, 120, 24 * 28, seed=3)
    assert np.array_equal(a.counts, b.counts)
    assert a.minutes == 28 * 24 * 60
    assert a.requests / a.hours == pytest.approx(120, rel=0.03)
    assert a.shape.mean() == pytest.approx(1 / 60)
    if profile != "flat":
        assert not np.array_equal(a.counts, make_traffic(profile, 120, 24 * 28, seed=4).counts)


def test_flat_traffic_is_evenly_spaced_and_exact() -> None:
    assert even_counts(60, 5).tolist() == [1, 1, 1, 1, 1]
    assert even_counts(6, 30).tolist() == ([0] * 9 + [1]) * 3
    t = make_traffic("flat", 2.5, 24)
    assert t.requests == 60 and t.deterministic


def test_diurnal_traffic_is_busier_by_day_and_on_weekdays() -> None:
    shape = diurnal_shape(7 * 1440).reshape(7, 24, 60).sum(axis=2)
    assert shape[:5, 14].mean() > 4 * shape[:5, 3].mean()  # mid-afternoon vs 03:00
    assert shape[5:].sum() == pytest.approx(0.35 * shape[:2].sum())  # weekend days at 35%


def test_bursty_traffic_has_bursts() -> None:
    t = make_traffic("bursty", 60, 24 * 30, seed=1)
    per_15 = t.counts[: t.minutes // 15 * 15].reshape(-1, 15).sum(axis=1) * 4
    assert per_15.max() > 4 * 60  # bursts run at several times the mean
    assert np.median(per_15) < 60  # while most of the time is calmer than the mean
    burst_minutes = (t.shape > t.shape.min()).mean()
    assert 0.03 < burst_minutes < 0.15  # about 20 of every 260 minutes


def test_history_per_minute_is_replayed_as_recorded_and_rescaled_on_request() -> None:
    counts = np.zeros(3 * 1440, dtype=np.int64)
    counts[600:700] = 2
    t = from_counts(counts)
    assert np.array_equal(t.counts, counts)
    assert t.requests_per_hour == pytest.approx(200 / 72)
    scaled = from_counts(counts, requests_per_hour=50, seed=1)
    assert scaled.requests / scaled.hours == pytest.approx(50, rel=0.05)
    # the shape is kept per hour: the requests land in hours 10 and 11 (minutes 600-719), and nowhere else
    assert scaled.counts[600:720].sum() == scaled.requests


def test_hourly_history_is_spread_over_its_minutes() -> None:
    t = from_counts(np.array([60, 0, 120]), bucket_minutes=60, seed=2)
    assert t.minutes == 180
    assert t.counts[60:120].sum() == 0
    assert t.counts[:60].sum() == pytest.approx(60, abs=25)
