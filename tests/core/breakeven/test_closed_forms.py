"""The closed forms the simulator must honour: the specification's break-even rule, the scale-to-zero formulas for
Poisson traffic, and Erlang C against textbook values."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from core.breakeven import always_on_break_even, evaluate, make_traffic
from core.breakeven.model import peak_to_mean
from core.breakeven.queueing import erlang_c, latency_quantile, wait_quantile
from core.breakeven.scale_to_zero import (
    closed_form_billed_fraction,
    closed_form_cold_probability,
    expected,
    replay,
)
from core.breakeven.traffic import flat, poisson
from tests.core.breakeven.helpers import gpus, scenario


@pytest.mark.parametrize(("price", "expected_rates"), [("0.01", [60, 80, 100, 400]), ("0.02", [30, 40, 50, 200])])
def test_always_on_break_even_is_hourly_price_over_price_per_request(price: str, expected_rates: list[float]) -> None:
    sc = scenario(price)
    ratio = peak_to_mean(flat(10, 24), sc.capacity_window_minutes)
    got = [always_on_break_even(g, sc, ratio) for g in sc.gpus]
    assert got == pytest.approx(expected_rates)


def test_break_even_is_where_flat_always_on_and_serverless_cost_the_same() -> None:
    """At 60 requests/hour a T4 always-on ($0.60/h) and $0.01 serverless both cost 60 cents an hour."""
    ev = evaluate(flat(60, 720), scenario("0.01"))
    assert ev.option("serverless").monthly_cost_usd == ev.option("T4 always-on").monthly_cost_usd == Decimal("438.00")
    below = evaluate(flat(59, 720), scenario("0.01"))
    above = evaluate(flat(61, 720), scenario("0.01"))
    assert below.option("serverless").monthly_cost_usd < below.option("T4 always-on").monthly_cost_usd
    assert above.option("serverless").monthly_cost_usd > above.option("T4 always-on").monthly_cost_usd


def test_break_even_scales_with_minimum_replicas_and_vanishes_when_one_gpu_cannot_pay_for_itself() -> None:
    sc = scenario("0.01", min_replicas=2)
    assert always_on_break_even(sc.gpus[0], sc, 1.0) == pytest.approx(120)
    # 60 requests/hour pay for a T4, but a replica serving only 50/hour never reaches them: serverless always wins
    slow = scenario("0.01", gpus=gpus(T4=50.0), target_utilization=1.0)
    assert always_on_break_even(slow.gpus[0], slow, 1.0) is None


# (requests per minute L, idle timeout T minutes, cold start C minutes)
POISSON_CASES = [(0.05, 15, 2), (0.02, 60, 5), (0.2, 10, 1), (0.01, 30, 3)]


@pytest.mark.parametrize(("rate", "idle", "cold"), POISSON_CASES)
def test_replay_of_a_long_poisson_trace_agrees_with_the_closed_forms(rate: float, idle: int, cold: int) -> None:
    minutes = 366 * 24 * 60
    counts = np.random.default_rng(42).poisson(rate, minutes)
    act = replay(counts, idle)
    billed = (act.up_minutes + act.cold_starts * cold) / minutes
    assert billed == pytest.approx(closed_form_billed_fraction(rate, idle, cold), rel=0.02)
    assert act.cold_start_fraction == pytest.approx(closed_form_cold_probability(rate, idle), rel=0.02)


@pytest.mark.parametrize(("rate", "idle", "cold"), POISSON_CASES)
def test_expected_replay_is_the_closed_form_in_steady_state(rate: float, idle: int, cold: int) -> None:
    minutes = 200_000
    act = expected(np.full(minutes, rate), idle)
    steady = slice(idle + 1, None)
    assert np.allclose(act.up[steady], 1 - math.exp(-rate * idle), rtol=1e-9, atol=0)
    assert act.cold_start_fraction == pytest.approx(closed_form_cold_probability(rate, idle), rel=1e-3)
    # Per minute, a cold start begins when the minute has any arrival after T quiet minutes: (1 - e^-L) e^-LT, which
    # the closed form writes L e^-LT (continuous time). The billed fractions still agree within 2%.
    assert np.allclose(act.cold[steady], -math.expm1(-rate) * math.exp(-rate * idle), rtol=1e-9, atol=0)
    billed = (act.up_minutes + act.cold_starts * cold) / minutes
    assert billed == pytest.approx(closed_form_billed_fraction(rate, idle, cold), rel=0.02)


def test_evaluated_scale_to_zero_matches_the_closed_form_on_a_poisson_profile() -> None:
    rph, idle, cold_s = 3.0, 15, 120.0  # L = 0.05 per minute, C = 2 billed minutes
    traffic = poisson(rph, 24 * 365, seed=5)
    ev = evaluate(traffic, scenario(idle_timeout_minutes=idle, cold_start_s=cold_s, p95_slo_s=1000))
    t4 = ev.option("T4 scale-to-zero")
    hours_per_month = 730
    assert t4.billed_hours / hours_per_month == pytest.approx(closed_form_billed_fraction(0.05, idle, 2), rel=0.02)
    assert t4.cold_start_fraction == pytest.approx(closed_form_cold_probability(0.05, idle), rel=0.02)


def test_erlang_c_textbook_values() -> None:
    # M/M/1: the probability of waiting is the utilization
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    # two servers, one erlang: 1/3 by hand from the formula
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # 120 customers/hour, 3 minutes each, 10 assistants (6 erlangs): "from the Erlang C curve, about 0.10"
    assert erlang_c(10, 6.0) == pytest.approx(0.1013, abs=5e-4)
    # call-centre tables: 8 erlangs on 10 agents waits with probability 0.409
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-4)
    # overloaded: everyone waits
    assert erlang_c(3, 3.0) == 1.0


def test_erlang_c_matches_the_textbook_formula_for_many_servers() -> None:
    def textbook(c: int, a: float) -> float:
        top = a**c / math.factorial(c) * c / (c - a)
        return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)

    for c, a in [(3, 2.5), (5, 4.2), (20, 15.0), (50, 45.0)]:
        assert erlang_c(c, a) == pytest.approx(textbook(c, a), rel=1e-9)


def test_wait_quantile_follows_the_exponential_tail() -> None:
    lam, mu = 0.8, 1.0  # M/M/1: P(W > t) = rho e^-(mu - lam) t
    t95 = wait_quantile(0.95, 1, lam, mu)
    assert 0.8 * math.exp(-(mu - lam) * t95) == pytest.approx(0.05)
    assert wait_quantile(0.95, 4, 0.1, 1.0) == 0.0  # almost nobody waits
    assert wait_quantile(0.95, 1, 2.0, 1.0) == math.inf


def test_p95_includes_the_cold_start_once_more_than_five_percent_meet_one() -> None:
    kw = {"service_time_s": 2.0, "servers": 2, "arrival_rate_per_s": 0.01, "service_rate_per_s": 1.0}
    assert latency_quantile(**kw) == pytest.approx(2.0)
    assert latency_quantile(**kw, cold_fraction=0.04, cold_start_s=300) == pytest.approx(2.0)
    assert latency_quantile(**kw, cold_fraction=0.06, cold_start_s=300) == pytest.approx(302.0)


def test_replicas_follow_the_peak_over_throughput_times_utilization() -> None:
    # 2,000 requests/hour flat on T4s at 1,800/hour x 0.7 -> ceil(2000 / 1260) = 2 replicas
    ev = evaluate(make_traffic("flat", 2000, 48), scenario())
    t4 = ev.option("T4 always-on")
    assert t4.replicas == 2
    assert t4.utilization == pytest.approx(2000 / (2 * 1800), rel=1e-3)
    assert t4.monthly_cost_usd == Decimal("876.00")  # 2 x $0.60 x 730 h
