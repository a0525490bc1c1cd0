"""Uptime arithmetic: minutes x replicas x hourly / 60, from a state history, as a pure function."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.endpoints import STATES, StateChange, hourly_buckets, replicas_per_minute, uptime_cost

T0 = datetime(2026, 12, 1, 10, 0)
T4 = Decimal("0.60")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ch(minutes: float, state: str, replicas: int = 1) -> StateChange:
    return StateChange(at=at(minutes), state=state, replicas=replicas)


def test_one_hour_running_one_replica_costs_the_hourly_rate() -> None:
    cost = uptime_cost([ch(0, "running")], at(0), at(60), T4)
    assert (cost.replica_minutes, cost.billed_minutes, cost.base_cost_usd) == (60, 60, Decimal("0.6"))


def test_per_minute_and_started_minutes_count_whole() -> None:
    # running from 10:00:00 to 10:30:20 -> 31 started minutes
    changes = [ch(0, "running"), StateChange(at=at(30) + timedelta(seconds=20), state="paused", replicas=0)]
    cost = uptime_cost(changes, at(0), at(60), T4)
    assert cost.replica_minutes == 31
    assert cost.base_cost_usd == Decimal("0.31")


def test_several_replicas_multiply() -> None:
    changes = [ch(0, "running", 1), ch(20, "running", 3), ch(40, "running", 2)]
    cost = uptime_cost(changes, at(0), at(60), Decimal("1.00"))
    assert cost.replica_minutes == 20 * 1 + 20 * 3 + 20 * 2
    assert cost.max_replicas == 3
    assert cost.base_cost_usd == Decimal("2")


def test_minute_shared_by_two_replica_counts_bills_the_larger() -> None:
    changes = [ch(0, "running", 1), StateChange(at=at(10) + timedelta(seconds=30), state="running", replicas=4)]
    minutes = replicas_per_minute(changes, at(0), at(12))
    assert minutes == [1] * 10 + [4, 4]


def test_pause_resume_cycles_bill_only_billable_states() -> None:
    changes = [
        ch(0, "pending", 0),
        ch(2, "initializing", 1),  # billed from here
        ch(5, "running", 1),
        ch(20, "paused", 0),  # nothing while paused
        ch(50, "initializing", 1),
        ch(52, "running", 1),
        ch(100, "paused", 0),
    ]
    cost = uptime_cost(changes, at(0), at(180), T4)
    assert cost.replica_minutes == (20 - 2) + (100 - 50)
    assert cost.base_cost_usd == Decimal("0.68")


def test_scaled_to_zero_and_failed_cost_nothing() -> None:
    changes = [ch(0, "running"), ch(15, "scaledToZero", 0), ch(40, "initializing", 1), ch(42, "failed", 0)]
    assert uptime_cost(changes, at(0), at(120), T4).replica_minutes == 15 + 2


def test_initializing_with_zero_recorded_replicas_bills_one() -> None:
    assert uptime_cost([ch(0, "initializing", 0)], at(0), at(10), T4).replica_minutes == 10


def test_state_in_force_before_the_window_is_carried_in() -> None:
    changes = [ch(-600, "running", 2)]  # started ten hours earlier
    assert uptime_cost(changes, at(0), at(30), T4).replica_minutes == 60


def test_nothing_before_the_first_event() -> None:
    assert uptime_cost([ch(30, "running")], at(0), at(60), T4).replica_minutes == 30


def test_hourly_buckets_split_at_hour_boundaries() -> None:
    changes = [ch(45, "running", 2), ch(75, "paused", 0)]
    buckets = hourly_buckets(changes, at(0), at(180), T4)
    assert [b.start for b in buckets] == [at(0), at(60), at(120)]
    assert [b.replica_minutes for b in buckets] == [30, 30, 0]
    assert [b.base_cost_usd for b in buckets] == [Decimal("0.3"), Decimal("0.3"), Decimal("0")]


def test_buckets_need_whole_hours_and_minutes() -> None:
    with pytest.raises(ValueError, match="whole hours"):
        hourly_buckets([], at(1), at(60), T4)
    with pytest.raises(ValueError, match="whole minutes"):
        replicas_per_minute([], at(0.5), at(60))


def test_cost_is_rounded_up_to_the_nano_dollar() -> None:
    cost = uptime_cost([ch(0, "running")], at(0), at(1), Decimal("0.80"))
    assert cost.base_cost_usd == Decimal("0.013333334")


transitions = st.lists(
    st.tuples(st.integers(0, 600), st.sampled_from(STATES), st.integers(0, 4)), min_size=0, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(transitions, st.integers(1, 9))
def test_buckets_add_up_to_the_whole_and_never_exceed_max(raw: list[tuple[int, str, int]], hours: int) -> None:
    changes = [
        StateChange(at=at(m + s / 60), state=state, replicas=r)
        for (m, state, r), s in zip(raw, range(60), strict=False)
    ]
    buckets = hourly_buckets(changes, at(0), at(60 * hours), T4)
    whole = uptime_cost(changes, at(0), at(60 * hours), T4)
    assert sum(b.replica_minutes for b in buckets) == whole.replica_minutes
    assert all(0 <= b.replica_minutes <= 60 * 4 for b in buckets)
    assert all(b.billed_minutes <= 60 for b in buckets)
