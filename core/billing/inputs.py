"""Checks on what callers hand the billing service: each bad value raises a typed error with a sentence to act on,
before anything is written."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from core.billing.errors import InvalidAmountError
from core.db.limits import check_text, column_length
from core.db.models import CreditTransaction
from core.errors import InvalidInputError
from core.money import MAX_MARKUP_PCT

MAX_KEY_LENGTH = column_length(CreditTransaction.idempotency_key) or 200
MAX_CREDITS = 10**15  # far beyond any real balance; stops a typo from posting an absurd amount
# what the usage log's cost columns hold (Numeric(18, 9)): a cost past it would fail in the database with its own error
# (and, marked up, could pass 64-bit credits); refused here with a sentence instead
MAX_USD = Decimal("999999999.999999999")


def credits(value: Any, what: str = "Credits", *, allow_zero: bool = False, allow_negative: bool = False) -> int:
    """A whole number of credits."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            value = int(value)
        else:
            raise InvalidAmountError(f"{what} must be a whole number of credits, got {value!r}.")
    if value == 0 and not allow_zero:
        raise InvalidAmountError(f"{what} must not be zero: there is nothing to post.")
    if value < 0 and not allow_negative:
        raise InvalidAmountError(f"{what} must be positive, got {value}.")
    if abs(value) > MAX_CREDITS:
        raise InvalidAmountError(f"{what} of {value:,} is beyond any real balance; check the amount.")
    return value


_SEPARATORS = re.compile(r"[, _]")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:[, _]\d{3})+(?:\.\d*)?$")  # thousands groups: 1,500 / 1 500 / 12_000.5


def separators_misplaced(typed: str) -> bool:
    """Whether a number as a person typed it has a comma, space or _ anywhere but between groups of three digits
    ("1,5" is 1.5 in much of the world, never 15): the one rule for typed credits and the command line's numbers."""
    return bool(_SEPARATORS.search(typed)) and not _GROUPED.match(typed.strip())


def typed_credits(value: Any, what: str = "Credits") -> int:
    """Credits as a person typed them ("1,500", "12.7", "-50", " 0 "): the exact whole number, or a refusal that
    names what was typed. Nothing is rounded or clamped: 12.7 is refused, never posted as 12."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return credits(value, what, allow_zero=True, allow_negative=True)
    return credits(typed_whole(value, what), what, allow_zero=True, allow_negative=True)


def typed_whole(value: Any, what: str, unit: str = "credits", example: str = "100") -> int:
    """A whole number as a person typed it in a form (credits, requests per minute): the exact number, or a refusal
    naming what was typed. Nothing is rounded, clamped or read in part: "12.7", "1e20" and "2.5" are refused (a
    browser's whole-number field took "1e20" for 1), never taken for 12, 1 or 2. The caller checks the range."""
    typed = str(value).strip() if value is not None else ""
    if not typed:
        raise InvalidAmountError(f"{what}: nothing was typed; type a whole number of {unit} such as {example}.")
    if not typed.isascii():  # Decimal also reads other scripts' digits ("１２", "٣٠٠"), which no one checks by eye
        raise InvalidAmountError(f"{what}: {typed!r} is not a number in the digits 0-9; type one such as {example}.")
    if separators_misplaced(typed):
        raise InvalidAmountError(
            f"{what}: {typed!r} is not a number as written: a comma, space or _ only separates thousands (1,500), "
            f"never decimals. Type the {unit} in digits, such as {int(example) * 15}."
        )
    try:
        amount = Decimal(typed.replace(",", "").replace("_", "").replace(" ", ""))
    except InvalidOperation:
        raise InvalidAmountError(
            f"{what}: {typed!r} is not a number; type a whole number of {unit} such as {example}."
        ) from None
    if not amount.is_finite():
        raise InvalidAmountError(f"{what}: {typed!r} is not a number; type a whole number of {unit} such as {example}.")
    if "e" in typed.lower():  # "1e5" is 100,000 to Decimal, and one slip of a finger from "15"
        digits = f" ({int(amount):,})" if amount == amount.to_integral_value() and abs(amount) <= MAX_CREDITS else ""
        raise InvalidAmountError(
            f"{what}: {typed!r} is in scientific notation; type the whole number of {unit} in digits{digits}."
        )
    if amount != amount.to_integral_value():
        low, high = (
            int(amount.to_integral_value(rounding="ROUND_FLOOR")),
            int(amount.to_integral_value(rounding="ROUND_CEILING")),
        )
        whole = " Credits are whole (1 credit is the smallest amount): type" if unit == "credits" else " Type"
        raise InvalidAmountError(
            f"{what}: {typed} is not a whole number.{whole} {low:,} or {high:,}; nothing is rounded for you."
        )
    return int(amount)


def usd(value: Any, what: str = "Cost", *, allow_zero: bool = False) -> Decimal:
    """A finite, non-negative USD amount as a Decimal (floats are refused: they lose cents)."""
    if isinstance(value, float | bool):
        raise InvalidAmountError(f"{what} must be a Decimal (or a string such as '0.003'), not {type(value).__name__}.")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidAmountError(f"{what} {value!r} is not a number.") from None
    if not amount.is_finite():
        raise InvalidAmountError(f"{what} must be a finite number of dollars, got {amount}.")
    if amount < 0:
        raise InvalidAmountError(f"{what} cannot be negative, got ${amount}; post a refund instead.")
    if amount == 0 and not allow_zero:
        raise InvalidAmountError(f"{what} is $0: there is nothing to charge.")
    if amount > MAX_USD:
        raise InvalidAmountError(f"{what} of ${amount:,} is beyond any real cost (at most ${MAX_USD:,}); check it.")
    return amount


def markup(value: Any) -> Decimal:
    """A developer markup in percent, 0 to 1000."""
    if isinstance(value, float | bool):
        raise InvalidAmountError(f"Markup must be a Decimal or a string such as '100', not {type(value).__name__}.")
    try:
        pct = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidAmountError(f"Markup {value!r} is not a number.") from None
    if not pct.is_finite() or pct < 0 or pct > MAX_MARKUP_PCT:
        raise InvalidAmountError(f"Markup must be between 0% and {MAX_MARKUP_PCT}%, got {pct}%.")
    return pct


def idempotency_key(value: Any, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidInputError(
                "An idempotency key is required: use one stable key per operation (e.g. the request id) so a retry "
                "never charges twice."
            )
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"The idempotency key must be a non-empty string, got {value!r}.")
    return check_text(value, "The idempotency key", limit=MAX_KEY_LENGTH)


def text(value: Any, what: str, *, required: bool = True, limit: int = 2000) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInputError(f"{what} is required.")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text, got {type(value).__name__}.")
    checked = check_text(value, what, limit=limit)
    return checked.strip() if checked is not None else None
