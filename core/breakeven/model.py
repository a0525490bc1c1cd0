"""Evaluate every option (serverless; each GPU always-on and with scale-to-zero) over one traffic trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from core.breakeven.capacity import demand_blocks, memory_exclusion
from core.breakeven.costs import capacity_reason, dedicated_usd, gpu_figures, month_factor, to_cents
from core.breakeven.defaults import MONTH_HOURS
from core.breakeven.queueing import latency_quantile
from core.breakeven.recommend import Recommendation, recommend
from core.breakeven.scale_to_zero import billed_cold_start_minutes, per_block, replay, replica_timeline
from core.breakeven.scenario import Gpu, Scenario
from core.breakeven.traffic import Traffic

SERVERLESS = "serverless"


def option_name(gpu_id: str, scale_to_zero: bool) -> str:
    return f"{gpu_id} scale-to-zero" if scale_to_zero else f"{gpu_id} always-on"


@dataclass(frozen=True, kw_only=True)
class OptionResult:
    option: str
    hardware: str | None
    scale_to_zero: bool
    monthly_cost_usd: Decimal | None  # rounded to cents
    billed_hours: float | None  # replica-hours billed per month
    replicas: int | None  # always-on: replicas running; scale-to-zero: the most replicas it runs
    utilization: float | None  # requests served / (running replica-hours x throughput)
    cold_start_fraction: float | None  # share of requests that meet a cold start
    p95_latency_s: float | None  # in the busiest demand block, cold starts included
    meets_slo: bool
    excluded_reason: str | None = None

    @property
    def available(self) -> bool:
        """Shown with figures (not excluded)."""
        return self.excluded_reason is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "hardware": self.hardware,
            "scale_to_zero": self.scale_to_zero,
            "monthly_cost_usd": None if self.monthly_cost_usd is None else f"{self.monthly_cost_usd:.2f}",
            "billed_hours": _round(self.billed_hours, 2),
            "replicas": self.replicas,
            "utilization": _round(self.utilization, 4),
            "cold_start_fraction": _round(self.cold_start_fraction, 4),
            "p95_latency_s": _round(self.p95_latency_s, 3),
            "meets_slo": self.meets_slo,
            "excluded_reason": self.excluded_reason,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True, kw_only=True, eq=False)
class Evaluation:
    options: list[OptionResult]
    break_even_requests_per_hour: dict[str, float | None]
    recommendation: Recommendation
    requests: int  # in the simulated horizon
    horizon_hours: float
    mean_requests_per_hour: float
    peak_requests_per_hour: float  # the busiest capacity block
    timelines: dict[str, np.ndarray] = field(default_factory=dict)  # GPU id -> replicas per minute, scale-to-zero

    def option(self, name: str) -> OptionResult:
        for o in self.options:
            if o.option == name:
                return o
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The command line's JSON: options, break-even per GPU and the recommendation."""
        return {
            "options": [o.to_dict() for o in self.options],
            "break_even_requests_per_hour": {k: _round(v, 2) for k, v in self.break_even_requests_per_hour.items()},
            "recommendation": self.recommendation.to_dict(),
        }


def peak_to_mean(traffic: Traffic, window_minutes: int) -> float:
    """How much busier the busiest block is than the average, in the traffic's expected shape (1 for flat)."""
    blocks = demand_blocks(traffic.shape, window_minutes)
    return max(blocks.peak_per_hour, 1.0)  # the shape averages 1 request/hour


def always_on_break_even(
    gpu: Gpu, scenario: Scenario, peak_ratio: float, *, min_replicas: int | None = None
) -> float | None:
    """Mean requests/hour above which `gpu` always-on costs less than serverless, or None when it never does.

    With m minimum replicas the break-even is m x hourly price / price per request, the specification's rule, as long as
    those replicas can still serve the traffic there (peak = mean x `peak_ratio` within m x throughput x utilization).
    If they cannot, every extra replica costs more than the requests it makes room for, and serverless always wins.
    """
    if scenario.serverless is None or gpu.throughput_per_hour is None:
        return None
    if memory_exclusion(scenario.model_memory_gb, gpu.id, gpu.memory_gb):
        return None
    m = scenario.min_replicas if min_replicas is None else min_replicas
    rate = float(gpu.hourly_usd * m / scenario.serverless.per_request_usd)
    capacity = gpu.throughput_per_hour * scenario.target_utilization
    return rate if rate * peak_ratio <= m * capacity * (1 + 1e-12) else None


def evaluate(traffic: Traffic, scenario: Scenario) -> Evaluation:
    """Every option's monthly cost, billed hours, replicas, utilization, cold starts and p95 over `traffic`."""
    minutes = traffic.minutes
    window = scenario.capacity_window_minutes
    blocks = demand_blocks(traffic.counts, window)
    peak = blocks.peak_per_hour
    activity = replay(traffic.counts, scenario.idle_timeout_minutes)
    block_activity = per_block(activity, blocks)
    cold_minutes = billed_cold_start_minutes(scenario.cold_start_s)
    to_month = month_factor(minutes)
    hours_to_month = MONTH_HOURS * 60.0 / minutes
    requests = traffic.requests
    slo = scenario.p95_slo_s

    options: list[OptionResult] = []
    if scenario.serverless is None:
        options.append(_excluded(SERVERLESS, None, False, "no serverless price: enter a price per request"))
    else:
        cost = Decimal(requests) * scenario.serverless.per_request_usd * to_month
        p95_serverless = serverless_p95(scenario)
        options.append(
            OptionResult(
                option=SERVERLESS,
                hardware=None,
                scale_to_zero=False,
                monthly_cost_usd=to_cents(cost),
                billed_hours=None,
                replicas=None,
                utilization=None,
                cold_start_fraction=serverless_cold_fraction(scenario),
                p95_latency_s=p95_serverless,
                meets_slo=p95_serverless <= slo,
            )
        )

    timelines: dict[str, np.ndarray] = {}
    for gpu in scenario.gpus:
        reason = memory_exclusion(scenario.model_memory_gb, gpu.id, gpu.memory_gb)
        if reason is None and gpu.throughput_per_hour is None:
            reason = f"no throughput estimate for {gpu.id}: enter the requests/hour one replica serves"
        if reason:
            options.append(_excluded(option_name(gpu.id, False), gpu.id, False, reason))
            options.append(_excluded(option_name(gpu.id, True), gpu.id, True, reason))
            continue
        thr = float(gpu.throughput_per_hour)  # type: ignore[arg-type]
        fig = gpu_figures(gpu, scenario, blocks, block_activity, cold_minutes)
        stable, on_replicas, peak_servers = bool(fig.stable), int(fig.always_on_replicas), int(fig.peak_servers)
        short = None if stable else capacity_reason(gpu, scenario, peak, window)

        on_minutes = on_replicas * minutes
        p95_on = _p95(scenario, on_replicas, peak, thr, 0.0) if stable else None
        options.append(
            OptionResult(
                option=option_name(gpu.id, False),
                hardware=gpu.id,
                scale_to_zero=False,
                monthly_cost_usd=to_cents(dedicated_usd(gpu.hourly_usd, on_minutes) * to_month),
                billed_hours=on_minutes / 60.0 * hours_to_month,
                replicas=on_replicas,
                utilization=requests / (on_minutes / 60.0 * thr),
                cold_start_fraction=0.0,
                p95_latency_s=p95_on,
                meets_slo=p95_on is not None and p95_on <= slo,
                excluded_reason=short,
            )
        )

        billing = fig.billing
        replica_minutes = float(billing.replica_minutes)
        cold_fraction = activity.cold_start_fraction
        p95_s2z = _p95(scenario, peak_servers, peak, thr, cold_fraction) if stable else None
        running_hours = float(billing.running_replica_minutes) / 60.0
        options.append(
            OptionResult(
                option=option_name(gpu.id, True),
                hardware=gpu.id,
                scale_to_zero=True,
                monthly_cost_usd=to_cents(dedicated_usd(gpu.hourly_usd, replica_minutes) * to_month),
                billed_hours=replica_minutes / 60.0 * hours_to_month,
                replicas=int(fig.block_replicas.max()) if replica_minutes else 0,
                utilization=requests / (running_hours * thr) if running_hours else 0.0,
                cold_start_fraction=cold_fraction,
                p95_latency_s=p95_s2z,
                meets_slo=p95_s2z is not None and p95_s2z <= slo,
                excluded_reason=short,
            )
        )
        timelines[gpu.id] = replica_timeline(activity, blocks, fig.block_replicas)

    ratio = peak_to_mean(traffic, window)
    break_even = {gpu.id: always_on_break_even(gpu, scenario, ratio) for gpu in scenario.gpus}
    mean_rph = requests / traffic.hours
    return Evaluation(
        options=options,
        break_even_requests_per_hour=break_even,
        recommendation=recommend(
            options,
            slo_s=slo,
            requests_per_hour=mean_rph,
            break_even=break_even,
            serverless_cold_start_s=scenario.serverless_cold_start_s,
        ),
        requests=requests,
        horizon_hours=traffic.hours,
        mean_requests_per_hour=mean_rph,
        peak_requests_per_hour=peak,
        timelines=timelines,
    )


def serverless_cold_fraction(scenario: Scenario) -> float:
    """The share of serverless requests that meet a cold start (none when a cold start takes no time)."""
    return scenario.serverless_cold_start_share if scenario.serverless_cold_start_s > 0 else 0.0


def serverless_p95(scenario: Scenario) -> float:
    """Serverless p95: the service time, plus the cold start once at least 1 request in 20 meets one. The provider
    scales its shared capacity, so no queueing wait is modelled."""
    return latency_quantile(
        service_time_s=scenario.service_time_s,
        servers=1,
        arrival_rate_per_s=0.0,
        service_rate_per_s=1.0,
        cold_fraction=serverless_cold_fraction(scenario),
        cold_start_s=scenario.serverless_cold_start_s,
    )


def _p95(scenario: Scenario, servers: int, peak_per_hour: float, throughput: float, cold_fraction: float) -> float:
    return latency_quantile(
        service_time_s=scenario.service_time_s,
        servers=max(servers, 1),
        arrival_rate_per_s=peak_per_hour / 3600.0,
        service_rate_per_s=throughput / 3600.0,
        cold_fraction=cold_fraction,
        cold_start_s=scenario.cold_start_s,
    )


def _excluded(option: str, hardware: str | None, scale_to_zero: bool, reason: str) -> OptionResult:
    return OptionResult(
        option=option,
        hardware=hardware,
        scale_to_zero=scale_to_zero,
        monthly_cost_usd=None,
        billed_hours=None,
        replicas=None,
        utilization=None,
        cold_start_fraction=None,
        p95_latency_s=None,
        meets_slo=False,
        excluded_reason=reason,
    )
