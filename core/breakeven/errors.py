"""Typed errors of the break-even simulator. Every message says what to change."""

from __future__ import annotations

import math

from core.errors import InvalidInputError


class BreakevenInputError(InvalidInputError):
    """An input to the simulator is out of range or malformed."""


class InvalidRateError(BreakevenInputError):
    """A traffic rate, price, time or count is negative, zero where it must be positive, NaN or infinite."""


class SloBelowServiceTimeError(BreakevenInputError):
    """The p95 latency target is below the time one request takes: no option could meet it."""


class EmptyHistoryError(BreakevenInputError):
    """The model has no recorded requests in the chosen date range."""


class NoServerlessPriceError(BreakevenInputError):
    """Serverless cannot be priced: the model has no serverless price and none was given."""


def figure(v: float) -> str:
    """A number a person typed, as they would write it back: `1,000,000` and `0.5`, never `1e+06`."""
    if math.isfinite(v) and v == int(v) and abs(v) < 1e18:
        return f"{int(v):,}"
    return f"{v:,.6g}" if abs(v) < 1e16 else f"{v:g}"


def positive(name: str, value: float, hint: str = "") -> float:
    """`value` as a float, refusing NaN, infinities, zero and negatives with a sentence naming the input."""
    v = _finite(name, value, hint)
    if v <= 0:
        raise InvalidRateError(f"{name} must be greater than zero, got {figure(v)}.{_hint(hint)}")
    return v


def non_negative(name: str, value: float, hint: str = "", *, maximum: float | None = None) -> float:
    v = _finite(name, value, hint)
    if v < 0:
        raise InvalidRateError(f"{name} cannot be negative, got {figure(v)}.{_hint(hint)}")
    if maximum is not None and v > maximum:
        raise InvalidRateError(f"{name} must be at most {figure(maximum)}, got {figure(v)}.{_hint(hint)}")
    return v


def finite(name: str, value: float, hint: str = "") -> float:
    """`value` as a float, refusing NaN and infinities with a sentence naming the input (the caller checks range)."""
    return _finite(name, value, hint)


def whole(name: str, value: int, minimum: int, hint: str = "", *, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise InvalidRateError(f"{name} must be a whole number, got {value!r}.{_hint(hint)}") from None
        if not math.isfinite(f) or f != int(f):
            raise InvalidRateError(f"{name} must be a whole number, got {value!r}.{_hint(hint)}")
        value = int(f)
    if value < minimum:
        raise InvalidRateError(f"{name} must be at least {minimum}, got {value}.{_hint(hint)}")
    if maximum is not None and value > maximum:
        raise InvalidRateError(f"{name} must be at most {maximum:,}, got {value:,}.{_hint(hint)}")
    return value


def _finite(name: str, value: float, hint: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidRateError(f"{name} must be a number, got {value!r}.{_hint(hint)}") from None
    if math.isnan(v):
        raise InvalidRateError(f"{name} is not a number (NaN).{_hint(hint)}")
    if math.isinf(v):
        raise InvalidRateError(f"{name} must be finite, got {v}.{_hint(hint)}")
    return v


def _hint(hint: str) -> str:
    return f" {hint}" if hint else ""
