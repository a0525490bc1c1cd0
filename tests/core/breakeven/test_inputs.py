"""Invalid inputs give typed errors whose message says what to change."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from core.breakeven import (
    EmptyHistoryError,
    Gpu,
    InvalidRateError,
    SloBelowServiceTimeError,
    from_counts,
    make_traffic,
)
from core.breakeven.serverless import per_request, per_second
from core.errors import InvalidInputError
from tests.core.breakeven.helpers import scenario


@pytest.mark.parametrize("rate", [-5, 0, math.nan, math.inf, "lots"])
@pytest.mark.parametrize("profile", ["flat", "poisson", "diurnal", "bursty"])
def test_negative_zero_nan_or_non_numeric_rates_are_refused(rate: object, profile: str) -> None:
    with pytest.raises(InvalidRateError, match="Requests per hour"):
        make_traffic(profile, rate, 24)  # type: ignore[arg-type]


@pytest.mark.parametrize("hours", [0, -1, math.nan, 0.5, 10_000])
def test_a_horizon_outside_one_hour_to_one_year_is_refused(hours: float) -> None:
    with pytest.raises(InvalidRateError, match="horizon"):
        make_traffic("flat", 10, hours)


@pytest.mark.parametrize(
    ("hours", "rate", "said"),
    [
        (1_000_000, 10, "limited to one year (8,784 hours), got 1,000,000 hours."),  # it said "got 1e+06"
        (24, -2_500_000, "must be greater than zero, got -2,500,000."),
        (24, -0.25, "must be greater than zero, got -0.25."),
    ],
)
def test_a_refused_figure_is_written_as_typed_not_in_scientific_notation(hours: float, rate: float, said: str) -> None:
    with pytest.raises(InvalidRateError) as caught:
        make_traffic("flat", rate, hours)
    assert said in str(caught.value) and "e+" not in str(caught.value)


def test_unknown_profile() -> None:
    with pytest.raises(InvalidRateError, match="choose one of: flat, diurnal"):
        make_traffic("sinusoidal", 10, 24)
    with pytest.raises(InvalidRateError, match="needs a model"):
        make_traffic("history", 10, 24)


def test_a_target_below_the_service_time_is_refused() -> None:
    with pytest.raises(SloBelowServiceTimeError, match=r"target of 2 s is below the service time of 3 s"):
        scenario(p95_slo_s=2.0, service_time_s=3.0)
    assert issubclass(SloBelowServiceTimeError, InvalidInputError)  # the CLI prints it as one line, exit 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("service_time_s", 0, "service time"),
        ("service_time_s", math.nan, "service time"),
        ("p95_slo_s", -1, "p95 latency target"),
        ("idle_timeout_minutes", 0, "idle timeout"),
        ("idle_timeout_minutes", 2.5, "whole number"),
        ("cold_start_s", -1, "cold-start time"),
        ("cold_start_s", math.inf, "cold-start time"),
        ("target_utilization", 0, "target utilization"),
        ("target_utilization", 1.5, "fraction"),
        ("min_replicas", 0, "minimum replicas"),
        ("max_replicas", 0, "maximum replicas"),
        ("model_memory_gb", -3, "memory"),
    ],
)
def test_scenario_fields_are_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidRateError, match=message):
        scenario(**{field: value})


def test_maximum_replicas_below_minimum() -> None:
    with pytest.raises(InvalidRateError, match=r"maximum replicas \(1\) cannot be below the minimum \(2\)"):
        scenario(min_replicas=2, max_replicas=1)


@pytest.mark.parametrize("price", ["0", "-0.01", "NaN", "Infinity"])
def test_serverless_price_must_be_positive_and_finite(price: str) -> None:
    with pytest.raises(InvalidRateError, match="serverless price per request"):
        per_request(Decimal(price))


def test_per_second_price_needs_positive_seconds() -> None:
    assert per_second(Decimal("0.0001"), 12).per_request_usd == Decimal("0.0012")
    with pytest.raises(InvalidRateError, match="Compute seconds"):
        per_second(Decimal("0.0001"), 0)


@pytest.mark.parametrize(("throughput", "hourly"), [(0, "1"), (-10, "1"), (math.nan, "1"), (100, "0"), (100, "-1")])
def test_gpu_inputs_are_validated(throughput: float, hourly: str) -> None:
    with pytest.raises(InvalidRateError):
        Gpu(id="T4", hourly_usd=Decimal(hourly), memory_gb=16, throughput_per_hour=throughput)


def test_duplicate_gpus_and_nothing_to_compare() -> None:
    g = Gpu(id="T4", hourly_usd=Decimal("0.6"), memory_gb=16, throughput_per_hour=100)
    with pytest.raises(InvalidRateError, match="once"):
        scenario(gpus=(g, g))
    with pytest.raises(InvalidRateError, match="Nothing to compare"):
        scenario(serverless=None, gpus=())


def test_empty_or_silent_history_is_refused() -> None:
    with pytest.raises(EmptyHistoryError, match="empty"):
        from_counts(np.array([], dtype=np.int64))
    with pytest.raises(EmptyHistoryError, match="no requests"):
        from_counts(np.zeros(120, dtype=np.int64))
    with pytest.raises(InvalidRateError, match="non-negative"):
        from_counts(np.array([1, -1, 2]))
    with pytest.raises(InvalidRateError, match="non-negative"):
        from_counts(np.array([1.0, math.nan]))
