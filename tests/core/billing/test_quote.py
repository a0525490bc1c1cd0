"""The calculator's breakdown follows the money rules exactly."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.billing.quote import quote
from core.catalog import ModelPrice
from core.money import apply_markup, usd_to_credits
from core.usage import Usage

CHAT = ModelPrice(
    id=1,
    provider="openai",
    model_id="m",
    model_name="m",
    category="chat",
    deployment_type="api_proxy",
    cost_unit="request",
    per_request_usd=Decimal("0.003"),
)


def test_specification_example() -> None:
    q = quote(CHAT, Usage(requests=1), Decimal(100))
    assert (q.base_cost_usd, q.base_credits, q.final_credits, q.final_usd) == (
        Decimal("0.003"),
        1,
        2,
        Decimal("0.08"),
    )
    assert q.rounding_uplift_usd == Decimal("0.037") and q.markup_credits == 1
    assert q.margin_usd == Decimal("0.077") and not q.billed_by_uptime


@given(st.integers(min_value=1, max_value=10_000), st.decimals(min_value=0, max_value=1000, places=2))
def test_quote_matches_the_rules(requests: int, markup: Decimal) -> None:
    q = quote(CHAT, Usage(requests=requests), markup)
    assert q.base_credits == usd_to_credits(q.base_cost_usd)
    assert q.final_credits == apply_markup(q.base_credits, markup)
    assert q.margin_usd == q.rounding_uplift_usd + q.markup_credits * Decimal("0.04")
    assert q.rounding_uplift_usd >= 0
