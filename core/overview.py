"""The home page's figures, straight from the system of record: this month and last, credits outstanding,
active users, top model, and spend per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from core.db.models import AIModel, AIUsageLog, User


@dataclass(frozen=True, kw_only=True)
class PeriodSpend:
    requests: int
    credits: int
    revenue_usd: Decimal
    base_cost_usd: Decimal

    @property
    def margin_usd(self) -> Decimal:
        return self.revenue_usd - self.base_cost_usd


@dataclass(frozen=True, kw_only=True)
class DaySpend:
    day: date  # UTC
    credits: int
    revenue_usd: Decimal
    base_cost_usd: Decimal


@dataclass(frozen=True, kw_only=True)
class Overview:
    as_of: datetime
    this_month: PeriodSpend
    last_month: PeriodSpend
    last_month_same_point: PeriodSpend
    credits_outstanding: int
    credits_outstanding_usd: Decimal  # what the outstanding credits were bought for
    active_users_30d: int
    users: int
    top_model: str | None
    top_model_credits: int
    daily: list[DaySpend]

    @property
    def vs_last_month(self) -> Decimal | None:
        """This month's revenue against last month's up to the same point, as a fraction (None without one)."""
        prev = self.last_month_same_point.revenue_usd
        return (self.this_month.revenue_usd - prev) / prev if prev else None


def day_of(session: Session, column: ColumnElement) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column as 'YYYY-MM-DD', on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(column, 1, 10)
    return func.to_char(column, "YYYY-MM-DD")


def _period(session: Session, start: datetime, end: datetime, credit_usd: Decimal) -> PeriodSpend:
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(AIUsageLog.cost_credits), 0),
            func.coalesce(func.sum(AIUsageLog.base_cost_usd), 0),
        ).where(
            AIUsageLog.created_at >= start,
            AIUsageLog.created_at < end,
            AIUsageLog.sandbox.is_(False),
            AIUsageLog.status == "success",
        )
    ).one()
    credits = int(row[1])
    return PeriodSpend(
        requests=int(row[0]),
        credits=credits,
        revenue_usd=Decimal(credits) * credit_usd,
        base_cost_usd=Decimal(str(row[2])).quantize(Decimal("0.000000001")),
    )


def month_start(d: datetime) -> datetime:
    return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def overview(session: Session, *, credit_usd: Decimal, now: datetime | None = None, days: int = 90) -> Overview:
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    this_start = month_start(now)
    last_start = month_start(this_start - timedelta(days=1))
    same_point = last_start + (now - this_start)
    this_month = _period(session, this_start, now + timedelta(seconds=1), credit_usd)
    last_month = _period(session, last_start, this_start, credit_usd)
    last_same = _period(session, last_start, min(same_point, this_start), credit_usd)
    outstanding = int(session.scalar(select(func.coalesce(func.sum(User.credit_balance), 0))) or 0)
    users = int(session.scalar(select(func.count()).select_from(User)) or 0)
    active = int(
        session.scalar(
            select(func.count(func.distinct(AIUsageLog.user_id))).where(
                AIUsageLog.created_at >= now - timedelta(days=30)
            )
        )
        or 0
    )
    top = session.execute(
        select(AIModel.provider, AIModel.model_id, func.sum(AIUsageLog.cost_credits).label("credits"))
        .join(AIModel, AIModel.id == AIUsageLog.ai_model_id)
        .where(and_(AIUsageLog.created_at >= this_start, AIUsageLog.sandbox.is_(False)))
        .group_by(AIModel.provider, AIModel.model_id)
        .order_by(func.sum(AIUsageLog.cost_credits).desc())
        .limit(1)
    ).first()
    day = day_of(session, AIUsageLog.created_at)
    daily_rows = session.execute(
        select(day, func.sum(AIUsageLog.cost_credits), func.sum(AIUsageLog.base_cost_usd))
        .where(
            AIUsageLog.created_at >= (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0),
            AIUsageLog.sandbox.is_(False),
        )
        .group_by(day)
        .order_by(day)
    ).all()
    return Overview(
        as_of=now,
        this_month=this_month,
        last_month=last_month,
        last_month_same_point=last_same,
        credits_outstanding=outstanding,
        credits_outstanding_usd=Decimal(outstanding) * credit_usd,
        active_users_30d=active,
        users=users,
        top_model=f"{top[0]}/{top[1]}" if top else None,
        top_model_credits=int(top[2]) if top else 0,
        daily=[
            DaySpend(
                day=date.fromisoformat(d),
                credits=int(c or 0),
                revenue_usd=Decimal(int(c or 0)) * credit_usd,
                base_cost_usd=Decimal(str(u or 0)),
            )
            for d, c, u in daily_rows
        ],
    )
