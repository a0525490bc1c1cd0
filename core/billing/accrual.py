"""Accrual rounding: an account keeps the fraction of a credit it has paid for but not yet used, and debits whole
credits only as its calls' exact cost runs past it (the `ROUNDING_POLICY=accrual` setting).

The per-call rule (the specification's) rounds every call up twice: $0.003 is 1 base credit, 2 credits at 100% markup,
so 1,000 such calls cost 2,000 credits. Under accrual a call consumes its exact cost in nano-credits,
ceil(cost x (100 + markup) / 100 / credit price x 10^9), first from the account's remainder; when the remainder does
not cover it, the call debits the whole credits that do (ceil of the shortfall) and the change becomes the new
remainder. So after any sequence of calls the credits debited are exactly ceil(sum of their exact costs) (the 1,000
calls: 150 credits), the remainder always lies in [0, 1 credit), and no call is free: each is paid for in full,
by the credits it debits or by credits an earlier call already debited.

Whole nano-credits and integer arithmetic throughout, so the settle path, `ledger check` and the pricing lab's
replay (core/optimize/pricing.py, the same formula in SQL) agree to the last nano-credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.money import quantize_usd

NANO_PER_CREDIT = 10**9
NANO_PER_USD = 10**9
MARKUP_SCALE = 10**4  # markups are stored with 4 decimals (users.developer_markup_pct is Numeric(9, 4))


@dataclass(frozen=True, kw_only=True)
class Accrual:
    accrued_nano: int  # the exact nano-credits this call consumed
    credits: int  # whole credits debited now (0 when the remainder covered the call)
    remainder_nano: int  # paid for and not yet consumed after the call: 0 <= r < NANO_PER_CREDIT


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _whole(value: Decimal, scale: int, what: str) -> int:
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what} {value} has more decimals than accrual rounding keeps")
    return int(scaled)


def exact_nano_credits(base_cost_usd: Decimal, markup_pct: Decimal, credit_usd: Decimal) -> int:
    """A call's exact price in whole nano-credits (rounded up): cost x (100 + markup) / 100 / credit price x 10^9."""
    base_nano = _whole(quantize_usd(base_cost_usd), NANO_PER_USD, "A cost")
    markup = _whole(markup_pct, MARKUP_SCALE, "A markup")
    credit_nano = _whole(credit_usd, NANO_PER_USD, "The credit price")
    # base_nano / 10^9 x (10^6 + markup) / 10^6 / (credit_nano / 10^9) x 10^9
    return _ceil_div(base_nano * (100 * MARKUP_SCALE + markup) * 1000, credit_nano)


def accrue(base_cost_usd: Decimal, markup_pct: Decimal, credit_usd: Decimal, remainder_nano: int) -> Accrual:
    """What one call debits under accrual rounding, given the account's remainder before it."""
    if not 0 <= remainder_nano < NANO_PER_CREDIT:
        raise ValueError(f"an account's remainder is below one credit, got {remainder_nano} nano-credits")
    exact = exact_nano_credits(base_cost_usd, markup_pct, credit_usd)
    credits = max(0, _ceil_div(exact - remainder_nano, NANO_PER_CREDIT))
    return Accrual(
        accrued_nano=exact, credits=credits, remainder_nano=remainder_nano + credits * NANO_PER_CREDIT - exact
    )
