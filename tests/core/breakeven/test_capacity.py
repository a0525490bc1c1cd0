"""Memory exclusion and replica sizing."""

from __future__ import annotations

import numpy as np

from core.breakeven import evaluate
from core.breakeven.capacity import demand_blocks, memory_exclusion, replicas_needed
from core.breakeven.traffic import flat
from tests.core.breakeven.helpers import scenario


def test_a_140_gb_model_fits_no_single_gpu() -> None:
    ev = evaluate(flat(100, 48), scenario(model_memory_gb=140))
    dedicated = [o for o in ev.options if o.hardware]
    assert len(dedicated) == 8
    for o in dedicated:
        assert o.excluded_reason is not None and "140 GB" in o.excluded_reason and o.hardware in o.excluded_reason
        assert o.monthly_cost_usd is None and not o.meets_slo
    assert all(v is None for v in ev.break_even_requests_per_hour.values())
    assert ev.recommendation.option == "serverless"


def test_an_18_gb_model_excludes_the_t4_only() -> None:
    ev = evaluate(flat(100, 48), scenario(model_memory_gb=18))
    excluded = {o.option for o in ev.options if o.excluded_reason}
    assert excluded == {"T4 always-on", "T4 scale-to-zero"}
    assert "16 GB" in (ev.option("T4 always-on").excluded_reason or "")
    assert ev.break_even_requests_per_hour["T4"] is None
    assert ev.break_even_requests_per_hour["L4"] == 80


def test_memory_exclusion_reason() -> None:
    assert memory_exclusion(None, "T4", 16) is None
    assert memory_exclusion(16, "T4", 16) is None
    reason = memory_exclusion(24.5, "T4", 16)
    assert reason is not None and "24.5 GB" in reason and "16 GB" in reason


def test_replicas_needed_is_the_ceiling_of_demand_over_usable_throughput() -> None:
    rates = np.array([0.0, 1.0, 1260.0, 1260.1, 5000.0])
    assert replicas_needed(rates, 1800, 0.7).tolist() == [0, 1, 1, 2, 4]


def test_demand_blocks_measure_requests_per_hour_including_a_short_last_block() -> None:
    counts = np.array([1] * 30 + [2] * 5)  # 35 minutes, 15-minute blocks
    blocks = demand_blocks(counts, 15)
    assert blocks.lengths.tolist() == [15, 15, 5]
    assert blocks.rates_per_hour.tolist() == [60.0, 60.0, 120.0]


def test_traffic_beyond_the_maximum_replicas_is_excluded_with_the_reason() -> None:
    ev = evaluate(flat(20_000, 24), scenario(max_replicas=2))
    t4 = ev.option("T4 always-on")
    assert t4.excluded_reason and "2 T4 replica(s)" in t4.excluded_reason and "maximum replicas" in t4.excluded_reason
    assert not t4.meets_slo and t4.p95_latency_s is None
    assert ev.option("A100 always-on").excluded_reason is None  # 2 x 12,000/h keeps up


def test_missing_throughput_excludes_a_gpu_with_the_reason() -> None:
    from decimal import Decimal

    from core.breakeven import Gpu

    sc = scenario(gpus=(Gpu(id="L40S", hourly_usd=Decimal("1.80"), memory_gb=48, throughput_per_hour=None),))
    ev = evaluate(flat(10, 24), sc)
    assert "no throughput estimate for L40S" in (ev.option("L40S always-on").excluded_reason or "")
