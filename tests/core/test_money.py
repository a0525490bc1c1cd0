from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    apply_markup,
    credits_text,
    credits_to_usd,
    dollars,
    hourly_text,
    price_text,
    shown_cents,
    usd_to_credits,
)


def test_specification_example() -> None:
    base = usd_to_credits(Decimal("0.003"))
    assert base == 1
    final = apply_markup(base, Decimal(100))
    assert final == 2
    assert credits_to_usd(final) == Decimal("0.08")


@pytest.mark.parametrize(
    ("usd", "credits"),
    [("0", 0), ("0.000000001", 1), ("0.04", 1), ("0.040000001", 2), ("0.08", 2), ("1", 25), ("1.01", 26)],
)
def test_usd_to_credits_rounds_up(usd: str, credits: int) -> None:
    assert usd_to_credits(Decimal(usd)) == credits


@pytest.mark.parametrize("bad", [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_usd_to_credits_refuses_bad_amounts(bad: Decimal) -> None:
    with pytest.raises(ValueError):
        usd_to_credits(bad)


def test_float_is_refused() -> None:
    with pytest.raises(TypeError):
        usd_to_credits(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("markup", [Decimal("-1"), Decimal("1000.01"), Decimal("NaN")])
def test_markup_out_of_range(markup: Decimal) -> None:
    with pytest.raises(ValueError):
        apply_markup(3, markup)


@given(st.decimals(min_value=0, max_value=10_000, places=9, allow_nan=False, allow_infinity=False))
def test_credits_cover_the_cost(usd: Decimal) -> None:
    credits = usd_to_credits(usd)
    assert credits_to_usd(credits) >= usd
    assert credits == 0 or credits_to_usd(credits - 1) < usd


@given(st.integers(min_value=0, max_value=10**9), st.decimals(min_value=0, max_value=1000, places=2))
def test_markup_never_undercharges(base: int, markup: Decimal) -> None:
    final = apply_markup(base, markup)
    exact = Decimal(base) * (100 + markup) / 100
    assert exact <= final < exact + 1


@pytest.mark.parametrize(
    ("usd", "digits", "text"),
    [
        ("0.00046", 2, "0.00046"),
        ("0.000028", 2, "0.000028"),
        ("0.000460", 3, "0.00046"),  # trailing zeros dropped, at least cents kept
        ("0.1", 2, "0.10"),
        ("0.15", 2, "0.15"),
        ("0.0012345", 3, "0.00123"),
        ("0.000000001", 2, "0.000000001"),  # 1E-9: never an exponent
        ("2.5", 2, "2.50"),
        ("1234.5", 3, "1,234.50"),  # from a dollar up: cents with separators, whatever the digits
        ("-0.0012", 2, "-0.0012"),
        ("0E-9", 2, "0"),
    ],
)
def test_price_text_has_enough_significant_digits_and_no_exponent(usd: str, digits: int, text: str) -> None:
    assert price_text(Decimal(usd), digits) == text


@pytest.mark.parametrize(
    ("n", "signed", "text"),
    [
        (1, False, "1 credit"),
        (-1, False, "-1 credit"),
        (1, True, "+1 credit"),
        (-1, True, "-1 credit"),
        (0, False, "0 credits"),
        (2, True, "+2 credits"),
        (12_345, False, "12,345 credits"),
    ],
)
def test_credits_text_agrees_with_its_figure(n: int, signed: bool, text: str) -> None:
    assert credits_text(n, signed=signed) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("-3.1"), "-$3.10"),
        (Decimal("0.001"), "<$0.01"),
        (Decimal(0), "$0.00"),
        (Decimal("0.0049"), "<$0.01"),
        (None, "n/a"),
    ],
)
def test_dollars_shows_cents_and_never_a_free_looking_zero(usd: Decimal | None, text: str) -> None:
    assert dollars(usd) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [("0.60", "$0.60/h"), ("4", "$4.00/h"), ("0", "$0.00/h"), ("0.033", "$0.033/h"), ("1234.5", "$1,234.50/h")],
)
def test_hourly_text_keeps_cents_and_sub_cent_digits(usd: str, text: str) -> None:
    assert hourly_text(Decimal(usd)) == text


def test_dollars_rounds_half_a_cent_up_as_shown_cents_does() -> None:
    """A part of exactly half a cent is not free ("$0.00" under half-even) and rounds as totals of parts do."""
    assert dollars(Decimal("0.005")) == "$0.01" and dollars(Decimal("0.125")) == "$0.13"
    assert shown_cents(Decimal("0.125")) == Decimal("0.13") and shown_cents(Decimal("0.004")) == Decimal("0.004")
