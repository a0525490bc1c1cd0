"""Post endpoint uptime to the owners' ledgers: whole hours, once each, through the billing service.

`UptimeMeter.meter(until)` walks each endpoint's unmetered whole hours up to what is known (its last observation,
or any time after its deletion), prices each hour from the state history (`uptime.hourly_buckets`) and charges
the owner with idempotency key `uptime:{endpoint_id}:{hour start}`:
- metering twice never charges twice: an hour already charged returns its first transaction;
- a meter that crashed between a charge and its bucket row resumes: bucket rows and `metered_until` are written
  together (every RECORD_EVERY charged hours), so the next run starts at the first unrecorded hour, whose retried
  charge has the same key and is a no-op;
- the owner's markup applies (read at charge time and recorded on the debit and the bucket row);
- delivered uptime is charged even when it overdraws the owner's balance (`allow_overdraft=True`): the GPU time was
  consumed and Hugging Face bills it regardless; the negative balance is visible on the Ledger page and blocks the
  owner's new prepaid calls until topped up.
Hours before the last observation are final (new state changes are always dated after it), so a past hour's figures
never change after it was charged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.billing.types import Transaction
from core.catalog.lookup import get_hardware
from core.config import Settings
from core.db.models import (
    CreditTransaction,
    EndpointEvent,
    EndpointUptimeBucket,
    InferenceEndpoint,
    User,
    utcnow,
)
from core.endpoints.costs import changes_for
from core.endpoints.uptime import HOUR, UptimeBucket, floor_hour, hourly_buckets
from core.runtime import Runtime

TRANSACTION_KIND = "endpoint_uptime"
RECORD_EVERY = 48  # charged hours written per transaction (a crash redoes at most this many no-op charges)


class Charger(Protocol):
    """The part of `core.billing.BillingService` metering uses."""

    def charge(
        self,
        user: Any,
        base_cost_usd: Decimal,
        *,
        markup_pct: Decimal | None = None,
        idempotency_key: str,
        description: str,
        metadata: dict[str, Any] | None = None,
        kind: str = "usage",
        allow_overdraft: bool = False,
    ) -> Transaction: ...


def idempotency_key(endpoint_id: int, bucket_start: datetime) -> str:
    return f"uptime:{endpoint_id}:{bucket_start:%Y-%m-%dT%H:%M}"


@dataclass(kw_only=True)
class MeterReport:
    until: datetime
    endpoints: int = 0
    hours_charged: int = 0  # new debits posted by this run
    hours_resumed: int = 0  # hours charged by an earlier, interrupted run and completed now
    credits: int = 0  # credits debited by this run
    base_cost_usd: Decimal = Decimal(0)
    overdrawn: list[str] = field(default_factory=list)  # owners left below zero by delivered uptime
    warnings: dict[str, str] = field(default_factory=dict)  # endpoint name -> why it could not be refreshed


class UptimeMeter:
    def __init__(
        self, session_factory: sessionmaker[Session], billing: Charger, settings: Settings | None = None
    ) -> None:
        self.session_factory = session_factory
        self.billing = billing
        self.settings = settings or Settings()

    def meter(self, until: datetime) -> MeterReport:
        """Charge every endpoint's complete, observed, unmetered hours up to `until` (naive UTC)."""
        report = MeterReport(until=until)
        with self.session_factory.begin() as s:
            ids = list(s.scalars(select(InferenceEndpoint.id).order_by(InferenceEndpoint.id)))
        for endpoint_id in ids:
            self._meter_endpoint(endpoint_id, until, report)
        return report

    def _meter_endpoint(self, endpoint_id: int, until: datetime, report: MeterReport) -> None:
        with self.session_factory.begin() as s:
            row = s.get(InferenceEndpoint, endpoint_id)
            assert row is not None
            first_event = s.scalar(
                select(EndpointEvent.at).where(EndpointEvent.endpoint_id == row.id).order_by(EndpointEvent.at).limit(1)
            )
            start = row.metered_until or floor_hour(first_event or row.created_at)
            if row.deleted_at is not None:
                end = min(floor_hour(until), floor_hour(row.deleted_at) + HOUR)  # the deletion's hour closes it
            else:
                end = floor_hour(min(until, row.observed_at or row.created_at))
            if end <= start:
                return
            report.endpoints += 1
            hourly = get_hardware(s, row.hardware_id).hourly_usd
            buckets = hourly_buckets(changes_for(s, row.id, start, end), start, end, hourly)
            owner = s.get(User, row.owner_id)
            assert owner is not None
            ctx = {
                "endpoint_id": row.id,
                "endpoint_name": row.name,
                "model_repo": row.model_repo,
                "hardware": row.hardware_id,
                "owner_id": owner.id,
                "owner_email": owner.email,
                "markup_pct": Decimal(owner.developer_markup_pct),
            }
            # Hours a concurrent or earlier run recorded, and hours it charged but had not recorded when it stopped.
            recorded = set(
                s.scalars(
                    select(EndpointUptimeBucket.bucket_start).where(
                        EndpointUptimeBucket.endpoint_id == row.id,
                        EndpointUptimeBucket.bucket_start >= start,
                        EndpointUptimeBucket.bucket_start < end,
                    )
                )
            )
            charged = set(
                s.scalars(  # read only; posting is the billing service's job
                    select(CreditTransaction.idempotency_key).where(
                        CreditTransaction.user_id == owner.id,
                        CreditTransaction.idempotency_key >= idempotency_key(row.id, start),
                        CreditTransaction.idempotency_key < idempotency_key(row.id, end),
                    )
                )
            )
        pending: list[EndpointUptimeBucket] = []
        for bucket in buckets:
            if not bucket.replica_minutes or bucket.start in recorded:
                continue
            pending.append(self._charge(ctx, bucket, idempotency_key(row.id, bucket.start) in charged, report))
            if len(pending) >= RECORD_EVERY:
                self._record(endpoint_id, pending, bucket.end)
                pending = []
        self._record(endpoint_id, pending, end)

    def _charge(
        self, ctx: dict[str, Any], bucket: UptimeBucket, resumed: bool, report: MeterReport
    ) -> EndpointUptimeBucket:
        key = idempotency_key(ctx["endpoint_id"], bucket.start)
        markup = ctx["markup_pct"]
        metadata = {
            "endpoint_id": ctx["endpoint_id"],
            "endpoint_name": ctx["endpoint_name"],
            "model_repo": ctx["model_repo"],
            "hardware": ctx["hardware"],
            "from": bucket.start.isoformat(),
            "to": bucket.end.isoformat(),
            "replica_minutes": bucket.replica_minutes,
            "billed_minutes": bucket.billed_minutes,
            "hourly_usd": str(bucket.hourly_usd),
            "base_cost_usd": str(bucket.base_cost_usd),
            "markup_pct": str(markup),
        }
        tx = self.billing.charge(
            ctx["owner_id"],
            bucket.base_cost_usd,
            markup_pct=markup,
            idempotency_key=key,
            description=(
                f"Endpoint {ctx['endpoint_name']} ({ctx['hardware']}) uptime {bucket.start:%Y-%m-%d %H:%M}-"
                f"{bucket.end:%H:%M} UTC: {bucket.replica_minutes} replica-minutes"
            ),
            metadata=metadata,
            kind=TRANSACTION_KIND,
            allow_overdraft=True,
        )
        if resumed:
            report.hours_resumed += 1
        else:
            report.hours_charged += 1
            report.credits += -tx.amount
            report.base_cost_usd += bucket.base_cost_usd
        if tx.balance_after < 0 and ctx["owner_email"] not in report.overdrawn:
            report.overdrawn.append(ctx["owner_email"])
        # The first transaction's own figures win: a resumed run re-prices with today's catalog but charges nothing.
        meta = tx.metadata if isinstance(tx.metadata, dict) else json.loads(tx.metadata or "{}")
        return EndpointUptimeBucket(
            endpoint_id=ctx["endpoint_id"],
            owner_id=ctx["owner_id"],
            bucket_start=bucket.start,
            bucket_end=bucket.end,
            billed_minutes=int(meta.get("billed_minutes", bucket.billed_minutes)),
            replica_minutes=int(meta.get("replica_minutes", bucket.replica_minutes)),
            max_replicas=bucket.max_replicas,
            hourly_usd=Decimal(str(meta.get("hourly_usd", bucket.hourly_usd))),
            base_cost_usd=Decimal(str(meta.get("base_cost_usd", bucket.base_cost_usd))),
            markup_pct=Decimal(str(meta.get("markup_pct", markup))),
            credits=-tx.amount,
            transaction_id=tx.id,
            idempotency_key=key,
        )

    def _record(self, endpoint_id: int, rows: list[EndpointUptimeBucket], metered_until: datetime) -> None:
        """Write charged hours' rows and move `metered_until` in one transaction: it never passes an hour that was
        charged but not recorded, so a run that stops before this resumes at those hours (their charges are no-ops)."""
        with self.session_factory.begin() as s:
            s.add_all(rows)
            endpoint = s.get(InferenceEndpoint, endpoint_id)
            assert endpoint is not None
            if endpoint.metered_until is None or endpoint.metered_until < metered_until:
                endpoint.metered_until = metered_until


def meter_endpoints(runtime: Runtime, until: datetime | None = None, *, refresh: bool = True) -> MeterReport:
    """What `python -m core endpoints meter` and the page's button run: refresh every endpoint from the API when it
    is configured (so the history is known up to now), then meter up to `until` (default now)."""
    from core.billing import BillingService
    from core.endpoints.factory import configuration_problem, make_service

    warnings: dict[str, str] = {}
    if refresh:
        problem = configuration_problem(runtime.settings)
        if problem:
            warnings["*"] = problem + " Metered the recorded history only."
        else:
            warnings.update(make_service(runtime).refresh_all().errors)
    billing = BillingService(runtime.session_factory, runtime.settings)
    billing.expire_holds()  # an hourly job: stored hold statuses stay true even for users who make no new call
    report = UptimeMeter(runtime.session_factory, billing, runtime.settings).meter(until or utcnow())
    report.warnings.update(warnings)
    return report
