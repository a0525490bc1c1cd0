"""Traffic as requests per minute: flat, diurnal and weekly, Poisson, bursty (a Markov-modulated Poisson process) or a
model's observed history. Every generator is deterministic for its seed.

A `Traffic` carries two views of the same load:
- `counts`, the arrivals in each minute of one realised trace: what the minute-by-minute replay bills;
- `shape`, the expected arrivals per minute at an average of one request per hour (its mean is 1/60): scaled by a rate
  it gives the intensity the sensitivity sweep evaluates in expectation, so its curves are smooth. For recorded
  traffic the shape is its average week (`weekly_shape`).
Flat traffic is deterministic (evenly spaced requests), so its counts follow from the rate and it has no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.breakeven.errors import EmptyHistoryError, InvalidRateError, figure, positive

PROFILES = ("flat", "diurnal", "poisson", "bursty", "history")
MAX_MINUTES = 366 * 24 * 60  # a year of minutes keeps every array small
WEEK_HOURS = 7 * 24

# Bursty traffic: calm periods of about 4 hours, bursts of about 20 minutes at 8x the calm rate.
BURST_FACTOR = 8.0
MEAN_CALM_MINUTES = 240.0
MEAN_BURST_MINUTES = 20.0


@dataclass(frozen=True, eq=False)
class Traffic:
    profile: str
    counts: np.ndarray  # int64 arrivals per minute of the realised trace
    shape: np.ndarray  # float64 expected arrivals per minute at a mean of 1 request/hour (mean 1/60)
    deterministic: bool  # True for flat traffic: counts are a function of the rate, not a random draw
    requests_per_hour: float  # the mean rate the trace was built for
    start: datetime | None = None  # real history: its first minute (naive UTC; a local midnight)

    @property
    def minutes(self) -> int:
        return int(self.counts.size)

    @property
    def hours(self) -> float:
        return self.minutes / 60.0

    @property
    def requests(self) -> int:
        return int(self.counts.sum())

    def intensity(self, requests_per_hour: float) -> np.ndarray:
        """Expected arrivals per minute when the same shape carries `requests_per_hour` on average."""
        return self.shape * requests_per_hour

    def counts_at(self, requests_per_hour: float) -> np.ndarray:
        """The deterministic trace at another rate (flat traffic only)."""
        if not self.deterministic:
            raise ValueError("only deterministic (flat) traffic has counts at an arbitrary rate")
        return even_counts(requests_per_hour, self.minutes)


def horizon_minutes(hours: float) -> int:
    hours = positive("The horizon (hours)", hours, "Simulate at least one hour.")
    minutes = round(hours * 60)
    if minutes < 60:
        raise InvalidRateError(f"The horizon must be at least one hour, got {figure(hours)} hours.")
    if minutes > MAX_MINUTES:
        raise InvalidRateError(
            f"The horizon is limited to one year ({MAX_MINUTES // 60:,} hours), got {figure(hours)} hours."
        )
    return minutes


MAX_RATE = 1e9  # requests per hour: past this the minute counts lose their precision (1e18 gave nonsense figures)


def _rate(requests_per_hour: float) -> float:
    rate = positive(
        "Requests per hour", requests_per_hour, "Enter the average traffic you expect, for example 60 requests/hour."
    )
    if rate >= MAX_RATE:
        raise InvalidRateError(
            f"Requests per hour must be below {MAX_RATE:,.0f} (got {figure(rate)}): more than one deployment serves."
        )
    return rate


def even_counts(requests_per_hour: float, minutes: int) -> np.ndarray:
    """Evenly spaced arrivals: minute t holds floor(R(t+1)/60) - floor(Rt/60), so the horizon totals floor(R*H)."""
    cum = np.floor(np.arange(minutes + 1, dtype=np.float64) * (requests_per_hour / 60.0) + 1e-9)
    return np.diff(cum).astype(np.int64)


def flat(requests_per_hour: float, hours: float) -> Traffic:
    rph = _rate(requests_per_hour)
    n = horizon_minutes(hours)
    return Traffic("flat", even_counts(rph, n), np.full(n, 1.0 / 60.0), True, rph)


def poisson(requests_per_hour: float, hours: float, seed: int = 0) -> Traffic:
    rph = _rate(requests_per_hour)
    n = horizon_minutes(hours)
    shape = np.full(n, 1.0 / 60.0)
    counts = np.random.default_rng(seed).poisson(shape * rph).astype(np.int64)
    return Traffic("poisson", counts, shape, False, rph)


def diurnal_shape(minutes: int) -> np.ndarray:
    """A working-day curve (low at night, a peak mid-afternoon and a smaller one in the evening), weekends at 35%,
    starting on a Monday at 00:00; normalised to a mean of 1/60 per minute. The hours are those of the trace's own
    clock, which the pages and the CLI read in the reporting time zone (a synthetic month is on no calendar, so the
    zone names the hours without moving a single request: a seed gives the same trace in every zone)."""
    hour = (np.arange(minutes) / 60.0) % 24.0
    day = (np.arange(minutes) // 1440) % 7
    w = 0.15 + np.exp(-0.5 * ((hour - 14.5) / 3.2) ** 2) + 0.25 * np.exp(-0.5 * ((hour - 20.0) / 1.5) ** 2)
    w = np.where(day >= 5, 0.35 * w, w)
    return w / (w.mean() * 60.0)


def diurnal(requests_per_hour: float, hours: float, seed: int = 0) -> Traffic:
    rph = _rate(requests_per_hour)
    n = horizon_minutes(hours)
    shape = diurnal_shape(n)
    counts = np.random.default_rng(seed).poisson(shape * rph).astype(np.int64)
    return Traffic("diurnal", counts, shape, False, rph)


def burst_states(minutes: int, rng: np.random.Generator) -> np.ndarray:
    """A two-state Markov chain per minute (True = burst), from geometric sojourns in each state."""
    start_in_burst = rng.random() < MEAN_BURST_MINUTES / (MEAN_CALM_MINUTES + MEAN_BURST_MINUTES)
    states: list[np.ndarray] = []
    total = 0
    burst = bool(start_in_burst)
    pairs = int(minutes / (MEAN_CALM_MINUTES + MEAN_BURST_MINUTES)) + 8
    while total < minutes:
        calm = rng.geometric(1.0 / MEAN_CALM_MINUTES, pairs)
        hot = rng.geometric(1.0 / MEAN_BURST_MINUTES, pairs)
        first, second = (hot, calm) if burst else (calm, hot)
        lengths = np.column_stack([first, second]).ravel()
        flags = np.tile([burst, not burst], pairs)
        states.append(np.repeat(flags, lengths))
        total += int(lengths.sum())
        # each chunk ends in the other state, so the next chunk starts in the same state as this one did
    return np.concatenate(states)[:minutes]


def bursty(requests_per_hour: float, hours: float, seed: int = 0) -> Traffic:
    """A Markov-modulated Poisson process: calm and burst states with Poisson arrivals at each state's rate."""
    rph = _rate(requests_per_hour)
    n = horizon_minutes(hours)
    rng = np.random.default_rng(seed)
    w = np.where(burst_states(n, rng), BURST_FACTOR, 1.0)
    shape = w / (w.mean() * 60.0)
    counts = rng.poisson(shape * rph).astype(np.int64)
    return Traffic("bursty", counts, shape, False, rph)


def from_counts(
    counts: np.ndarray,
    *,
    bucket_minutes: int = 1,
    start: datetime | None = None,
    requests_per_hour: float | None = None,
    seed: int = 0,
    profile: str = "history",
) -> Traffic:
    """Traffic from recorded requests per bucket (1 = per minute, 60 = per hour).

    Per-minute history is replayed exactly as recorded. Hourly buckets are spread over their minutes as Poisson
    arrivals at the bucket's rate. Given `requests_per_hour`, the recorded shape (its average week, see
    `weekly_shape`) is scaled to that average and re-drawn as Poisson arrivals: "the same weeks at R requests/hour".
    """
    arr = np.asarray(counts)
    if arr.ndim != 1 or arr.size == 0:
        raise EmptyHistoryError("The traffic history is empty: choose a date range that has requests.")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidRateError("Recorded request counts must be finite, non-negative numbers.")
    if bucket_minutes not in (1, 60):
        raise InvalidRateError(f"History buckets are per minute (1) or per hour (60), got {bucket_minutes}.")
    per_minute = np.repeat(arr.astype(np.float64) / bucket_minutes, bucket_minutes)
    if per_minute.size > MAX_MINUTES:
        raise InvalidRateError(f"The history is limited to one year; the range covers {per_minute.size // 1440} days.")
    total = float(per_minute.sum())
    if total <= 0:
        raise EmptyHistoryError("The traffic history has no requests: choose a date range that has requests.")
    hours = per_minute.size / 60.0
    observed_rph = total / hours
    shape = weekly_shape(per_minute)
    rng = np.random.default_rng(seed)
    if requests_per_hour is not None:
        rph = _rate(requests_per_hour)
        drawn = rng.poisson(shape * rph).astype(np.int64)
        return Traffic(profile, drawn, shape, False, rph, start)
    if bucket_minutes == 1 and np.all(arr == np.round(arr)):
        return Traffic(profile, arr.astype(np.int64), shape, False, observed_rph, start)
    return Traffic(profile, rng.poisson(per_minute).astype(np.int64), shape, False, observed_rph, start)


def weekly_shape(per_minute: np.ndarray) -> np.ndarray:
    """The average week of a recorded trace: each hour of the week's mean traffic over the range, spread evenly over
    its minutes and repeated over the horizon, normalised to a mean of 1/60 per minute.

    A small model's record is mostly noise (a request in this minute, none in that hour); scaled up as is, it would
    pile hundreds of requests into the few minutes that happened to have one and leave the rest idle. Its average
    week keeps what is real: the days, the nights and the weekends.
    """
    n = per_minute.size
    hour = np.arange(n) // 60
    per_hour = np.bincount(hour, weights=per_minute)
    minutes = np.bincount(hour).astype(np.float64)  # the last hour may be partial
    slot = np.arange(per_hour.size) % WEEK_HOURS
    mean = np.bincount(slot, weights=per_hour, minlength=WEEK_HOURS) / np.maximum(
        np.bincount(slot, weights=minutes, minlength=WEEK_HOURS), 1.0
    )
    spread = mean[hour % WEEK_HOURS]
    return spread / (spread.mean() * 60.0)


def make_traffic(profile: str, requests_per_hour: float, hours: float, seed: int = 0) -> Traffic:
    """One of the synthetic profiles (history comes from `from_counts`)."""
    if profile == "flat":
        return flat(requests_per_hour, hours)
    if profile == "poisson":
        return poisson(requests_per_hour, hours, seed)
    if profile == "diurnal":
        return diurnal(requests_per_hour, hours, seed)
    if profile == "bursty":
        return bursty(requests_per_hour, hours, seed)
    if profile == "history":
        raise InvalidRateError("The history profile needs a model and a date range: pass --model and --since/--until.")
    raise InvalidRateError(f"Unknown traffic profile {profile!r}; choose one of: {', '.join(PROFILES)}.")
