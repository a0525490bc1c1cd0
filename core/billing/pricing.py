"""Price a call's usage in USD (Decimal) from the catalog. A missing price raises; it is never a silent $0."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.billing.errors import UnpricedModelError
from core.catalog.types import ModelPrice
from core.money import quantize_usd
from core.usage import Usage

MILLION = Decimal(1_000_000)
SIXTY = Decimal(60)


def _need(value: Any, model: ModelPrice, what: str) -> Decimal:
    if value is None or value == "":
        raise UnpricedModelError(
            f"{model.key} has no {what} price in the catalog; an admin must set it on the Models & pricing page "
            "before it can be used."
        )
    return Decimal(str(value))


def _token_cost(model: ModelPrice, usage: Usage) -> Decimal:
    rates: dict[str, Any] = {
        "input": model.input_per_1m_usd,
        "output": model.output_per_1m_usd,
        "cached": model.cached_input_per_1m_usd,
        "cache_write": model.price_variants.get("cache_write_per_1m_usd"),
        "cache_write_1h": model.price_variants.get("cache_write_1h_per_1m_usd"),
    }
    long_ctx = model.price_variants.get("long_context")
    if long_ctx and usage.input_tokens > int(long_ctx["threshold_tokens"]):
        # Above the threshold the higher rate applies to the whole request, output included.
        rates = {
            "input": long_ctx.get("input_per_1m_usd"),
            "output": long_ctx.get("output_per_1m_usd"),
            "cached": long_ctx.get("cached_input_per_1m_usd"),
            "cache_write": long_ctx.get("cache_write_per_1m_usd"),
            "cache_write_1h": long_ctx.get("cache_write_1h_per_1m_usd"),
        }
    input_rate = _need(rates["input"], model, "input-token")
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
    cost = Decimal(uncached) * input_rate
    if usage.output_tokens:
        cost += Decimal(usage.output_tokens) * _need(rates["output"], model, "output-token")
    if usage.cached_tokens:
        # Providers without a separate cached rate bill cached tokens as ordinary input.
        cached_rate = rates["cached"] if rates["cached"] is not None else input_rate
        cost += Decimal(usage.cached_tokens) * Decimal(str(cached_rate))
    # Cache writes kept 5 minutes and kept 1 hour have their own rates; neither is ever priced at the other's.
    five_minute_writes = usage.cache_write_tokens - usage.cache_write_1h_tokens
    if five_minute_writes:
        cost += Decimal(five_minute_writes) * _need(rates["cache_write"], model, "5-minute cache-write")
    if usage.cache_write_1h_tokens:
        cost += Decimal(usage.cache_write_1h_tokens) * _need(rates["cache_write_1h"], model, "1-hour cache-write")
    return cost / MILLION


def _image_cost(model: ModelPrice, usage: Usage) -> Decimal:
    variants: dict[str, Any] = model.price_variants.get("images") or {}
    if variants:
        size = usage.image_size or model.price_variants.get("default_size", "1024x1024")
        quality = usage.image_quality or model.price_variants.get("default_quality", "standard")
        for key in (f"{quality}/{size}", size):
            if key in variants:
                return Decimal(usage.images) * Decimal(str(variants[key]))
        raise UnpricedModelError(
            f"{model.key} has no price for {quality} images of {size}; choose one of: {', '.join(sorted(variants))}."
        )
    return Decimal(usage.images) * _need(model.per_image_usd, model, "per-image")


def price_usage(model: ModelPrice | None, usage: Usage) -> Decimal:
    """USD cost of `usage` on `model`, rounded up to whole nano-dollars."""
    if model is None:
        raise UnpricedModelError("Unknown model: it is not in the catalog, so it cannot be priced or used.")
    unit = model.cost_unit
    if unit == "token":
        cost = _token_cost(model, usage)
    elif unit == "second":
        cost = usage.seconds * _need(model.per_second_usd, model, "per-second")
    elif unit == "character":
        cost = Decimal(usage.characters) * _need(model.per_character_usd, model, "per-character")
    elif unit == "request":
        cost = Decimal(usage.requests) * _need(model.per_request_usd, model, "per-request")
    elif unit == "image":
        cost = _image_cost(model, usage)
    elif unit == "uptime":
        # Dedicated endpoints: requests cost nothing incrementally; the endpoint's uptime is metered instead.
        cost = Decimal(0)
    else:
        raise UnpricedModelError(f"{model.key} has an unknown cost unit {unit!r}; fix its catalog entry.")
    return quantize_usd(cost)


def price_uptime(hourly_usd: Decimal, replica_minutes: int | Decimal) -> Decimal:
    """Dedicated uptime, billed per minute per replica at the hourly rate."""
    if hourly_usd is None:
        raise UnpricedModelError("This hardware has no hourly price in the catalog.")
    return quantize_usd(Decimal(hourly_usd) * Decimal(replica_minutes) / SIXTY)
