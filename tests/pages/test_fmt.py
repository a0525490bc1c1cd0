"""The formatting vocabulary every page uses: money as money, tiny prices readable, no None/nan, colours stable."""

from decimal import Decimal

import pytest

from pages.charts.colors import PROVIDER_COLORS, model_color, series_colors
from pages.fmt import count, credits, money, pct, price


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2145.6, "$2,145.60"),
        (Decimal("-3.1"), "-$3.10"),
        (0, "$0.00"),
        (Decimal("0.001"), "<$0.01"),
        (None, "—"),
        (float("nan"), "—"),
        ("abc", "—"),
        (2500000.0049975, "$2,500,000.00"),
    ],
)
def test_money(value, text):
    assert money(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.00046"), "$0.00046"),
        (Decimal("0.000028"), "$0.000028"),
        (Decimal("0.15"), "$0.15"),
        (Decimal("2.5"), "$2.50"),
        (Decimal("1234.5"), "$1,234.50"),
        (0, "$0"),
        (1e-9, "$0.000000001"),
        (float("inf"), "—"),
    ],
)
def test_price_has_enough_significant_digits_and_no_exponent(value, text):
    assert price(value) == text


def test_counts_credits_and_percentages():
    assert count(12345.0) == "12,345"
    assert credits(1) == "1 credit"
    assert credits(1, signed=True) == "+1 credit" and credits(-1, signed=True) == "-1 credit"
    assert credits(-2005) == "-2,005 credits"
    assert pct(825.25) == "825.2%" or pct(825.25) == "825.3%"
    assert count(None) == credits(None) == pct(None) == "—"


def test_colours_are_stable_per_provider_and_family():
    assert series_colors(["openai", "anthropic"]) == {k: PROVIDER_COLORS[k] for k in ("openai", "anthropic")}
    assert model_color("gpt-4o-mini") != model_color("gpt-4o")
    assert model_color("meta-llama/Llama-3.1-8B-Instruct") == model_color("meta-llama/Llama-3.3-70B-Instruct")
    assert model_color("Qwen/Qwen2.5-7B-Instruct") == model_color("qwen/qwen3-8b")
    assert model_color("some-new-model") == model_color("some-new-model")
