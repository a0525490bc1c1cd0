"""Scenarios shaped like the shipped catalog, for tests that do not need a database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.breakeven import Gpu, Scenario
from core.breakeven.serverless import per_request

# id, hourly (the product's rate), memory, chat throughput default
CATALOG = [
    ("T4", "0.60", 16, 1800.0),
    ("L4", "0.80", 24, 3600.0),
    ("A10G", "1.00", 24, 4000.0),
    ("A100", "4.00", 80, 12000.0),
]


def gpus(**throughput: float) -> tuple[Gpu, ...]:
    return tuple(
        Gpu(id=g, hourly_usd=Decimal(h), memory_gb=m, throughput_per_hour=throughput.get(g, thr))
        for g, h, m, thr in CATALOG
    )


def scenario(price: str = "0.01", **kw: Any) -> Scenario:
    base: dict[str, Any] = {
        "serverless": per_request(Decimal(price)),
        "gpus": gpus(),
        "service_time_s": 3.0,
        "p95_slo_s": 10.0,
    }
    base.update(kw)
    return Scenario(**base)
