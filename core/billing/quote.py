"""What a call would cost, step by step: provider USD -> base credits (rounded up) -> markup -> final credits.

The Models & pricing page's calculator shows these figures; they follow exactly the rules `settle` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.billing.pricing import price_usage
from core.catalog.types import ModelPrice
from core.money import CREDIT_USD, apply_markup, credits_to_usd, rounding_uplift_usd, usd_to_credits
from core.usage import Usage


@dataclass(frozen=True, kw_only=True)
class Quote:
    model_key: str
    base_cost_usd: Decimal  # what the provider charges us
    base_credits: int  # ceil(usd / credit price)
    base_credits_usd: Decimal  # base credits x credit price
    rounding_uplift_usd: Decimal  # what rounding up to whole credits earns, before markup
    markup_pct: Decimal
    markup_credits: int  # final - base
    final_credits: int  # what the user is charged
    final_usd: Decimal  # final credits x credit price
    margin_usd: Decimal  # final USD - provider cost = rounding uplift + markup
    billed_by_uptime: bool  # dedicated endpoints: requests cost nothing, uptime is metered instead


def quote(model: ModelPrice, usage: Usage, markup_pct: Decimal | str | int, credit_usd: Decimal = CREDIT_USD) -> Quote:
    """The full breakdown for `usage` on `model` at `markup_pct` (raises UnpricedModelError like a real call)."""
    usd = price_usage(model, usage)
    base = usd_to_credits(usd, credit_usd)
    final = apply_markup(base, markup_pct)
    final_usd = credits_to_usd(final, credit_usd)
    return Quote(
        model_key=model.key,
        base_cost_usd=usd,
        base_credits=base,
        base_credits_usd=credits_to_usd(base, credit_usd),
        rounding_uplift_usd=rounding_uplift_usd(usd, base, credit_usd),
        markup_pct=Decimal(markup_pct),
        markup_credits=final - base,
        final_credits=final,
        final_usd=final_usd,
        margin_usd=final_usd - usd,
        billed_by_uptime=model.cost_unit == "uptime",
    )
