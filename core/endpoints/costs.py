"""Uptime cost per endpoint for a period: what metering already posted (bucket rows) plus what has accrued since
the last metering and is not on the ledger yet. Read-only; the page and `endpoints show` use it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalog.lookup import get_hardware
from core.db.models import EndpointEvent, EndpointUptimeBucket, InferenceEndpoint
from core.endpoints.uptime import StateChange, uptime_cost
from core.money import shown_cents


@dataclass(frozen=True, kw_only=True)
class EndpointCost:
    endpoint_id: int
    name: str
    metered_usd: Decimal  # base cost of the hours already posted to the ledger in the period
    metered_credits: int  # credits those hours were charged (owner's markup included)
    metered_replica_minutes: int
    accrued_usd: Decimal  # base cost since the last metering, up to the last observation; not charged yet
    accrued_replica_minutes: int
    accrued_until: datetime | None

    @property
    def total_usd(self) -> Decimal:
        return self.metered_usd + self.accrued_usd

    # What people are shown (core.money.shown_cents): the posted and the not-yet-metered parts each as printed, and a
    # total that is their sum, so "total = posted + not yet metered" and a column of endpoints add up to the cent.
    @property
    def shown_metered_usd(self) -> Decimal:
        return shown_cents(self.metered_usd)

    @property
    def shown_accrued_usd(self) -> Decimal:
        return shown_cents(self.accrued_usd)

    @property
    def shown_total_usd(self) -> Decimal:
        return self.shown_metered_usd + self.shown_accrued_usd

    @property
    def replica_minutes(self) -> int:
        return self.metered_replica_minutes + self.accrued_replica_minutes


def month_start_utc(now: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of `now`'s month in the reporting time zone, as naive UTC."""
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz)
    first = datetime.combine(local.date().replace(day=1), time(0), tzinfo=tz)
    return first.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def changes_for(s: Session, endpoint_id: int, start: datetime, end: datetime) -> list[StateChange]:
    """The state in force at `start` and every change before `end`."""
    before = s.scalars(
        select(EndpointEvent)
        .where(EndpointEvent.endpoint_id == endpoint_id, EndpointEvent.at <= start)
        .order_by(EndpointEvent.at.desc(), EndpointEvent.id.desc())
        .limit(1)
    ).all()
    inside = s.scalars(
        select(EndpointEvent)
        .where(EndpointEvent.endpoint_id == endpoint_id, EndpointEvent.at > start, EndpointEvent.at < end)
        .order_by(EndpointEvent.at, EndpointEvent.id)
    ).all()
    return [StateChange(at=e.at, state=e.state, replicas=e.replicas) for e in (*before, *inside)]


def endpoint_costs(s: Session, start: datetime, now: datetime) -> dict[int, EndpointCost]:
    """Cost of every endpoint (deleted ones included) from `start` to `now`, keyed by endpoint id.

    Metered hours are counted by the hour they start in; the accrual runs from the later of `start` and the
    endpoint's `metered_until` to its last observation (or deletion), never past `now`.
    """
    # Summed in Python: SQLite's SUM over a NUMERIC column adds floats, and money stays Decimal here.
    metered: dict[int, list] = defaultdict(lambda: [Decimal(0), 0, 0])
    rows = s.execute(
        select(
            EndpointUptimeBucket.endpoint_id,
            EndpointUptimeBucket.base_cost_usd,
            EndpointUptimeBucket.credits,
            EndpointUptimeBucket.replica_minutes,
        ).where(EndpointUptimeBucket.bucket_start >= start, EndpointUptimeBucket.bucket_start < now)
    ).all()
    for endpoint_id, usd, credits, minutes in rows:
        totals = metered[endpoint_id]
        totals[0] += Decimal(usd)
        totals[1] += int(credits)
        totals[2] += int(minutes)

    out: dict[int, EndpointCost] = {}
    for row in s.scalars(select(InferenceEndpoint).order_by(InferenceEndpoint.id)):
        usd, credits, minutes = metered[row.id]
        accrue_from = max(start, row.metered_until or row.created_at)
        accrue_to = min(now, row.deleted_at or row.observed_at or row.created_at)
        accrued_usd, accrued_minutes, until = Decimal(0), 0, None
        if accrue_to > accrue_from:
            hourly = get_hardware(s, row.hardware_id).hourly_usd
            cost = uptime_cost(changes_for(s, row.id, accrue_from, accrue_to), accrue_from, accrue_to, hourly)
            accrued_usd, accrued_minutes, until = cost.base_cost_usd, cost.replica_minutes, accrue_to
        if not (usd or accrued_usd or row.deleted_at is None or row.deleted_at >= start):
            continue  # deleted before the period and nothing to show
        out[row.id] = EndpointCost(
            endpoint_id=row.id,
            name=row.name,
            metered_usd=usd,
            metered_credits=credits,
            metered_replica_minutes=minutes,
            accrued_usd=accrued_usd,
            accrued_replica_minutes=accrued_minutes,
            accrued_until=until,
        )
    return out
