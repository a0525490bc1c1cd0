"""Serverless cold starts: a share of serverless requests waits for the model to load, so the serverless p95 is not
better than reality, and the recommendation says so when it decides the answer."""

from __future__ import annotations

import pytest

from core.breakeven import evaluate
from core.breakeven.errors import InvalidRateError
from core.breakeven.traffic import flat
from tests.core.breakeven.helpers import scenario


def test_the_p95_includes_the_cold_start_once_one_request_in_20_meets_one() -> None:
    for share, p95 in [(0.0, 3.0), (0.04, 3.0), (0.05, 8.0), (0.3, 8.0)]:
        serverless = evaluate(
            flat(10, 24), scenario(serverless_cold_start_s=5.0, serverless_cold_start_share=share)
        ).option("serverless")
        assert serverless.cold_start_fraction == share
        assert serverless.p95_latency_s == pytest.approx(p95)  # 3 s of service, plus 5 s for the cold ones
    instant = evaluate(flat(10, 24), scenario(serverless_cold_start_s=0, serverless_cold_start_share=0.5))
    assert instant.option("serverless").cold_start_fraction == 0.0  # a cold start that takes no time is none


def test_serverless_recommended_with_its_cold_start_in_the_p95_says_so() -> None:
    ev = evaluate(flat(10, 720), scenario(serverless_cold_start_s=5.0, serverless_cold_start_share=0.1))
    assert ev.recommendation.option == "serverless"
    assert "its p95 of 8.0 s includes a 5 s cold start for 10% of its requests" in ev.recommendation.reason


def test_a_cheaper_serverless_too_slow_because_of_cold_starts_is_named_with_them() -> None:
    sc = scenario(service_time_s=3.0, p95_slo_s=5.0, serverless_cold_start_s=5.0, serverless_cold_start_share=0.05)
    ev = evaluate(flat(10, 720), sc)
    serverless = ev.option("serverless")
    assert not serverless.meets_slo and serverless.p95_latency_s == pytest.approx(8.0)
    reason = ev.recommendation.reason
    assert ev.recommendation.option == "T4 always-on"
    assert (
        "serverless would cost less ($73.00) but has a p95 of 8.0 s, a 5 s cold start for 5% of its requests "
        "included" in reason
    )
    assert "less than serverless" not in reason  # serverless is the cheaper one here
    assert reason.endswith(".") and ". " not in reason


def test_rare_cold_starts_leave_the_p95_and_the_sentence_alone() -> None:
    ev = evaluate(flat(10, 720), scenario(serverless_cold_start_s=5.0, serverless_cold_start_share=0.02))
    assert ev.recommendation.option == "serverless" and "cold start" not in ev.recommendation.reason


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"serverless_cold_start_share": 1.5}, "fraction from 0 to 1"),
        ({"serverless_cold_start_share": -0.1}, r"got -0.1 \(-10%\)"),
        ({"serverless_cold_start_s": float("nan")}, "serverless cold start"),
    ],
)
def test_bad_cold_start_settings_are_refused(kw: dict, message: str) -> None:
    with pytest.raises(InvalidRateError, match=message):
        scenario(**kw)
