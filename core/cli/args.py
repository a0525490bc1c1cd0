"""Argument types that turn a bad value into one clear argparse error, with the limit a value must fit.

Every whole number the command line takes is bounded: by what the schema stores (ids and counts are 32-bit integers on
SQLite and PostgreSQL alike), or tighter where the engine has its own limit (a port, a random seed, the demo's size).
Dates are bounded to the years the engine can reason about, so no date arithmetic overflows further in.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation

from core.services.ledger import separators_misplaced

MAX_INT = 2**31 - 1  # the largest id, count or limit the schema stores (INTEGER on SQLite and PostgreSQL)
MAX_SEED = 2**32 - 1  # numpy's random generators take seeds 0 .. 2**32 - 1
MAX_DECIMAL = Decimal(10) ** 9  # USD is stored as Numeric(18, 9): nine digits before the point
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)


def _ascii(text: str) -> None:
    # int() and Decimal() also read other scripts' digits ("１２", "٣٠٠"): a number here is typed in 0-9
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in the digits 0-9")


def _whole(text: str) -> int:
    _ascii(text)
    if separators_misplaced(text):  # "1,5" is 1.5 in much of the world, never 15
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number as written: a comma or _ only separates thousands (1,500)"
        )
    cleaned = text.strip().replace("_", "").replace(",", "")
    # int() of a 4,300+ digit string raises ValueError itself; anything that long is out of every range anyway
    if len(cleaned) > 40:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}... is far too large (at most {MAX_INT:,})")
    try:
        return int(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def bounded_int(low: int, high: int, name: str | None = None) -> Callable[[str], int]:
    """An argument type accepting whole numbers from `low` to `high`, saying the range when a value is outside it."""

    def parse(text: str) -> int:
        value = _whole(text)
        if value < low:
            if low == 1:
                raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
            if low == 0:
                raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low:,}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is too large: at most {high:,}")
        return value

    parse.__name__ = name or f"int_{low}_{high}"
    return parse


positive_int = bounded_int(1, MAX_INT, "positive_int")
non_negative_int = bounded_int(0, MAX_INT, "non_negative_int")
seed_int = bounded_int(0, MAX_SEED, "seed_int")
port_int = bounded_int(1, 65_535, "port_int")


def decimal_arg(text: str) -> Decimal:
    _ascii(text)
    if "_" in text or "," in text:  # "1_0" is 10 to Decimal; a decimal is typed plain: 12.5, 0.0001, 1e-6
        raise argparse.ArgumentTypeError(f"{text!r} is not a number as written: type it without separators (12.5)")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    if abs(value) >= MAX_DECIMAL:
        raise argparse.ArgumentTypeError(f"{text!r} is too large: at most {MAX_DECIMAL - 1:,}")
    return value


def iso_date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: dates run from {FIRST_DAY} to {LAST_DAY}")
    return day
