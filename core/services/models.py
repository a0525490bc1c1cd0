"""Models & pricing: the catalog with its prices, sources and dates, the price history, a quote from usage to credits,
and price edits (admins only; new usage only, audited)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.access import Caller, Capability, Principal, guarded
from core.billing.quote import Quote, quote
from core.catalog.edit import PriceChange, price_history, update_prices
from core.catalog.lookup import get_model, list_hardware, list_models
from core.catalog.types import PRICE_FIELDS, HardwarePrice, ModelPrice
from core.db.models import CATEGORIES
from core.errors import CoreError, InvalidInputError
from core.usage import Usage
from core.users import checked_markup, get_user

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "CATEGORIES",
    "PRICE_FIELDS",
    "TYPICAL_CALL",
    "HardwarePrice",
    "ModelPrice",
    "ModelService",
    "PriceChange",
    "Quote",
    "TypicalCost",
    "Usage",
    "pricing_page",
    "public_source",
    "typical_usage",
]

# What "a typical call" means wherever the product quotes one (Models & pricing's credits column), by how a model is
# billed: a chat turn of 1,000 input and 500 output tokens; a minute of audio; about a minute of speech (1,000
# characters); one request; one image at the model's default size and quality.
TYPICAL_CALL: dict[str, tuple[Usage, str]] = {
    "token": (Usage(input_tokens=1_000, output_tokens=500), "1,000 input + 500 output tokens"),
    "second": (Usage(seconds=Decimal(60)), "1 minute of audio"),
    "character": (Usage(characters=1_000), "1,000 characters (about a minute of speech)"),
    "request": (Usage(requests=1), "1 request"),
    "image": (Usage(images=1), "1 image at the default size"),
}

# Each provider's own pricing page: where a price can be checked (the catalog's notes may cite internal files).
PRICING_PAGES = {
    "openai": "https://openai.com/api/pricing/",
    "anthropic": "https://platform.claude.com/docs/en/about-claude/pricing",
    "together_ai": "https://www.together.ai/pricing",
    "minimax": "https://platform.minimax.io/docs/guides/pricing-paygo",
    "huggingface": "https://huggingface.co/docs/inference-providers/pricing",
    "huggingface_endpoint": "https://huggingface.co/docs/inference-endpoints/pricing",
}
_FILE_PATH = re.compile(r"(?:\s*\()?\b(?:[\w.-]+/)+[\w.-]+\.(?:md|ya?ml|json|csv|py|txt)\b\)?")


def pricing_page(model: ModelPrice) -> str | None:
    """The provider's pricing page for `model` (a sandbox twin: its real model's provider's)."""
    provider = model.mirrors.split("/", 1)[0] if model.mirrors else model.provider
    return PRICING_PAGES.get(provider)


def public_source(text: str) -> str:
    """A price source as people outside the team should read it: file paths of the repository taken out."""
    cleaned = _FILE_PATH.sub(lambda m: "" if m.group(0).lstrip().startswith("(") else "our reference list", text)
    return re.sub(r"\s{2,}", " ", cleaned).strip(" ;,") or "the provider's pricing page"


def typical_usage(model: ModelPrice) -> tuple[Usage, str] | None:
    """The usage of a typical call of `model` and its words; None for a model billed by uptime."""
    typical = TYPICAL_CALL.get(model.cost_unit)
    if typical is None or model.cost_unit != "image":
        return typical
    size = model.price_variants.get("default_size")
    quality = model.price_variants.get("default_quality")
    return Usage(images=1, image_size=size, image_quality=quality), typical[1]


@dataclass(frozen=True, kw_only=True)
class TypicalCost:
    """What a typical call of one model costs the viewer: its usage in words and the full quote."""

    usage: str
    quote: Quote


class ModelService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(None)
    def list(
        self,
        caller: Caller,
        *,
        category: str | None = None,
        provider: str | None = None,
        include_inactive: bool = False,
    ) -> list[ModelPrice]:
        with self._s.db.session() as s:
            models = list_models(s, category=category, provider=provider, include_inactive=include_inactive)
            if provider and not models:
                known = sorted({m.provider for m in list_models(s, include_inactive=True)})
                if provider not in known:
                    raise InvalidInputError(f"Unknown provider {provider!r}; the catalog has: {', '.join(known)}.")
            return models

    @guarded(None)
    def get(self, caller: Caller, model_id: str, provider: str | None = None) -> ModelPrice:
        with self._s.db.session() as s:
            return get_model(s, model_id, provider)

    @guarded(None)
    def hardware(self, caller: Caller) -> list[HardwarePrice]:
        with self._s.db.session() as s:
            return list_hardware(s)

    @guarded(None)
    def price_history(self, caller: Caller, model_pk: int | None = None) -> list[PriceChange]:
        """Price changes, newest first (one model's, or all)."""
        with self._s.db.session() as s:
            return price_history(s, model_pk)

    @guarded(None)
    def quote(self, caller: Caller, model: ModelPrice, usage: Usage, markup_pct: Decimal | str | int) -> Quote:
        """What `usage` of `model` costs in credits at `markup_pct`, step by step (provider cost, base credits, the
        rounding uplift, the markup)."""
        return quote(model, usage, checked_markup(markup_pct), self._s.settings.credit_usd)

    @guarded(Capability.EDIT_PRICES)
    def review_prices(
        self, caller: Caller, model_pk: int, changes: dict[str, Any], note: str | None = None
    ) -> PriceChange:
        """What `update_prices` would save, checked exactly as it checks (a bad price, nothing changed, a unit left
        without a price), without saving anything: the Review step before a Confirm. `PriceChange.made_free` names
        the prices it sets to 0 (calls billed by them become free)."""
        with self._s.db.session_factory() as s:
            try:
                return update_prices(s, model_pk, changes, caller.actor, note)
            finally:
                s.rollback()

    @guarded(Capability.EDIT_PRICES)
    def update_prices(
        self, caller: Caller, model_pk: int, changes: dict[str, Any], note: str | None = None
    ) -> PriceChange:
        """New prices for one model (new usage only; logged calls keep what they were billed), audited."""
        with self._s.db.write_session() as s:
            return update_prices(s, model_pk, changes, caller.actor, note)

    @guarded(None)
    def typical_costs(self, caller: Caller, models: list[ModelPrice]) -> dict[str, TypicalCost]:
        """By model key, what a typical call (TYPICAL_CALL) costs at the caller's own markup (the system: the default
        markup). Models billed by uptime, or without a price for their unit, are left out."""
        markup = self._s.settings.default_markup_pct
        if isinstance(caller, Principal):
            with self._s.db.session() as s:
                markup = get_user(s, caller.user_id).developer_markup_pct
        out: dict[str, TypicalCost] = {}
        for model in models:
            typical = typical_usage(model)
            if typical is None:
                continue
            try:
                q = quote(model, typical[0], markup, self._s.settings.credit_usd)
            except CoreError:  # no price for its unit: the catalog says so elsewhere
                continue
            out[model.key] = TypicalCost(usage=typical[1], quote=q)
        return out
