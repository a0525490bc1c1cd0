"""The product's money rules: USD -> whole credits -> markup. Decimal only; credits are integers.

Depends on nothing else in core: every layer (users, billing, analytics, pages through the services) uses these rules.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

CREDIT_USD = Decimal("0.04")
NANO = Decimal("0.000000001")
CENT = Decimal("0.01")
MAX_MARKUP_PCT = Decimal(1000)
# A markup is stored as Numeric(9, 4) (tests/core/test_schema_contract.py holds the two together): a finer one would be
# kept by SQLite and rounded to 0 by PostgreSQL, so it is refused the same way on both.
MARKUP_PLACES = 4


def _as_decimal(value: Decimal | int | str, what: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{what} must be a Decimal, int or str, not float (floats lose cents)")
    try:
        d = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"{what} {value!r} is not a number") from exc
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {d}")
    return d


def usd_to_credits(usd: Decimal | int | str, credit_usd: Decimal = CREDIT_USD) -> int:
    """Base credits: the USD amount rounded up to whole credits; 0 only for 0."""
    amount = _as_decimal(usd, "USD amount")
    if amount < 0:
        raise ValueError(f"USD amount cannot be negative, got {amount}")
    return int((amount / credit_usd).to_integral_value(rounding=ROUND_CEILING))


def validate_markup(markup_pct: Decimal | int | str) -> Decimal:
    markup = _as_decimal(markup_pct, "Markup")
    if markup < 0 or markup > MAX_MARKUP_PCT:
        raise ValueError(f"Markup must be between 0% and {MAX_MARKUP_PCT}%, got {markup:f}%")
    if markup != markup.quantize(Decimal(1).scaleb(-MARKUP_PLACES)):
        raise ValueError(
            f"Markup {markup:f}% has more than {MARKUP_PLACES} decimal places, the precision it is stored with; "
            f"round it (e.g. {markup.quantize(Decimal(1).scaleb(-MARKUP_PLACES)):f}%)"
        )
    return markup if markup else Decimal(0)  # -0 is 0 (it printed "markup -0%")


def apply_markup(base_credits: int, markup_pct: Decimal | int | str) -> int:
    """Final credits: ceil(base x (100 + markup) / 100)."""
    if isinstance(base_credits, bool) or not isinstance(base_credits, int):
        raise TypeError("base_credits must be an int")
    if base_credits < 0:
        raise ValueError(f"Credits cannot be negative, got {base_credits}")
    markup = validate_markup(markup_pct)
    return int((Decimal(base_credits) * (100 + markup) / 100).to_integral_value(rounding=ROUND_CEILING))


def credits_to_usd(credits: int, credit_usd: Decimal = CREDIT_USD) -> Decimal:
    return Decimal(credits) * credit_usd


def quantize_usd(usd: Decimal) -> Decimal:
    """Round a computed cost up to whole nano-dollars (the stored precision): never under-bill."""
    return usd.quantize(NANO, rounding=ROUND_CEILING)


def rounding_uplift_usd(base_cost_usd: Decimal, base_credits: int, credit_usd: Decimal = CREDIT_USD) -> Decimal:
    """What rounding up to whole credits earns, before markup."""
    return credits_to_usd(base_credits, credit_usd) - base_cost_usd


def money_text(usd: Decimal | None) -> str | None:
    """A USD amount as people read money: at least cents, every significant digit, never an exponent; zero is "0".
    ("0.60", not "0.600000000"; "0.005615"; "0", not "0E-9")."""
    if usd is None:
        return None
    if usd == 0:
        return "0"
    text = format(usd.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def credits_text(n: int, *, signed: bool = False) -> str:
    """Credits in a sentence, with the noun agreeing: `1 credit`, `-1 credit`, `0 credits`, `12,345 credits`;
    `signed` puts the sign in front of a positive amount too (`+1 credit`, as a ledger posting reads)."""
    figure = f"{n:+,}" if signed else f"{n:,}"
    return f"{figure} credit" + ("" if abs(n) == 1 else "s")


def shown_cents(usd: Decimal) -> Decimal:
    """An amount as `dollars` shows it: to the cent, half up; a non-zero amount under half a cent (shown `<$0.01`)
    stays as it is. A total that sums the parts as shown agrees with the parts printed beside it, to the cent."""
    rounded = usd.quantize(CENT, rounding=ROUND_HALF_UP)
    return usd if rounded == 0 else rounded


def dollars(usd: Decimal | None) -> str:
    """A total, balance or rate in dollars and cents, the one way every interface shows it: thousands separated
    (`$1,234.50`), the sign in front (`-$3.10`), a non-zero amount under half a cent as `<$0.01` rather than a
    `$0.00` that reads as free; "n/a" when there is no figure. One request's cost or a unit price: `price_text`."""
    if usd is None:
        return "n/a"
    body = "<$0.01" if usd != 0 and abs(usd) < Decimal("0.005") else f"${shown_cents(abs(usd)):,.2f}"
    return f"-{body}" if usd < 0 else body


def price_text(usd: Decimal, digits: int = 2) -> str:
    """A unit price or one request's cost, without the dollar sign (the caller adds it, or its label says "($)"):
    cents with separators from a dollar up (`2,145.60`), below a dollar `digits` significant digits with at least
    cents and no trailing zeros (`0.00046`, `0.000028`, `0.15`), zero as `0`, the sign in front, never an exponent."""
    a = abs(usd)
    if a == 0:
        return "0"
    sign = "-" if usd < 0 else ""
    if a >= 1:
        return f"{sign}{a:,.2f}"
    places = max(2, -a.adjusted() + digits - 1)
    whole, _, frac = f"{a:.{places}f}".partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{frac}"


def hourly_text(usd: Decimal) -> str:
    """An hourly rate (a GPU replica-hour, an endpoint's billing now): cents (`$0.60/h`, `$12.00/h`, `$0.00/h`), and a
    rate finer than a cent keeps its significant digits (`$0.033/h`) rather than rounding to what an hour does not
    cost. The command line and the Endpoints page both print rates with this."""
    text = "0.00" if usd == 0 else price_text(usd)
    return f"${text}/h" if usd >= 0 else f"-${text.removeprefix('-')}/h"


def rate_text(per_hour: float) -> str:
    """A request rate in a sentence: whole from 10 up (1,200), two significant digits below (0.25)."""
    return f"{per_hour:,.0f}" if per_hour >= 10 else f"{per_hour:,.2g}"


def decimal_text(value: Decimal) -> str:
    """An exact decimal without exponent (zero stored at 9 places, 0E-9, prints "0")."""
    return "0" if value == 0 else format(value, "f")
