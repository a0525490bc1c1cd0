"""Frozen views of catalog rows: what pricing and the providers need, detached from the database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

PRICE_FIELDS = (
    "input_per_1m_usd",
    "output_per_1m_usd",
    "cached_input_per_1m_usd",
    "per_second_usd",
    "per_character_usd",
    "per_request_usd",
    "per_image_usd",
)
COST_UNITS = ("token", "second", "character", "request", "image", "uptime")


@dataclass(frozen=True, kw_only=True)
class ModelPrice:
    id: int | None
    provider: str
    model_id: str
    model_name: str
    category: str
    deployment_type: str
    cost_unit: str
    input_per_1m_usd: Decimal | None = None
    output_per_1m_usd: Decimal | None = None
    cached_input_per_1m_usd: Decimal | None = None
    per_second_usd: Decimal | None = None
    per_character_usd: Decimal | None = None
    per_request_usd: Decimal | None = None
    per_image_usd: Decimal | None = None
    price_variants: dict[str, Any] = field(default_factory=dict)
    mirrors: str | None = None
    memory_gb: Decimal | None = None
    serverless_cold_start_s: Decimal | None = None  # how long a cold start takes on shared serverless infrastructure
    serverless_cold_start_share: Decimal | None = None  # the share of requests that meet one (0-1)
    hardware_type: str | None = None  # the catalog's hardware id (T4) a dedicated model is set up on
    hardware_instance_type: str | None = None  # its Hugging Face name (nvidia-t4); filled by `list_models`
    hf_endpoint_url: str | None = None
    status: str = "active"
    price_source: str = ""
    price_as_of: str = ""

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model_id}"

    @property
    def hardware_label(self) -> str:
        """The hardware with both of its names, "T4 (nvidia-t4)"; empty for a model with none."""
        if not self.hardware_type:
            return ""
        return (
            f"{self.hardware_type} ({self.hardware_instance_type})"
            if self.hardware_instance_type
            else self.hardware_type
        )

    def price_label(self) -> str:
        """A short human description of the price, e.g. "$2.50 in / $10.00 out per 1M tokens"."""
        if self.cost_unit == "token" and self.input_per_1m_usd is not None:
            out = self.output_per_1m_usd or Decimal(0)
            return f"{_usd(self.input_per_1m_usd)} in / {_usd(out)} out per 1M tokens"
        if self.cost_unit == "second" and self.per_second_usd is not None:
            return f"{_usd(self.per_second_usd)} per second"
        if self.cost_unit == "character" and self.per_character_usd is not None:
            return f"{_usd(self.per_character_usd * 1_000_000)} per 1M characters"
        if self.cost_unit == "request" and self.per_request_usd is not None:
            return f"{_usd(self.per_request_usd)} per request"
        if self.cost_unit == "image":
            images = self.price_variants.get("images") or {}
            if images:
                lo, hi = min(Decimal(v) for v in images.values()), max(Decimal(v) for v in images.values())
                return f"{_usd(lo)}-{_usd(hi)} per image"
            if self.per_image_usd is not None:
                return f"{_usd(self.per_image_usd)} per image"
        if self.cost_unit == "uptime":
            return "billed by endpoint uptime"
        return "no price"


def _usd(amount: Decimal) -> str:
    """A unit price as written on price lists: at least cents ($2.50, $10.00), every further digit it has ($0.075)."""
    exact = Decimal(amount).normalize()
    return f"${amount:,.2f}" if exact == exact.quantize(Decimal("0.01")) else f"${exact:,f}"


@dataclass(frozen=True, kw_only=True)
class HardwarePrice:
    id: str
    instance_type: str
    gpu_memory_gb: int
    hourly_usd: Decimal
    list_hourly_usd: Decimal | None = None
    price_source: str = ""
    price_as_of: str = ""
