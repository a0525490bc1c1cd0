"""The sensitivity sweep: 200 points, crossovers where the curves cross, and agreement with the replay."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from core.breakeven import Traffic, evaluate, sweep
from core.breakeven.sweep import crossovers, default_range
from core.breakeven.traffic import diurnal, flat, poisson
from tests.core.breakeven.helpers import scenario


def test_flat_sweep_crosses_serverless_at_each_break_even() -> None:
    traffic = flat(60, 720)
    sc = scenario("0.01")
    ev = evaluate(traffic, sc)
    low, high = default_range(traffic, ev.break_even_requests_per_hour)
    curves = sweep(traffic, sc, low=low, high=high)
    assert curves.rates.size == 200
    assert set(curves.costs) == {"serverless"} | {
        f"{g} {m}" for g in ("T4", "L4", "A10G", "A100") for m in ("always-on", "scale-to-zero")
    }
    first = {}
    for c in curves.crossovers:
        if c.other == "serverless":
            first.setdefault(c.option, c.requests_per_hour)
    for gpu, rate in ev.break_even_requests_per_hour.items():
        assert first[f"{gpu} always-on"] == pytest.approx(rate, rel=0.01)


def test_flat_sweep_equals_the_replay_at_the_same_rate() -> None:
    traffic = flat(250, 240)
    sc = scenario("0.01", idle_timeout_minutes=5, cold_start_s=60)
    curves = sweep(traffic, sc, low=250, high=251, points=2)
    ev = evaluate(traffic, sc)
    for name, cost in curves.costs.items():
        assert cost[0] == pytest.approx(float(ev.option(name).monthly_cost_usd), abs=0.01), name


@pytest.mark.parametrize("make", [poisson, diurnal])
def test_expected_sweep_agrees_with_the_sampled_replay(make: Callable[..., Traffic]) -> None:
    traffic = make(20, 24 * 60, seed=9)
    sc = scenario("0.01", idle_timeout_minutes=15, cold_start_s=120)
    curves = sweep(traffic, sc, low=20, high=21, points=2)
    ev = evaluate(traffic, sc)
    for name in ("serverless", "T4 scale-to-zero", "A100 scale-to-zero", "L4 always-on"):
        assert curves.costs[name][0] == pytest.approx(float(ev.option(name).monthly_cost_usd), rel=0.03), name


def test_crossovers_are_interpolated_on_a_log_axis() -> None:
    rates = np.array([10.0, 100.0])
    costs = {"serverless": np.array([1.0, 10.0]), "T4 always-on": np.array([5.5, 5.5])}
    (c,) = crossovers(rates, costs)
    assert (c.option, c.other) == ("T4 always-on", "serverless")
    assert c.requests_per_hour == pytest.approx(10**1.5)
    assert c.monthly_cost_usd == pytest.approx(5.5)


def test_an_option_that_cannot_keep_up_leaves_a_gap_in_its_curve() -> None:
    curves = sweep(flat(10, 24), scenario(max_replicas=1), low=10, high=100_000, points=50)
    t4 = curves.costs["T4 always-on"]
    assert np.isfinite(t4[0]) and np.isnan(t4[-1])
    assert curves.cheapest()[-1] == "serverless"


@pytest.mark.parametrize("rate", [0.5, 3.9, 4.0, 7.3, 60.0, 61.5, 900.0])
def test_the_flat_shortcut_is_the_replay(rate: float) -> None:
    from core.breakeven.scale_to_zero import replay
    from core.breakeven.sweep import _even_activity
    from core.breakeven.traffic import even_counts

    counts = even_counts(rate, 3 * 1440)
    fast, slow = _even_activity(counts, rate, 15), replay(counts, 15)
    assert np.array_equal(fast.up, slow.up) and np.array_equal(fast.cold, slow.cold)
    assert (fast.requests, fast.cold_requests) == (slow.requests, slow.cold_requests)


@pytest.mark.parametrize("make", [poisson, diurnal])
def test_the_stacked_expectation_is_scale_to_zero_expected_per_block(make: Callable[..., Traffic]) -> None:
    from core.breakeven.capacity import demand_blocks
    from core.breakeven.scale_to_zero import expected, per_block
    from core.breakeven.sweep import _stacked_activity

    traffic = make(30, 24 * 7, seed=2)
    sc = scenario(idle_timeout_minutes=20)
    rates = np.array([0.3, 30.0, 3000.0])
    requests, blocks, stacked = _stacked_activity(traffic, rates, sc)
    unit = demand_blocks(traffic.shape, sc.capacity_window_minutes)
    for i, rate in enumerate(rates):
        exact = per_block(expected(traffic.intensity(rate), 20), unit)
        assert np.allclose(stacked.up[i], exact.up, rtol=1e-4, atol=1e-4)
        assert np.allclose(stacked.cold[i], exact.cold, rtol=1e-4, atol=1e-5)
        assert np.allclose(stacked.stays_up[i], exact.stays_up, rtol=1e-4, atol=1e-5)
        assert requests[i] == pytest.approx(rate * traffic.hours)
        assert np.allclose(blocks.rates_per_hour[i], unit.rates_per_hour * rate)
