"""A user's usage over the last N days, from the analytics store: the specification's
`get_total_usage(user_id, days=30)` and `get_usage_by_provider(user_id, days=30)`.

The window is the last `days` x 24 hours up to `now` (default: the store's as-of time). Spend follows the analytics
definition (`core.analytics.schema`): calls, endpoint uptime debits and refunds; sandbox calls are left out unless
`include_sandbox`. `cost_usd` is what the user paid: credits x the credit price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.analytics.filters import SpendFilter
from core.analytics.queries import SpendQueries
from core.errors import InvalidInputError, NotFoundError


@dataclass(frozen=True, kw_only=True)
class UserUsage:
    user_id: int
    days: int
    requests: int
    failed: int
    credits: int
    base_cost_usd: Decimal  # what the providers cost
    cost_usd: Decimal  # what the user paid (credits x credit price)
    as_of: datetime  # naive UTC


@dataclass(frozen=True, kw_only=True)
class ProviderUsage:
    provider: str
    requests: int
    credits: int
    base_cost_usd: Decimal
    cost_usd: Decimal
    as_of: datetime


def _window(q: SpendQueries, user: int | str, days: int, now: datetime | None, include_sandbox: bool) -> SpendFilter:
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise InvalidInputError(f"days must be a positive whole number, got {days!r}.")
    end = now or q.as_of()
    start = end - timedelta(days=days)
    if isinstance(user, bool) or not isinstance(user, int | str):
        raise InvalidInputError(f"{user!r} is not a user; pass a user id or an email.")
    key = {"user_ids": (user,)} if isinstance(user, int) else {"users": (user,)}
    return SpendFilter(start=start, end=end + timedelta(microseconds=1), include_sandbox=include_sandbox, **key)


def _user_id(q: SpendQueries, user: int | str) -> int:
    found = q.find_user(user)
    if found is None:
        raise NotFoundError(
            f"No user {user!r} in the analytics store; check the id or email (`python -m core users list`), or "
            "run `python -m core spend sync` if the user was just added."
        )
    return found


def get_total_usage(
    q: SpendQueries, user_id: int | str, days: int = 30, *, now: datetime | None = None, include_sandbox: bool = False
) -> UserUsage:
    """A user's calls, failed calls, credits, provider cost and what they paid over the last `days` days."""
    f = _window(q, user_id, days, now, include_sandbox)
    uid = _user_id(q, user_id)
    t, as_of = q.totals(f)
    return UserUsage(
        user_id=uid,
        days=days,
        requests=t.requests,
        failed=t.failed,
        credits=t.credits,
        base_cost_usd=t.base_cost_usd,
        cost_usd=t.revenue_usd,
        as_of=as_of,
    )


def get_usage_by_provider(
    q: SpendQueries, user_id: int | str, days: int = 30, *, now: datetime | None = None, include_sandbox: bool = False
) -> list[ProviderUsage]:
    """The same per provider, most credits first."""
    f = _window(q, user_id, days, now, include_sandbox)
    _user_id(q, user_id)
    r = q.breakdown("provider", f)
    return [
        ProviderUsage(
            provider=row["key"],
            requests=int(row["requests"]),
            credits=int(row["credits"]),
            base_cost_usd=row["base_cost_usd"],
            cost_usd=row["revenue_usd"],
            as_of=r.as_of,
        )
        for row in r.frame.to_dict("records")
    ]
