"""Money and capacity figures of each option, shared by the single evaluation and the sweep.

Dedicated cost = hourly price x billed replica-hours; serverless cost = requests x price per request. Every monthly
figure is the horizon's figure scaled to a month of 730 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from core.breakeven.capacity import DemandBlocks, always_on_plan, autoscaled_replicas
from core.breakeven.defaults import MONTH_HOURS
from core.breakeven.scale_to_zero import Billing, BlockActivity, bill
from core.breakeven.scenario import Gpu, Scenario

CENT = Decimal("0.01")


def to_cents(usd: Decimal) -> Decimal:
    return usd.quantize(CENT, rounding=ROUND_HALF_UP)


def month_factor(horizon_minutes: int) -> Decimal:
    """Multiply a horizon's figure by this to get a month's (730 hours)."""
    return Decimal(MONTH_HOURS * 60) / Decimal(horizon_minutes)


def dedicated_usd(hourly_usd: Decimal, replica_minutes: float) -> Decimal:
    """Uptime cost: billed per minute at the hourly rate (replica-minutes are whole in a replay)."""
    return hourly_usd * Decimal(round(replica_minutes, 6)) / 60


@dataclass(frozen=True, eq=False)
class GpuFigures:
    """One GPU's capacity and scale-to-zero billing; every field is an array (one per rate) for a stacked sweep."""

    always_on_replicas: np.ndarray
    always_on_needed: np.ndarray  # what the busiest block needs at the target utilization
    peak_servers: np.ndarray  # replicas serving the busiest block (always-on and scale-to-zero alike)
    stable: np.ndarray  # False: even the maximum replicas cannot keep up with the busiest block
    block_replicas: np.ndarray  # scale-to-zero: replicas per block while up
    billing: Billing  # scale-to-zero


def gpu_figures(
    gpu: Gpu, scenario: Scenario, blocks: DemandBlocks, activity: BlockActivity, cold_start_minutes: int
) -> GpuFigures:
    """Figures of `gpu` for one trace, or for a stack of traces (blocks' rates and the activity with a leading axis)."""
    assert gpu.throughput_per_hour is not None
    thr = gpu.throughput_per_hour
    peak = blocks.peak_per_hour
    plan = always_on_plan(peak, thr, scenario.target_utilization, scenario.min_replicas, scenario.max_replicas)
    block_replicas = autoscaled_replicas(blocks, thr, scenario.target_utilization, scenario.max_replicas)
    peak_servers = np.minimum(np.maximum(plan.needed, 1), scenario.max_replicas)
    return GpuFigures(
        always_on_replicas=plan.replicas,
        always_on_needed=plan.needed,
        peak_servers=peak_servers,
        stable=np.asarray(peak) < peak_servers * thr,
        block_replicas=block_replicas,
        billing=bill(activity, block_replicas, cold_start_minutes),
    )


def capacity_reason(gpu: Gpu, scenario: Scenario, peak_per_hour: float, window_minutes: int) -> str:
    assert gpu.throughput_per_hour is not None
    most = scenario.max_replicas * gpu.throughput_per_hour
    return (
        f"the busiest {window_minutes} minutes run at {peak_per_hour:,.0f} requests/hour, more than "
        f"{scenario.max_replicas} {gpu.id} replica(s) can serve ({most:,.0f} requests/hour); "
        "raise the maximum replicas or the throughput estimate"
    )
