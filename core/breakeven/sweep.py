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
from core.breakeven.scale_to_zero import Activity, billed_cold_start_minutes, per_block, replay
from core.breakeven.scenario import Scenario
from core.breakeven.traffic import Traffic

DEFAULT_POINTS = 200
_CLIP = np.float32(50.0)


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
    """`scale_to_zero.expected` for one shape at many rates, with the rate-independent work done once.

    The window before minute t + 1 ([t - T + 1, t]) is the idle-timeout window of minute t, so one exponential per
    minute gives both P(up) and P(quiet before); e^(-intensity) is looked up per distinct shape value (a handful for
    flat, bursty or recorded traffic). The exponentials run in float32 (about 7 significant digits, ample for a
    chart, and three times faster here than float64), with exponents clipped at 50: e^-50 is zero for every purpose.
    """

    def __init__(self, shape: np.ndarray, idle_minutes: int) -> None:
        n = shape.size
        cum = np.concatenate(([0.0], np.cumsum(shape)))
        idx = np.arange(n + 1)
        self.shape = shape
        self.total = float(shape.sum())
        # expected arrivals at 1 request/hour in [t - T, t - 1], for t = 0..n (n + 1 windows)
        self.before = (cum[np.minimum(idx, n)] - cum[np.maximum(idx - idle_minutes, 0)]).astype(np.float32)
        values, inverse = np.unique(shape, return_inverse=True)
        self.values = values.astype(np.float32) if values.size * 4 < n else None
        self.inverse = inverse
        self.shape32 = shape.astype(np.float32)

    def at(self, rate: float) -> Activity:
        n = self.shape.size
        r = np.float32(rate)
        x = self.before * r
        np.minimum(x, _CLIP, out=x)
        quiet = np.exp(-x, out=x)  # quiet[t]: no arrival in [t - T, t - 1]
        if self.values is not None:
            lam = np.minimum(self.values * r, _CLIP)
            busy = (1.0 - np.exp(-lam))[self.inverse]
        else:
            lam = np.minimum(self.shape32 * r, _CLIP)
            busy = 1.0 - np.exp(-lam)
        head = quiet[:n]
        return Activity(
            up=1.0 - quiet[1:],
            cold=busy * head,
            requests=self.total * rate,
            cold_requests=float((self.shape32 * head).sum(dtype=np.float64)) * rate,
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
    window = scenario.capacity_window_minutes
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
    expected = None if traffic.deterministic else _ExpectedShape(traffic.shape, scenario.idle_timeout_minutes)
    unit_blocks = None if traffic.deterministic else demand_blocks(traffic.shape, window)
    for j, rate in enumerate(rates):
        if expected is not None and unit_blocks is not None:
            activity = expected.at(rate)
            blocks = DemandBlocks(unit_blocks.starts, unit_blocks.lengths, unit_blocks.rates_per_hour * rate)
        else:
            counts = traffic.counts_at(rate)
            activity = _even_activity(counts, rate, scenario.idle_timeout_minutes)
            blocks = demand_blocks(counts, window)
        if scenario.serverless is not None:
            costs[SERVERLESS][j] = activity.requests * price * to_month
        block_activity = per_block(activity, blocks)
        for g in gpus:
            fig = gpu_figures(g, scenario, blocks, block_activity, cold_minutes)
            if not fig.stable:
                continue
            hourly = float(g.hourly_usd)
            costs[option_name(g.id, False)][j] = hourly * fig.always_on_replicas * minutes / 60.0 * to_month
            costs[option_name(g.id, True)][j] = hourly * fig.billing.replica_minutes / 60.0 * to_month
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
