"""Billing: money rules, pricing of usage, the credits ledger (holds, idempotency)."""

from core.billing.errors import (
    HoldStateError,
    InsufficientCreditsError,
    InvalidAmountError,
    UnknownUserError,
    UnpricedModelError,
)
from core.billing.ledger import BillingService
from core.billing.pricing import price_uptime, price_usage
from core.billing.types import Balance, Hold, Settlement, Transaction, UsageRecord
from core.money import CREDIT_USD, apply_markup, credits_to_usd, usd_to_credits

__all__ = [
    "CREDIT_USD",
    "Balance",
    "BillingService",
    "Hold",
    "HoldStateError",
    "InsufficientCreditsError",
    "InvalidAmountError",
    "Settlement",
    "Transaction",
    "UnknownUserError",
    "UnpricedModelError",
    "UsageRecord",
    "apply_markup",
    "credits_to_usd",
    "price_uptime",
    "price_usage",
    "usd_to_credits",
]
