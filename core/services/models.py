"""Models & pricing: the catalog with its prices, sources and dates, the price history, a quote from usage to credits,
and price edits (admins only; new usage only, audited)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.access import Caller, Capability, guarded
from core.billing.quote import Quote, quote
from core.catalog.edit import PriceChange, price_history, update_prices
from core.catalog.lookup import get_model, list_hardware, list_models
from core.catalog.types import PRICE_FIELDS, HardwarePrice, ModelPrice
from core.db.models import CATEGORIES
from core.errors import InvalidInputError
from core.usage import Usage

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["CATEGORIES", "PRICE_FIELDS", "HardwarePrice", "ModelPrice", "ModelService", "PriceChange", "Quote", "Usage"]


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
        return quote(model, usage, markup_pct, self._s.settings.credit_usd)

    @guarded(Capability.EDIT_PRICES)
    def update_prices(
        self, caller: Caller, model_pk: int, changes: dict[str, Any], note: str | None = None
    ) -> PriceChange:
        """New prices for one model (new usage only; logged calls keep what they were billed), audited."""
        with self._s.db.write_session() as s:
            return update_prices(s, model_pk, changes, caller.actor, note)
