"""The recommendation: cheapest option meeting the target, one sentence of why."""

from __future__ import annotations

from decimal import Decimal

from core.breakeven import evaluate, recommend
from core.breakeven.model import OptionResult
from core.breakeven.traffic import diurnal, flat
from tests.core.breakeven.helpers import scenario


def _opt(name: str, cost: str, p95: float, meets: bool, hardware: str | None = "T4") -> OptionResult:
    return OptionResult(
        option=name,
        hardware=hardware,
        scale_to_zero="zero" in name,
        monthly_cost_usd=Decimal(cost),
        billed_hours=730.0 if hardware else None,
        replicas=1 if hardware else None,
        utilization=0.5,
        cold_start_fraction=0.0,
        p95_latency_s=p95,
        meets_slo=meets,
    )


def test_the_cheapest_option_meeting_the_target_wins_and_a_cheaper_miss_is_named() -> None:
    options = [
        _opt("serverless", "900.00", 2.0, True, None),
        _opt("T4 scale-to-zero", "120.00", 302.0, False),
        _opt("L4 always-on", "584.00", 3.1, True),
    ]
    rec = recommend(options, slo_s=5, requests_per_hour=250, break_even={"L4": 80.0})
    assert rec.option == "L4 always-on"
    assert "$316.00 less than serverless ($900.00)" in rec.reason
    assert "T4 scale-to-zero would cost less ($120.00) but has a p95 of 302.0 s" in rec.reason
    assert rec.reason.endswith(".") and ". " not in rec.reason  # one sentence


def test_serverless_wins_at_low_traffic_and_names_the_break_even() -> None:
    ev = evaluate(flat(10, 720), scenario("0.01"))
    assert ev.recommendation.option == "serverless"
    assert "breaks even with it at 60 requests/hour" in ev.recommendation.reason


def test_a_dedicated_gpu_wins_at_high_traffic() -> None:
    ev = evaluate(flat(1000, 720), scenario("0.01"))
    # one T4 would be cheapest, but at 1,000 of its 1,800 requests/hour the queue puts its p95 above 10 s
    t4 = ev.option("T4 always-on")
    assert t4.p95_latency_s is not None and t4.p95_latency_s > 10 and not t4.meets_slo
    assert ev.recommendation.option == "L4 always-on"
    assert "$7,300.00" in ev.recommendation.reason  # serverless: 1,000 x $0.01 x 730 h
    assert "T4 always-on would cost less ($438.00)" in ev.recommendation.reason


def test_scale_to_zero_wins_for_office_hours_traffic_when_cold_starts_are_acceptable() -> None:
    sc = scenario("0.01", idle_timeout_minutes=15, cold_start_s=20, p95_slo_s=60)
    ev = evaluate(diurnal(100, 24 * 28, seed=1), sc)
    assert ev.recommendation.option is not None and "scale-to-zero" in ev.recommendation.option


def test_no_option_meets_an_impossible_target() -> None:
    ev = evaluate(flat(10, 24), scenario(service_time_s=3.0, p95_slo_s=3.0, gpus=()))
    assert ev.recommendation.option == "serverless"  # serverless answers in the service time
    options = [_opt("T4 always-on", "400.00", 9.0, False), _opt("L4 always-on", "500.00", 7.5, False)]
    rec = recommend(options, slo_s=5, requests_per_hour=10, break_even={})
    assert rec.option is None
    assert "fastest, L4 always-on, has a p95 of 7.5 s" in rec.reason
