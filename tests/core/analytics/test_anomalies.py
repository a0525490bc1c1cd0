"""Anomalies: injected spikes are found with their size; noise, weekly shape and new users are not flagged."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from core.analytics.anomalies import find_anomalies

START = date(2025, 1, 1)
DAYS = 90


def noisy(seed: int, entities: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(entities):
        level = rng.lognormal(3, 1)  # each entity has its own level: $1 .. $150 a day
        for i in range(DAYS):
            d = START + timedelta(days=i)
            weekend = 0.4 if d.weekday() >= 5 else 1.0
            rows.append({"entity": f"e{e}", "day": d, "value": max(0.0, rng.normal(level * weekend, level * 0.15))})
    return pd.DataFrame(rows)


def check(df: pd.DataFrame) -> pd.DataFrame:
    return find_anomalies(
        df, first_day=START + timedelta(days=35), last_day=START + timedelta(days=DAYS - 1), min_excess=1.0
    )


@pytest.mark.parametrize("seed", range(5))
def test_noise_and_weekly_shape_are_not_anomalies(seed: int) -> None:
    assert check(noisy(seed)).empty


@pytest.mark.parametrize("seed", range(3))
def test_injected_spikes_are_found_with_their_size(seed: int) -> None:
    df = noisy(seed)
    spikes = {("e3", START + timedelta(days=50)): 6.0, ("e17", START + timedelta(days=80)): 4.0}
    for (e, d), factor in spikes.items():
        m = (df["entity"] == e) & (df["day"] == d)
        df.loc[m, "value"] = df.loc[m, "value"] * factor + 50
    found = check(df)
    assert {(r.entity, r.day) for r in found.itertuples()} == set(spikes)
    for r in found.itertuples():
        assert r.excess == pytest.approx(r.value - r.baseline_median)
        assert r.score >= 6 and r.ratio > 2
    assert list(found["excess"]) == sorted(found["excess"], reverse=True)


def test_one_spike_does_not_hide_the_next() -> None:
    df = noisy(9, entities=1)
    for i in (50, 55):
        m = df["day"] == START + timedelta(days=i)
        df.loc[m, "value"] *= 8
    assert len(check(df)) == 2


def test_new_entity_and_idle_days_are_not_anomalies() -> None:
    rows = [{"entity": "new", "day": START + timedelta(days=i), "value": 40.0} for i in range(80, DAYS)]
    rows += [{"entity": "rare", "day": START + timedelta(days=i), "value": 0.5} for i in range(0, DAYS, 9)]
    assert check(pd.DataFrame(rows)).empty


def test_spike_on_a_mostly_idle_entity_needs_a_real_amount() -> None:
    rows = [{"entity": "idle", "day": START + timedelta(days=i), "value": 0.2} for i in range(0, 60, 3)]
    rows.append({"entity": "idle", "day": START + timedelta(days=70), "value": 0.9})
    assert check(pd.DataFrame(rows)).empty  # tiny excess: under min_excess and min_scale
    rows.append({"entity": "idle", "day": START + timedelta(days=75), "value": 40.0})
    found = check(pd.DataFrame(rows))
    assert list(found["day"]) == [START + timedelta(days=75)]
