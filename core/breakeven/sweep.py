"""Sensitivity: monthly cost of every option against the mean requests/hour, and where the curves cross.

The sweep keeps the traffic's shape (its days, weeks and bursts) and scales it. Random profiles are evaluated in
expectation (`scale_to_zero.expected`: the exact mean of the replay for Poisson arrivals), so the curves are smooth and
their crossings do not move with the seed; flat traffic is deterministic and is replayed as is. The figures are floats
for charting; the options table's money comes from the replay in exact decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.breakeven.capacity import DemandBlocks, demand_blocks, memory_exclusion
from core.breakeven.costs import gpu_figures
from core.breakeven.defaults import MONTH_HOURS
from core.breakeven.errors import InvalidRateError, positive
from core.breakeven.model import SERVERLESS, option_name
from core.breakeven.scale_to_zero import Activity, BlockActivity, billed_cold_start_minutes, per_block, replay
from core.breakeven.scenario import Scenario
from core.breakeven.traffic import Traffic

DEFAULT_POINTS = 200


@dataclass(frozen=True)
class Crossover:
    requests_per_hour: float
    option: str  # the option that becomes cheaper above this rate
    other: str  # the option it overtakes
    monthly_cost_usd: float


@dataclass(frozen=True, eq=False)
class Sweep:
    rates: np.ndarray  # mean requests/hour, log-spaced
    costs: dict[str, np.ndarray]  # option -> monthly USD per rate; NaN where the option cannot serve that traffic
    crossovers: list[Crossover] = field(default_factory=list)

    def cheapest(self) -> list[str | None]:
        """The cheapest option at each rate (ignoring the latency target)."""
        names = list(self.costs)
        stack = np.vstack([self.costs[n] for n in names])
        out: list[str | None] = []
        for j in range(self.rates.size):
            col = stack[:, j]
            out.append(None if np.isnan(col).all() else names[int(np.nanargmin(col))])
        return out


class _ExpectedShape:
    """`scale_to_zero.expected`, summed per demand block, for one shape at many rates at once (one row per rate).

    The rate-independent work is done once. The window before minute t + 1 ([t - T + 1, t]) is the idle-timeout
    window of minute t, so one exponential per minute gives both P(down) = quiet[t + 1] and P(quiet before) =
    quiet[t]; e^(-intensity) is looked up per distinct shape value when there are few (flat, bursty or recorded
    traffic). The arithmetic is float32 (about 7 significant digits, ample for a chart; numpy's float32 exponential is
    vectorised here and three times faster than float64's), and per-block sums come from the quiet probabilities
    directly (up = block length - sum of P(down)), so no per-minute "up" array is ever built.
    """

    def __init__(self, shape: np.ndarray, idle_minutes: int, blocks: DemandBlocks) -> None:
        n = shape.size
        cum = np.concatenate(([0.0], np.cumsum(shape)))
        idx = np.arange(n + 1)
        self.n = n
        self.blocks = blocks
        # expected arrivals at 1 request/hour in [t - T, t - 1], for t = 0..n (n + 1 windows)
        self.before = (cum[np.minimum(idx, n)] - cum[np.maximum(idx - idle_minutes, 0)]).astype(np.float32)
        values, inverse = np.unique(shape, return_inverse=True)
        self.values = values.astype(np.float32) if values.size * 4 < n else None
        self.inverse = inverse
        self.shape32 = shape.astype(np.float32)

    def per_block(self, rates: np.ndarray) -> BlockActivity:
        n, starts = self.n, self.blocks.starts
        r = rates.astype(np.float32)[:, None]
        quiet = self.before[None, :] * r
        np.exp(-quiet, out=quiet)  # quiet[:, t]: no arrival in [t - T, t - 1] (large exponents just underflow)
        down = quiet[:, 1:]  # P(no replica in minute t)
        if self.values is not None:
            cold = (1.0 - np.exp(-self.values[None, :] * r))[:, self.inverse]
        else:
            cold = 1.0 - np.exp(-self.shape32[None, :] * r)
        np.multiply(cold, quiet[:, :n], out=cold)  # P(a request at t finds nothing in [t - T, t - 1])
        up = self.blocks.lengths[None, :] - np.add.reduceat(down, starts, axis=1).astype(np.float64)
        first = starts[1:]
        return BlockActivity(
            up=up,
            cold=np.add.reduceat(cold, starts, axis=1).astype(np.float64),
            stays_up=(1.0 - down[:, first] - cold[:, first]).astype(np.float64),
        )


def _even_activity(counts: np.ndarray, rate: float, idle_minutes: int) -> Activity:
    """`replay` of evenly spaced requests: when no gap between them exceeds the idle timeout, the endpoint starts at
    the first request and never stops, so the replay's answer is known without replaying."""
    active = np.flatnonzero(counts[: math.ceil(120.0 / rate) + 2]) if rate > 0 else np.zeros(0, dtype=np.int64)
    if active.size == 0 or math.ceil(60.0 / rate - 1e-9) > idle_minutes:
        return replay(counts, idle_minutes)
    first = int(active[0])
    up = np.zeros(counts.size, dtype=bool)
    up[first:] = True
    cold = np.zeros(counts.size, dtype=bool)
    cold[first] = True
    return Activity(up=up, cold=cold, requests=float(counts.sum()), cold_requests=float(counts[first]))


def _stacked_activity(
    traffic: Traffic, rates: np.ndarray, scenario: Scenario
) -> tuple[np.ndarray, DemandBlocks, BlockActivity]:
    """Requests, demand blocks and per-block activity at every rate, stacked one row per rate.

    Random profiles are computed in expectation a chunk of rates at a time (about two million minutes per chunk
    keeps memory small); flat traffic is replayed rate by rate.
    """
    window = scenario.capacity_window_minutes
    idle = scenario.idle_timeout_minutes
    k = rates.size
    if traffic.deterministic:
        rows = []
        for rate in rates:
            counts = traffic.counts_at(float(rate))
            at_rate = demand_blocks(counts, window)
            one = per_block(_even_activity(counts, float(rate), idle), at_rate)
            rows.append((float(counts.sum()), at_rate.rates_per_hour, one))
        unit = demand_blocks(traffic.counts_at(float(rates[0])), window)
        blocks = DemandBlocks(unit.starts, unit.lengths, np.vstack([r[1] for r in rows]))
        activity = BlockActivity(
            up=np.vstack([r[2].up for r in rows]),
            cold=np.vstack([r[2].cold for r in rows]),
            stays_up=np.vstack([r[2].stays_up for r in rows]),
        )
        return np.array([r[0] for r in rows]), blocks, activity
    unit = demand_blocks(traffic.shape, window)
    shape = _ExpectedShape(traffic.shape, idle, unit)
    blocks = DemandBlocks(unit.starts, unit.lengths, unit.rates_per_hour[None, :] * rates[:, None])
    chunk = max(1, 2_000_000 // max(traffic.minutes, 1))
    parts = [shape.per_block(rates[i : i + chunk]) for i in range(0, k, chunk)]
    activity = BlockActivity(
        up=np.vstack([p.up for p in parts]),
        cold=np.vstack([p.cold for p in parts]),
        stays_up=np.vstack([p.stays_up for p in parts]),
    )
    return float(traffic.shape.sum()) * rates, blocks, activity


def default_range(traffic: Traffic, break_even: dict[str, float | None]) -> tuple[float, float]:
    """A tenth of the lowest to ten times the highest of: the current traffic and each GPU's break-even."""
    marks = [traffic.requests_per_hour, *(r for r in break_even.values() if r)]
    return max(min(marks) / 10.0, 1e-3), max(marks) * 10.0


def sweep(
    traffic: Traffic,
    scenario: Scenario,
    *,
    low: float,
    high: float,
    points: int = DEFAULT_POINTS,
) -> Sweep:
    """Monthly cost of every available option at `points` log-spaced mean rates between `low` and `high`."""
    low = positive("The sweep's lowest rate", low)
    high = positive("The sweep's highest rate", high)
    if high <= low or points < 2:
        raise InvalidRateError("The sweep needs a highest rate above its lowest and at least two points.")
    rates = np.geomspace(low, high, points)
    minutes = traffic.minutes
    to_month = MONTH_HOURS * 60.0 / minutes
    cold_minutes = billed_cold_start_minutes(scenario.cold_start_s)
    gpus = [
        g
        for g in scenario.gpus
        if g.throughput_per_hour is not None and memory_exclusion(scenario.model_memory_gb, g.id, g.memory_gb) is None
    ]
    costs: dict[str, np.ndarray] = {}
    if scenario.serverless is not None:
        costs[SERVERLESS] = np.full(points, np.nan)
    for g in gpus:
        costs[option_name(g.id, False)] = np.full(points, np.nan)
        costs[option_name(g.id, True)] = np.full(points, np.nan)

    price = float(scenario.serverless.per_request_usd) if scenario.serverless else 0.0
    requests, blocks, activity = _stacked_activity(traffic, rates, scenario)
    if scenario.serverless is not None:
        costs[SERVERLESS] = requests * price * to_month
    for g in gpus:
        fig = gpu_figures(g, scenario, blocks, activity, cold_minutes)
        hourly = float(g.hourly_usd)
        on = hourly * fig.always_on_replicas * minutes / 60.0 * to_month
        costs[option_name(g.id, False)] = np.where(fig.stable, on, np.nan)
        s2z = hourly * fig.billing.replica_minutes / 60.0 * to_month
        costs[option_name(g.id, True)] = np.where(fig.stable, s2z, np.nan)
    return Sweep(rates=rates, costs=costs, crossovers=crossovers(rates, costs))


def crossovers(rates: np.ndarray, costs: dict[str, np.ndarray]) -> list[Crossover]:
    """Where each dedicated option's curve crosses serverless, and where the cheapest option changes.

    A crossing between two grid points is placed by linear interpolation of the cost difference on a log-rate axis.
    """
    found: dict[tuple[str, str, int], Crossover] = {}
    names = list(costs)
    pairs = [(n, SERVERLESS) for n in names if n != SERVERLESS and SERVERLESS in costs]
    stack = np.vstack([costs[n] for n in names]) if names else np.zeros((0, rates.size))
    with np.errstate(invalid="ignore"):
        filled = np.where(np.isnan(stack), np.inf, stack)
    best = np.argmin(filled, axis=0) if names else np.zeros(0, dtype=int)
    for j in range(1, rates.size):
        a, b = names[best[j - 1]] if names else "", names[best[j]] if names else ""
        if a != b and np.isfinite(filled[best[j - 1], j - 1]) and np.isfinite(filled[best[j], j]):
            pairs.append((b, a))
    for option, other in dict.fromkeys(pairs):
        diff = costs[option] - costs[other]
        for j in range(1, rates.size):
            d0, d1 = diff[j - 1], diff[j]
            if not (math.isfinite(d0) and math.isfinite(d1)) or d0 == d1:
                continue
            if (d0 > 0 >= d1) or (d0 < 0 <= d1):
                t = d0 / (d0 - d1)
                x0, x1 = math.log(rates[j - 1]), math.log(rates[j])
                rate = math.exp(x0 + t * (x1 - x0))
                cost = float(costs[other][j - 1] + t * (costs[other][j] - costs[other][j - 1]))
                # `option` becomes the cheaper one going up when d1 <= 0; otherwise `other` does.
                winner, loser = (option, other) if d1 <= 0 else (other, option)
                found[(min(winner, loser), max(winner, loser), j)] = Crossover(rate, winner, loser, cost)
    return sorted(found.values(), key=lambda c: (c.requests_per_hour, c.option))
