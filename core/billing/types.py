"""Values the billing service takes and returns: frozen, keyword-only, detached from the database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.catalog.types import ModelPrice
from core.usage import Usage


@dataclass(frozen=True, kw_only=True)
class Balance:
    total: int  # sum of the user's transactions (= the cached balance)
    held: int  # credits reserved by open holds
    available: int  # total - held: what a new call may spend


@dataclass(frozen=True, kw_only=True)
class Hold:
    id: int
    user_id: int
    credits: int
    idempotency_key: str
    status: str  # held | settled | released | expired
    created_at: datetime
    expires_at: datetime
    api_key_id: int | None = None  # the API key the call came through: that key's limits count this hold
    reused: bool = field(default=False, compare=False)  # the key already had this hold: a retried call, not a new one
    # a budget covered the call when it was reserved (its settle then checks the budgets' alert thresholds)
    budgeted: bool = field(default=True, compare=False)
    # the account's markup when the hold was made: PostgreSQL settles the call in one statement that checks it is
    # still the markup (BillingService._settle_at_once); None: unknown, settled by the general path
    markup_pct: Decimal | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class Transaction:
    id: int
    user_id: int
    created_at: datetime
    amount: int  # credits; negative = debit
    transaction_type: str  # grant | topup | usage | endpoint_uptime | refund | adjustment
    description: str | None
    idempotency_key: str | None
    balance_after: int
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One provider call as `ai_usage_log` stores it. Billing derives credits from `base_cost_usd` and the markup."""

    model: ModelPrice
    usage: Usage
    base_cost_usd: Decimal  # from price_usage(model, usage); for sandbox calls the would-be cost
    status: str = "success"  # success | failed
    error: str | None = None
    latency_ms: int | None = None
    cache_hit: bool = False
    sandbox: bool = False  # simulated output: logged with its would-be cost, never debited
    request_id: str | None = None
    endpoint_id: int | None = None
    request_fingerprint: str | None = None  # core.providers.fingerprint: identical requests share it
    api_key_id: int | None = None  # the API key the call came through (gateway calls)
    source: str | None = None  # where the call came from: playground | cli | api
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """What settling a hold did: the usage row, the debit (None when nothing was charged) and the figures."""

    usage_id: int
    transaction: Transaction | None
    base_cost_usd: Decimal
    base_credits: int
    markup_pct: Decimal
    credits_charged: int
    balance_after: int
    overage: bool  # the actual cost exceeded the hold; posted anyway because the service was delivered
