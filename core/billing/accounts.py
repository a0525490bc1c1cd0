"""Read views of the ledger for finance: every account's balance (with filters) and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.billing.inputs import MAX_CREDITS
from core.db.models import AuditLog, CreditHold, CreditTransaction, User, utcnow


@dataclass(frozen=True, kw_only=True)
class AccountBalance:
    user_id: int
    email: str
    name: str
    role: str
    markup_pct: Decimal
    total: int
    held: int
    available: int
    transactions: int
    last_activity: datetime | None


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | None


def account_balances(
    session: Session,
    *,
    role: str | None = None,
    search: str | None = None,
    min_available: int | None = None,
    max_available: int | None = None,
) -> list[AccountBalance]:
    """Every user's balance, held and available credits, with optional filters; lowest available first."""
    now = utcnow()
    held = (
        select(CreditHold.user_id, func.sum(CreditHold.credits).label("held"))
        .where(CreditHold.status == "held", CreditHold.expires_at > now)
        .group_by(CreditHold.user_id)
        .subquery()
    )
    activity = (
        select(
            CreditTransaction.user_id,
            func.count().label("n"),
            func.max(CreditTransaction.created_at).label("last"),
        )
        .group_by(CreditTransaction.user_id)
        .subquery()
    )
    held_col = func.coalesce(held.c.held, 0)
    available = User.credit_balance - held_col
    stmt = (
        select(User, held_col, func.coalesce(activity.c.n, 0), activity.c.last)
        .outerjoin(held, held.c.user_id == User.id)
        .outerjoin(activity, activity.c.user_id == User.id)
        .order_by(available, User.email)
    )
    if role:
        stmt = stmt.where(User.role == role)
    if search and search.strip():
        pattern = f"%{search.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(User.email).like(pattern), func.lower(User.name).like(pattern)))
    # a bound past any balance the ledger allows selects the same rows, and stays a number the database binds
    # (1e20 is past SQLite's 64-bit integers)
    if min_available is not None:
        stmt = stmt.where(available >= _within_balances(min_available))
    if max_available is not None:
        stmt = stmt.where(and_(available <= _within_balances(max_available)))
    return [
        AccountBalance(
            user_id=u.id,
            email=u.email,
            name=u.name,
            role=u.role,
            markup_pct=u.developer_markup_pct,
            total=u.credit_balance,
            held=int(h),
            available=u.credit_balance - int(h),
            transactions=int(n),
            last_activity=last,
        )
        for u, h, n, last in session.execute(stmt)
    ]


def _within_balances(credits: int) -> int:
    return max(-MAX_CREDITS, min(MAX_CREDITS, credits))


def audit_entries(session: Session, *, action_prefix: str | None = None, limit: int = 500) -> list[AuditEntry]:
    """The audit log, newest first by when each entry happened (grants, refunds, price changes, endpoint actions);
    entries of one instant in the order they were recorded. By time, not id: the demo's endpoint history is recorded
    after the rest with its own (earlier) times, and showed in the middle of today's entries."""
    stmt = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if action_prefix:
        stmt = stmt.where(AuditLog.action.like(f"{action_prefix}%"))
    return [
        AuditEntry(id=a.id, at=a.at, actor=a.actor, action=a.action, target=a.target, details=a.details)
        for a in session.scalars(stmt)
    ]


def credits_outstanding(session: Session) -> tuple[int, int, int, int]:
    """(credits prepaid and not yet spent: every positive balance together, number of accounts, credits owed by
    overdrawn accounts, number of them). An overdraft is owed to the company, not a prepaid credit: netted against
    the positive balances, it made the prepaid credits read lower than they are."""
    below = User.credit_balance < 0
    prepaid, users, overdrawn, accounts = session.execute(
        select(
            func.coalesce(func.sum(case((below, 0), else_=User.credit_balance)), 0),
            func.count(),
            func.coalesce(func.sum(case((below, -User.credit_balance), else_=0)), 0),
            func.coalesce(func.sum(case((below, 1), else_=0)), 0),
        ).select_from(User)
    ).one()
    return int(prepaid or 0), int(users or 0), int(overdrawn or 0), int(accounts or 0)
