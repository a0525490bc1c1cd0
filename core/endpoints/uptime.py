"""Uptime arithmetic: a pure function from an endpoint's state history to billed replica-minutes and cost.

Rules (reference/providers.md, "Billing"): uptime is billed per minute, per replica, while the endpoint is
`initializing` or `running` (and `updating`, see `types.BILLABLE_STATES`); nothing while `pending`, `paused`,
`scaledToZero`, `failed` or deleted. A started minute counts as a whole minute, at the most replicas seen during it,
so a state change at 10:30:20 bills the minute 10:30 in full. A billable state with 0 recorded replicas counts as one
replica (a replica is being started and paid for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.billing.pricing import price_uptime
from core.endpoints.types import BILLABLE_STATES

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class StateChange:
    """From `at` on, the endpoint was in `state` with `replicas` replicas (one `endpoint_events` row)."""

    at: datetime
    state: str
    replicas: int


@dataclass(frozen=True, kw_only=True)
class UptimeBucket:
    """What one time range of uptime costs at the hardware's hourly rate, before credits and markup."""

    start: datetime
    end: datetime
    billed_minutes: int  # minutes with at least one billed replica
    replica_minutes: int  # sum over minutes of the replicas billed in that minute
    max_replicas: int
    hourly_usd: Decimal
    base_cost_usd: Decimal  # price_uptime(hourly_usd, replica_minutes)


def billed_replicas(state: str, replicas: int) -> int:
    return max(replicas, 1) if state in BILLABLE_STATES else 0


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    floored = floor_minute(t)
    return floored if floored == t else floored + MINUTE


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def replicas_per_minute(changes: Sequence[StateChange], start: datetime, end: datetime) -> list[int]:
    """Replicas billed in each whole minute of [start, end); both ends must be on whole minutes.

    The state in force at `start` is the last change at or before it; before the first change nothing is billed.
    """
    if floor_minute(start) != start or floor_minute(end) != end:
        raise ValueError("start and end must be whole minutes")
    n = max(int((end - start) / MINUTE), 0)
    billed = [0] * n
    ordered = sorted(changes, key=lambda c: c.at)
    for i, change in enumerate(ordered):
        replicas = billed_replicas(change.state, change.replicas)
        if not replicas:
            continue
        seg_start = max(change.at, start)
        seg_end = min(ordered[i + 1].at if i + 1 < len(ordered) else end, end)
        if seg_end <= seg_start:
            continue
        first = int((floor_minute(seg_start) - start) / MINUTE)
        last = int((ceil_minute(seg_end) - start) / MINUTE)
        for m in range(first, last):
            if billed[m] < replicas:
                billed[m] = replicas
    return billed


def uptime_cost(changes: Sequence[StateChange], start: datetime, end: datetime, hourly_usd: Decimal) -> UptimeBucket:
    """The cost of [start, end) as one range. `end` may fall inside a minute: that started minute counts."""
    end_m = ceil_minute(end)
    start_m = floor_minute(start)
    minutes = replicas_per_minute(changes, start_m, end_m) if end_m > start_m else []
    replica_minutes = sum(minutes)
    return UptimeBucket(
        start=start,
        end=end,
        billed_minutes=sum(1 for r in minutes if r),
        replica_minutes=replica_minutes,
        max_replicas=max(minutes, default=0),
        hourly_usd=Decimal(hourly_usd),
        base_cost_usd=price_uptime(Decimal(hourly_usd), replica_minutes),
    )


def hourly_buckets(
    changes: Sequence[StateChange], start: datetime, end: datetime, hourly_usd: Decimal
) -> list[UptimeBucket]:
    """Whole-hour buckets covering [start, end) (both on whole hours), one per hour, zero-cost hours included."""
    if floor_hour(start) != start or floor_hour(end) != end:
        raise ValueError("start and end must be whole hours")
    minutes = replicas_per_minute(changes, start, end)
    buckets = []
    for h in range(len(minutes) // 60):
        chunk = minutes[h * 60 : (h + 1) * 60]
        replica_minutes = sum(chunk)
        buckets.append(
            UptimeBucket(
                start=start + h * HOUR,
                end=start + (h + 1) * HOUR,
                billed_minutes=sum(1 for r in chunk if r),
                replica_minutes=replica_minutes,
                max_replicas=max(chunk, default=0),
                hourly_usd=Decimal(hourly_usd),
                base_cost_usd=price_uptime(Decimal(hourly_usd), replica_minutes),
            )
        )
    return buckets
