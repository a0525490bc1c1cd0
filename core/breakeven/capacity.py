"""How many replicas a GPU needs, and whether the model fits in its memory at all.

Replicas = ceil(demand / (throughput per replica x target utilization)), with demand measured in requests/hour over
blocks of a few minutes (the capacity window): an always-on endpoint is sized for its busiest block, a scale-to-zero
endpoint follows the demand block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-9  # so that 60 / (600 x 0.1) is one replica, not two after rounding error


@dataclass(frozen=True, eq=False)
class DemandBlocks:
    starts: np.ndarray  # first minute of each block
    lengths: np.ndarray  # minutes in each block (the last one may be shorter)
    rates_per_hour: np.ndarray  # requests/hour in each block

    @property
    def peak_per_hour(self) -> float | np.ndarray:
        """The busiest block's rate (one per row when `rates_per_hour` stacks several traces)."""
        if not self.rates_per_hour.size:
            return 0.0
        peak = self.rates_per_hour.max(axis=-1)
        return float(peak) if peak.ndim == 0 else peak


def demand_blocks(per_minute: np.ndarray, window_minutes: int) -> DemandBlocks:
    """Requests/hour in consecutive blocks of `window_minutes` (counts or expected arrivals per minute)."""
    n = per_minute.size
    starts = np.arange(0, n, window_minutes)
    lengths = np.diff(np.append(starts, n))
    sums = np.add.reduceat(per_minute.astype(np.float64), starts) if n else np.zeros(0)
    return DemandBlocks(starts, lengths, sums * 60.0 / lengths)


def replicas_needed(
    rate_per_hour: np.ndarray | float, throughput_per_hour: float, target_utilization: float
) -> np.ndarray:
    """ceil(rate / (throughput x utilization)); zero demand needs zero replicas."""
    need = np.ceil(np.asarray(rate_per_hour, dtype=np.float64) / (throughput_per_hour * target_utilization) - _EPS)
    return np.maximum(need, 0).astype(np.int64)


@dataclass(frozen=True)
class AlwaysOnPlan:
    """Replicas of an always-on endpoint (arrays when planning several peaks at once)."""

    replicas: int  # what runs all the time: max(min replicas, what the peak needs), capped at max replicas
    needed: int  # what the busiest block needs


def always_on_plan(
    peak_per_hour: float | np.ndarray,
    throughput_per_hour: float,
    target_utilization: float,
    min_replicas: int,
    max_replicas: int,
) -> AlwaysOnPlan:
    needed = replicas_needed(peak_per_hour, throughput_per_hour, target_utilization)
    replicas = np.minimum(np.maximum(needed, min_replicas), max_replicas)
    return AlwaysOnPlan(replicas=replicas, needed=needed)


def autoscaled_replicas(
    blocks: DemandBlocks, throughput_per_hour: float, target_utilization: float, max_replicas: int
) -> np.ndarray:
    """Replicas per block while a scale-to-zero endpoint is up: at least one, at most the maximum."""
    need = replicas_needed(blocks.rates_per_hour, throughput_per_hour, target_utilization)
    return np.minimum(np.maximum(need, 1), max_replicas)


def memory_exclusion(model_memory_gb: float | None, gpu_id: str, gpu_memory_gb: float) -> str | None:
    """Why a model cannot run on this GPU, or None when it fits (or its memory need is unknown)."""
    if model_memory_gb is None or model_memory_gb <= gpu_memory_gb:
        return None
    return (
        f"the model needs {model_memory_gb:g} GB of GPU memory and one {gpu_id} has {gpu_memory_gb:g} GB; "
        "it does not fit on a single GPU of this type"
    )
