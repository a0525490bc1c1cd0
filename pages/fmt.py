"""One formatting vocabulary for every page: money, prices, credits, counts and percentages as text, and the column
kinds tables use (`pages/tables.py` turns them into Streamlit column configs and CSV headers). Pure Python, so the
rules are unit-tested without a browser.

- money: totals and balances, always cents with separators: `$2,145.60`, `-$3.10`.
- price: unit prices and per-call costs, with enough significant digits to tell `$0.00046` from `$0.000028`.
- credits / count: whole numbers with separators: `12,345 credits`, `1,204`.
- pct: one decimal: `37.5%`.
Missing values print as an em dash, never `None` or `nan`.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from core.services import credits_text, dollars, price_text

MISSING = "—"


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _signed(d: Decimal, body: str) -> str:
    return f"-{body}" if d < 0 else body


def money(usd: object) -> str:
    """A total or balance in dollars and cents: `$2,145.60`; a non-zero amount under half a cent says so
    (`<$0.01`) rather than showing `$0.00` (the rule: `core.services.dollars`, which the command line uses too)."""
    d = _decimal(usd)
    return MISSING if d is None else dollars(d)


def price(usd: object, digits: int = 2) -> str:
    """A unit price or one call's cost: cents for amounts of a dollar or more, otherwise `digits` significant
    digits (`$0.00046`, `$0.000028`, `$0.15`), never scientific notation (the rule: `core.services.price_text`)."""
    d = _decimal(usd)
    if d is None:
        return MISSING
    return _signed(d, f"${price_text(abs(d), digits)}")


def count(n: object) -> str:
    """A whole count with thousands separators: `1,204`."""
    d = _decimal(n)
    return MISSING if d is None else f"{int(d):,}"


def credits(n: object, *, signed: bool = False) -> str:
    """Credits (whole numbers): `12,345 credits`, `1 credit`; `signed`: `+1 credit` (`core.services.credits_text`)."""
    d = _decimal(n)
    return MISSING if d is None else credits_text(int(d), signed=signed)


def pct(value: object, places: int = 1) -> str:
    """A percentage given in percent units: `pct(37.5)` is `37.5%`."""
    d = _decimal(value)
    return MISSING if d is None else f"{d:,.{places}f}%"


# Column kinds for tables: how a column of that kind is drawn (a printf format or a Streamlit preset).
COLUMN_FORMATS: dict[str, str] = {
    "money": "dollar",  # $1,234.57
    "price": "$%.6f",  # per-call and unit prices: six places tell $0.000460 from $0.000028
    "credits": "localized",  # 12,345
    "count": "localized",
    "pct": "%.2f%%",  # as the engine computes them (to two places) and the command line prints them
    "seconds": "%.2f s",
    "ms": "%.0f ms",
    "hours": "%.1f h",
    "ratio": "%.1f",  # 3.0 beside 20.9, not "3"
}
