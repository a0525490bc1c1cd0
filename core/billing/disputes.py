"""Calls whose upstream reported more usage than the request allowed: billed at the limit, listed for finance.

`core.billing.reconcile` caps such a report and flags the usage row `usage_disputed`, its metadata naming each figure
as reported and as billed. This is the list finance takes up with the provider (Ledger page, and
`python -m core ledger disputed`); a partial index makes it cheap however long the usage log grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, true

from core.db.models import AIModel, AIUsageLog, User

DEFAULT_LIMIT = 500


@dataclass(frozen=True, kw_only=True)
class DisputedCall:
    usage_id: int
    at: datetime  # naive UTC
    user_id: int
    email: str
    provider: str
    model_id: str
    request_id: str | None
    base_cost_usd: Decimal  # provider cost of the usage as billed (capped)
    credits_charged: int
    figures: dict[str, dict[str, Any]]  # figure -> {"reported", "billed"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "usage_id": self.usage_id,
            "at": self.at,
            "user_id": self.user_id,
            "email": self.email,
            "provider": self.provider,
            "model_id": self.model_id,
            "request_id": self.request_id,
            "base_cost_usd": self.base_cost_usd,
            "credits_charged": self.credits_charged,
            "figures": self.figures,
        }


def disputed_calls(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[DisputedCall]:
    """Disputed calls, newest first, optionally of one user and within [since, until) (naive UTC)."""
    log = AIUsageLog
    stmt = (
        select(
            log.id,
            log.created_at,
            log.user_id,
            User.email,
            log.provider,
            AIModel.model_id,
            log.request_id,
            log.base_cost_usd,
            log.cost_credits,
            log.meta,
        )
        .join(User, User.id == log.user_id)
        .outerjoin(AIModel, AIModel.id == log.ai_model_id)
        .where(log.usage_disputed == true())  # renders as the partial index's condition on both databases
        .order_by(log.created_at.desc(), log.id.desc())
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(log.created_at >= since)
    if until is not None:
        stmt = stmt.where(log.created_at < until)
    if user_id is not None:
        stmt = stmt.where(log.user_id == user_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        DisputedCall(
            usage_id=r[0],
            at=r[1],
            user_id=r[2],
            email=r[3],
            provider=r[4],
            model_id=r[5] or "(unknown)",
            request_id=r[6],
            base_cost_usd=Decimal(r[7]),
            credits_charged=int(r[8]),
            figures=dict((r[9] or {}).get("usage_disputed") or {}),
        )
        for r in rows
    ]
