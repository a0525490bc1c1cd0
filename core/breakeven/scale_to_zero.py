"""Scale-to-zero, replayed minute by minute.

The rules (Hugging Face bills per minute while a replica is initializing or running, nothing while scaled to zero):
- a replica runs in minute t when a request arrived in the idle timeout's window [t - T + 1, t];
- a request that arrives when nothing ran in the previous T minutes meets a cold start: the endpoint initializes for
  the cold-start time (billed, rounded up to whole minutes) before it serves;
- while up, the endpoint runs the replicas its current demand block needs; every replica it starts (from zero or when
  scaling up) is billed for the cold-start time too.

For Poisson arrivals at L per minute this gives the closed forms: the endpoint is up a fraction 1 - e^(-LT) of the
time, a request meets a cold start with probability e^(-LT), and cold starts add L e^(-LT) C of billed time per minute.

Simplifications (stated so nobody reads more into the figures): the idle timer counts from the minute of the last
request, not from the end of the start-up; requests that arrive later in the same start-up are counted warm.

`replay` bills one realised trace; `expected` gives the same quantities' expectation for Poisson arrivals at a given
intensity per minute (exact for this model), which the sensitivity sweep uses for smooth curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.breakeven.capacity import DemandBlocks

_NEVER = -(1 << 40)  # "no request yet": far enough back that every window test fails
_CLIP = 50.0


@dataclass(frozen=True, eq=False)
class Activity:
    up: np.ndarray  # per minute: a replica runs (bool for a replayed trace; a probability in expectation)
    cold: np.ndarray  # per minute: a cold start begins (bool, or its probability)
    requests: float
    cold_requests: float  # requests that met a cold start

    @property
    def up_minutes(self) -> float:
        return float(self.up.sum())

    @property
    def cold_starts(self) -> float:
        return float(self.cold.sum())

    @property
    def cold_start_fraction(self) -> float:
        return self.cold_requests / self.requests if self.requests > 0 else 0.0


def replay(counts: np.ndarray, idle_minutes: int) -> Activity:
    """Which minutes run and which requests meet a cold start, for one trace of arrivals per minute (vectorised)."""
    n = counts.size
    idx = np.arange(n, dtype=np.int64)
    active = counts > 0
    last = np.where(active, idx, _NEVER)
    np.maximum.accumulate(last, out=last)  # the minute of the latest request at or before t
    up = (idx - last) < idle_minutes
    # A cold start is a minute that runs after one that did not: its request found nothing in [t - T, t - 1].
    cold = up.copy()
    cold[1:] &= ~up[:-1]
    return Activity(up=up, cold=cold, requests=float(counts.sum()), cold_requests=float(counts[cold].sum()))


def expected(intensity: np.ndarray, idle_minutes: int) -> Activity:
    """The expectation of `replay` when minute t holds Poisson(intensity[t]) arrivals, independently."""
    n = intensity.size
    cum = np.concatenate(([0.0], np.cumsum(intensity, dtype=np.float64)))
    idx = np.arange(n)
    window = cum[idx + 1] - cum[np.maximum(idx + 1 - idle_minutes, 0)]  # expected arrivals in [t - T + 1, t]
    before = cum[idx] - cum[np.maximum(idx - idle_minutes, 0)]  # expected arrivals in [t - T, t - 1]
    quiet_before = np.exp(-np.minimum(before, _CLIP))  # clipped: e^-50 is zero here, and subnormals are slow
    return Activity(
        up=-np.expm1(-np.minimum(window, _CLIP)),
        cold=-np.expm1(-np.minimum(intensity, _CLIP)) * quiet_before,
        requests=float(cum[-1]),
        cold_requests=float((intensity * quiet_before).sum()),
    )


@dataclass(frozen=True, eq=False)
class BlockActivity:
    """An activity summed per demand block: what billing needs, computed once and shared by every GPU."""

    up: np.ndarray  # running minutes in each block
    cold: np.ndarray  # cold starts in each block
    stays_up: np.ndarray  # for each block after the first: the endpoint runs on both sides of its first minute


def per_block(activity: Activity, blocks: DemandBlocks) -> BlockActivity:
    """Sum an activity per demand block (along the last axis: a stack of activities, one per rate, works too)."""
    first = blocks.starts[1:]
    return BlockActivity(
        up=np.add.reduceat(activity.up, blocks.starts, axis=-1, dtype=np.float64),
        cold=np.add.reduceat(activity.cold, blocks.starts, axis=-1, dtype=np.float64),
        # up before and after the boundary = up now and not a cold start now (a cold start is exactly "up after zero")
        stays_up=activity.up[..., first].astype(np.float64) - activity.cold[..., first].astype(np.float64),
    )


@dataclass(frozen=True)
class Billing:
    """Replica-minutes over the horizon (arrays, one per rate, when billing a stack of activities)."""

    running_replica_minutes: float
    starting_replica_minutes: float  # replicas initializing (billed for the cold-start time each)
    replicas_started: float

    @property
    def replica_minutes(self) -> float:
        return self.running_replica_minutes + self.starting_replica_minutes


def bill(activity: BlockActivity, block_replicas: np.ndarray, cold_start_minutes: int) -> Billing:
    """Billed replica-minutes when the endpoint runs `block_replicas[b]` replicas while up in block b."""
    # not np.dot: BLAS threads cost more than these small products on a busy machine
    running = (activity.up * block_replicas).sum(axis=-1)
    scale_ups = np.maximum(np.diff(block_replicas, axis=-1), 0)
    started = (activity.cold * block_replicas).sum(axis=-1) + (activity.stays_up * scale_ups).sum(axis=-1)
    return Billing(running, started * cold_start_minutes, started)


def replica_timeline(activity: Activity, blocks: DemandBlocks, block_replicas: np.ndarray) -> np.ndarray:
    """Replicas running in each minute of a replayed trace (0 while scaled to zero)."""
    per_minute = np.repeat(block_replicas, blocks.lengths)
    return (activity.up * per_minute).astype(np.int32)


def billed_cold_start_minutes(cold_start_seconds: float) -> int:
    """Billing is per minute: a start-up of 90 s bills 2 minutes."""
    return math.ceil(cold_start_seconds / 60.0 - 1e-9) if cold_start_seconds > 0 else 0


def closed_form_billed_fraction(rate_per_minute: float, idle_minutes: float, cold_start_minutes: float) -> float:
    """Billed fraction of time for Poisson traffic: 1 - e^(-LT) + L e^(-LT) C."""
    quiet = math.exp(-rate_per_minute * idle_minutes)
    return 1.0 - quiet + rate_per_minute * quiet * cold_start_minutes


def closed_form_cold_probability(rate_per_minute: float, idle_minutes: float) -> float:
    """Probability that a request meets a cold start for Poisson traffic: e^(-LT)."""
    return math.exp(-rate_per_minute * idle_minutes)
