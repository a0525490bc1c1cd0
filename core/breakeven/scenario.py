"""The simulator's inputs: the GPUs on offer and a scenario (prices, capacity, scale-to-zero, latency target).

Every field is validated on construction, so a scenario that exists is one the model can evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.breakeven.defaults import (
    CAPACITY_WINDOW_MINUTES,
    DEFAULT_COLD_START_SECONDS,
    DEFAULT_MAX_REPLICAS,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_TARGET_UTILIZATION,
    HF_DEFAULT_IDLE_MINUTES,
)
from core.breakeven.errors import (
    InvalidRateError,
    SloBelowServiceTimeError,
    figure,
    finite,
    non_negative,
    positive,
    whole,
)
from core.breakeven.serverless import ServerlessPrice
from core.endpoints.lifecycle import MAX_IDLE_MINUTES

# Beyond a thousand replicas of one endpoint nothing real runs, and past it the simulation's arrays overflow: refused
# with a sentence instead (the Endpoints page creates at most MAX_REPLICAS of core.endpoints; the simulator compares
# larger fleets too). The idle timeout is bounded as the Endpoints page and the command line bound it.
MAX_REPLICAS = 1_000
# A cold start or a request's compute past a day is no serving setup, and past ~1e18 s the monthly cost's cents
# overflow Decimal's context: refused with a sentence.
MAX_SECONDS = 86_400.0


@dataclass(frozen=True, kw_only=True)
class Gpu:
    id: str
    hourly_usd: Decimal
    memory_gb: float
    throughput_per_hour: float | None  # requests/hour one replica serves at the latency target; None = unknown

    def __post_init__(self) -> None:
        hourly = self.hourly_usd if isinstance(self.hourly_usd, Decimal) else Decimal(str(self.hourly_usd))
        if not hourly.is_finite() or hourly <= 0:
            raise InvalidRateError(f"The hourly price of {self.id} must be greater than zero, got {self.hourly_usd}.")
        object.__setattr__(self, "hourly_usd", hourly)
        positive(f"GPU memory of {self.id} (GB)", self.memory_gb)
        if self.throughput_per_hour is not None:
            positive(
                f"Throughput of one {self.id} replica (requests/hour)",
                self.throughput_per_hour,
                "Enter how many requests one replica serves per hour at the latency target.",
            )


@dataclass(frozen=True, kw_only=True)
class Scenario:
    serverless: ServerlessPrice | None  # None: serverless cannot be priced and is shown as excluded
    gpus: tuple[Gpu, ...]
    service_time_s: float
    p95_slo_s: float
    idle_timeout_minutes: int = HF_DEFAULT_IDLE_MINUTES
    cold_start_s: float = DEFAULT_COLD_START_SECONDS
    target_utilization: float = DEFAULT_TARGET_UTILIZATION
    min_replicas: int = DEFAULT_MIN_REPLICAS
    max_replicas: int = DEFAULT_MAX_REPLICAS
    model_memory_gb: float | None = None
    capacity_window_minutes: int = CAPACITY_WINDOW_MINUTES
    # Serverless is shared infrastructure: a share of its requests meets a cold start (the model is loaded first).
    serverless_cold_start_s: float = 0.0
    serverless_cold_start_share: float = 0.0

    def __post_init__(self) -> None:
        service = positive("The service time (seconds)", self.service_time_s, "Enter how long one request takes.")
        slo = positive("The p95 latency target (seconds)", self.p95_slo_s)
        if slo < service:
            raise SloBelowServiceTimeError(
                f"The p95 latency target of {slo:g} s is below the service time of {service:g} s: no option can "
                "answer faster than one request takes. Raise the target or lower the service time."
            )
        whole("The scale-to-zero idle timeout (minutes)", self.idle_timeout_minutes, 1, maximum=MAX_IDLE_MINUTES)
        non_negative("The cold-start time (seconds)", self.cold_start_s, maximum=MAX_SECONDS)
        u = positive("The target utilization", self.target_utilization)
        if u > 1:
            raise InvalidRateError(
                f"The target utilization is a fraction of a replica's throughput (0-1], got {figure(u)}."
            )
        lo = whole(
            "The minimum replicas",
            self.min_replicas,
            1,
            "An always-on endpoint runs at least one replica.",
            maximum=MAX_REPLICAS,
        )
        hi = whole("The maximum replicas", self.max_replicas, 1, "No endpoint runs more.", maximum=MAX_REPLICAS)
        if hi < lo:
            raise InvalidRateError(f"The maximum replicas ({hi}) cannot be below the minimum ({lo}).")
        if self.model_memory_gb is not None:
            positive("The model's GPU memory (GB)", self.model_memory_gb)
        whole("The capacity window (minutes)", self.capacity_window_minutes, 1)
        non_negative("The serverless cold start (seconds)", self.serverless_cold_start_s, maximum=MAX_SECONDS)
        share = finite("The share of serverless requests meeting a cold start", self.serverless_cold_start_share)
        if not 0 <= share <= 1:  # said as a fraction (the command line's) and in percent (the page's)
            raise InvalidRateError(
                "The share of serverless requests meeting a cold start is a fraction from 0 to 1 (0% to 100%), got "
                f"{share:g} ({share * 100:g}%)."
            )
        if not self.gpus and self.serverless is None:
            raise InvalidRateError("Nothing to compare: give a serverless price or at least one GPU.")
        ids = [g.id for g in self.gpus]
        if len(set(ids)) != len(ids):
            raise InvalidRateError(f"Each GPU may appear once; got {', '.join(ids)}.")
