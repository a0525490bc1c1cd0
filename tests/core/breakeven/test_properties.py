"""Properties (hypothesis): more traffic never costs less, a longer idle timeout never bills fewer hours.

Both hold only under conditions, and the conditions are physics, not shortcuts:
- serverless and always-on cost never decrease with traffic; scale-to-zero's never does when the cold start is free
  (C = 0). With a billed cold start, one more request can keep a replica warm through a gap and save a start-up that
  costs more than the idle minutes it adds (shown below).
- a longer idle timeout never bills fewer *running* hours; billed hours including start-ups never decrease when the
  cold start bills at most one minute. A longer timeout that just bridges a gap saves a start-up of C minutes while
  adding as little as one running minute, so with C > 1 minute it can bill less (shown below).
"More traffic" here is elementwise: every minute has at least as many requests.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.breakeven import evaluate, from_counts, sweep
from core.breakeven.capacity import demand_blocks
from core.breakeven.scale_to_zero import bill, per_block, replay
from core.breakeven.traffic import poisson
from tests.core.breakeven.helpers import gpus, scenario

MINUTES = 240
counts_st = arrays(np.int64, MINUTES, elements=st.integers(0, 3) | st.just(0) | st.just(0) | st.integers(0, 40))
extra_st = arrays(np.int64, MINUTES, elements=st.integers(0, 1) | st.just(0) | st.integers(0, 30))
FAST = settings(max_examples=60, deadline=None)


def _costs(counts: np.ndarray, **kw: object) -> dict[str, object]:
    sc = scenario(gpus=gpus(T4=600.0, L4=900.0, A10G=1000.0, A100=3000.0), max_replicas=40, p95_slo_s=10_000, **kw)
    ev = evaluate(from_counts(counts), sc)
    return {o.option: o.monthly_cost_usd for o in ev.options}


@FAST
@given(counts=counts_st, extra=extra_st, cold=st.sampled_from([0.0, 60.0, 300.0]))
def test_serverless_and_always_on_cost_never_decrease_with_more_traffic(
    counts: np.ndarray, extra: np.ndarray, cold: float
) -> None:
    if counts.sum() == 0:
        counts = counts.copy()
        counts[0] = 1
    low, high = _costs(counts, cold_start_s=cold), _costs(counts + extra, cold_start_s=cold)
    for name in low:
        if "scale-to-zero" not in name:
            assert high[name] >= low[name], name


@FAST
@given(counts=counts_st, extra=extra_st, idle=st.integers(1, 90))
def test_scale_to_zero_cost_never_decreases_with_more_traffic_when_cold_starts_are_free(
    counts: np.ndarray, extra: np.ndarray, idle: int
) -> None:
    if counts.sum() == 0:
        counts = counts.copy()
        counts[0] = 1
    low = _costs(counts, cold_start_s=0.0, idle_timeout_minutes=idle)
    high = _costs(counts + extra, cold_start_s=0.0, idle_timeout_minutes=idle)
    for name in low:
        assert high[name] >= low[name], name


def test_with_a_billed_cold_start_one_more_request_can_cost_less() -> None:
    """Requests at minutes 0 and 11 with T = 10 bill 10 + 10 running minutes and two 5-minute start-ups (30);
    one more request at minute 5 keeps the replica warm: 21 running minutes and one start-up (26)."""
    counts = np.zeros(60, dtype=np.int64)
    counts[[0, 11]] = 1
    more = counts.copy()
    more[5] = 1
    blocks = demand_blocks(counts, 15)
    replicas = np.ones(blocks.starts.size, dtype=np.int64)
    before = bill(per_block(replay(counts, 10), blocks), replicas, 5).replica_minutes
    after = bill(per_block(replay(more, 10), demand_blocks(more, 15)), replicas, 5).replica_minutes
    assert (before, after) == (30, 26)


def _billed_hours(counts: np.ndarray, idle: int, cold: float) -> dict[str, float]:
    sc = scenario(gpus=gpus(T4=600.0), max_replicas=40, p95_slo_s=10_000, idle_timeout_minutes=idle, cold_start_s=cold)
    ev = evaluate(from_counts(counts), sc)
    return {o.option: o.billed_hours for o in ev.options if o.scale_to_zero}


@FAST
@given(counts=counts_st, idle=st.integers(1, 60), longer=st.integers(1, 60), cold=st.sampled_from([0.0, 30.0, 60.0]))
def test_a_longer_idle_timeout_never_bills_fewer_hours_when_a_cold_start_bills_at_most_a_minute(
    counts: np.ndarray, idle: int, longer: int, cold: float
) -> None:
    if counts.sum() == 0:
        counts = counts.copy()
        counts[-1] = 2
    short, long_ = _billed_hours(counts, idle, cold), _billed_hours(counts, idle + longer, cold)
    for name in short:
        assert long_[name] >= short[name] - 1e-9, name


@FAST
@given(counts=counts_st, idle=st.integers(1, 60), longer=st.integers(1, 60))
def test_a_longer_idle_timeout_never_runs_fewer_hours(counts: np.ndarray, idle: int, longer: int) -> None:
    blocks = demand_blocks(counts, 15)
    replicas = np.ones(blocks.starts.size, dtype=np.int64)
    short = bill(per_block(replay(counts, idle), blocks), replicas, 5).running_replica_minutes
    long_ = bill(per_block(replay(counts, idle + longer), blocks), replicas, 5).running_replica_minutes
    assert long_ >= short


def test_a_longer_idle_timeout_can_bill_less_when_it_saves_cold_starts() -> None:
    """A request every 61 minutes: T = 60 restarts the replica each time (60 + 5 billed per request), T = 61 keeps
    it running (61 per request)."""
    counts = np.zeros(61 * 20, dtype=np.int64)
    counts[::61] = 1
    assert _billed_hours(counts, 61, 300.0)["T4 scale-to-zero"] < _billed_hours(counts, 60, 300.0)["T4 scale-to-zero"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), rph=st.floats(0.5, 2000))
def test_sweep_curves_never_decrease_with_traffic_when_cold_starts_are_free(seed: int, rph: float) -> None:
    traffic = poisson(rph, 48, seed=seed)
    curves = sweep(traffic, scenario(cold_start_s=0.0, max_replicas=64), low=0.5, high=20_000, points=60)
    for name, cost in curves.costs.items():
        finite = cost[np.isfinite(cost)]
        assert (np.diff(finite) >= -1e-9 * np.maximum(finite[1:], 1)).all(), name
