"""The serverless price as a price per request: given directly, per second of compute, or from a catalog model's
price at a typical request size (priced by the same `price_usage` that bills real calls)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.billing.errors import UnpricedModelError
from core.billing.pricing import price_usage
from core.breakeven.defaults import RequestSize
from core.breakeven.errors import InvalidRateError, NoServerlessPriceError
from core.catalog.types import ModelPrice
from core.usage import Usage


@dataclass(frozen=True, kw_only=True)
class ServerlessPrice:
    per_request_usd: Decimal
    basis: str  # how the price per request was found, in words

    def __post_init__(self) -> None:
        _check_price(self.per_request_usd, "The serverless price per request")


def _check_price(value: Decimal, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if not value.is_finite():
        raise InvalidRateError(f"{what} must be a finite number, got {value}.")
    if value <= 0:
        raise InvalidRateError(
            f"{what} must be greater than zero, got {value}: enter what serverless costs you, e.g. 0.01 per request."
        )
    return value


def per_request(usd: Decimal) -> ServerlessPrice:
    usd = _check_price(usd, "The serverless price per request")
    return ServerlessPrice(per_request_usd=usd, basis=f"${usd.normalize():f} per request")


def per_second(usd_per_second: Decimal, seconds_per_request: float) -> ServerlessPrice:
    rate = _check_price(usd_per_second, "The serverless price per second of compute")
    seconds = Decimal(str(seconds_per_request))
    if not seconds.is_finite() or seconds <= 0:
        raise InvalidRateError(f"Compute seconds per request must be greater than zero, got {seconds_per_request}.")
    if seconds > 86_400:  # a day of compute per request is no serverless call (and 1e30 overflowed the cents)
        raise InvalidRateError(
            f"Compute seconds per request must be at most 86,400 (a day), got {seconds_per_request}."
        )
    return ServerlessPrice(
        per_request_usd=rate * seconds,
        basis=f"${rate.normalize():f} per second x {seconds.normalize():f} s of compute per request",
    )


def from_catalog(model: ModelPrice, size: RequestSize) -> ServerlessPrice:
    """`model`'s catalog price for one typical request of `size`."""
    unit = model.cost_unit
    if unit == "uptime":
        raise NoServerlessPriceError(
            f"{model.key} is a dedicated endpoint billed by uptime and has no serverless price; enter one "
            "(--serverless-cost-per-request) or choose the model's serverless entry."
        )
    usage, described = {
        "token": (
            Usage(input_tokens=size.input_tokens, output_tokens=size.output_tokens),
            f"{size.input_tokens:,} input + {size.output_tokens:,} output tokens",
        ),
        "character": (Usage(characters=size.characters), f"{size.characters:,} characters"),
        "second": (Usage(seconds=Decimal(str(size.seconds))), f"{size.seconds:g} s of audio"),
        "request": (Usage(), "one request"),
        "image": (Usage(images=size.images), f"{size.images} image(s) at the default size"),
    }.get(unit, (None, ""))
    if usage is None:
        raise NoServerlessPriceError(f"{model.key} has cost unit {unit!r}, which cannot be priced per request.")
    try:
        usd = price_usage(model, usage)
    except UnpricedModelError as exc:
        raise NoServerlessPriceError(f"{exc} Or enter a serverless price per request.") from exc
    if usd <= 0:
        raise NoServerlessPriceError(
            f"{model.key} prices a typical request at $0; enter a serverless price per request."
        )
    return ServerlessPrice(
        per_request_usd=usd, basis=f"{model.key} catalog price ({model.price_label()}) for {described}"
    )
