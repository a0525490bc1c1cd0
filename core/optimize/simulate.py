"""The break-even model run over one recorded trace for Optimize: every option at each idle timeout, and the cheapest
one that meets the latency target.

The scenario is the simulator's defaults for the model's category (service time, p95 target, throughput per GPU), its
catalog GPU memory, the hardware catalog's hourly prices and a 300 s cold start; scale-to-zero is tried at the idle
timeouts Hugging Face offers (15, 30 and 60 minutes) and the cheapest kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.breakeven.defaults import DEFAULT_COLD_START_SECONDS, category_defaults
from core.breakeven.model import SERVERLESS, Evaluation, OptionResult, evaluate
from core.breakeven.scenario import Gpu, Scenario
from core.breakeven.serverless import ServerlessPrice
from core.breakeven.traffic import from_counts
from core.catalog.types import HardwarePrice

IDLE_TIMEOUTS = (15, 30, 60)


@dataclass(frozen=True, eq=False)
class Choice:
    option: OptionResult
    idle_minutes: int | None  # scale-to-zero's idle timeout; None for serverless and always-on
    evaluation: Evaluation

    @property
    def key(self) -> tuple[str, int | None]:
        return self.option.option, self.idle_minutes


@dataclass(frozen=True, eq=False)
class Simulation:
    choices: list[Choice]  # every priced option (each scale-to-zero once per idle timeout)
    best: Choice | None  # the cheapest that meets the latency target
    slo_s: float

    def find(self, option: str, idle_minutes: int | None = None) -> Choice | None:
        for c in self.choices:
            if c.option.option == option and (idle_minutes is None or c.idle_minutes == idle_minutes):
                return c
        return None

    @property
    def serverless(self) -> Choice | None:
        return self.find(SERVERLESS)

    @property
    def evaluation(self) -> Evaluation:
        return self.choices[0].evaluation


def gpus_for(hardware: Sequence[HardwarePrice], category: str) -> tuple[Gpu, ...]:
    throughput = category_defaults(category).throughput_per_hour
    return tuple(
        Gpu(
            id=hw.id,
            hourly_usd=hw.hourly_usd,
            memory_gb=float(hw.gpu_memory_gb),
            throughput_per_hour=throughput.get(hw.id),
        )
        for hw in hardware
    )


def simulate(
    per_minute: np.ndarray,
    *,
    start: datetime,
    category: str,
    memory_gb: float | None,
    serverless: ServerlessPrice | None,
    hardware: Sequence[HardwarePrice],
    idle_timeouts: Iterable[int] = IDLE_TIMEOUTS,
) -> Simulation:
    """Every option over the recorded trace `per_minute` (requests in each minute from `start`)."""
    cat = category_defaults(category)
    traffic = from_counts(per_minute, start=start)
    gpus = gpus_for(hardware, category)
    choices: list[Choice] = []
    for i, idle in enumerate(sorted(set(idle_timeouts))):
        scenario = Scenario(
            serverless=serverless,
            gpus=gpus,
            service_time_s=cat.service_time_s,
            p95_slo_s=cat.p95_slo_s,
            idle_timeout_minutes=idle,
            cold_start_s=DEFAULT_COLD_START_SECONDS,
            model_memory_gb=memory_gb,
        )
        ev = evaluate(traffic, scenario)
        for o in ev.options:
            if not o.available or o.monthly_cost_usd is None:
                continue
            if o.scale_to_zero:
                choices.append(Choice(o, idle, ev))
            elif i == 0:  # serverless and always-on do not depend on the idle timeout
                choices.append(Choice(o, None, ev))
    order = {c.key: n for n, c in enumerate(choices)}
    eligible = [c for c in choices if c.option.meets_slo]
    best = min(
        eligible,
        key=lambda c: (c.option.monthly_cost_usd, c.option.p95_latency_s or 0.0, order[c.key]),
        default=None,
    )
    return Simulation(choices=choices, best=best, slo_s=cat.p95_slo_s)


def describe(choice: Choice) -> str:
    """The option in words: 'serverless', 'an always-on T4 endpoint (1 replica)', 'a T4 endpoint with 15-minute
    scale-to-zero'."""
    o = choice.option
    if o.hardware is None:
        return "serverless"
    if o.scale_to_zero:
        return f"a {o.hardware} endpoint with {choice.idle_minutes}-minute scale-to-zero"
    return f"an always-on {o.hardware} endpoint ({o.replicas} replica{'s' if (o.replicas or 0) > 1 else ''})"
