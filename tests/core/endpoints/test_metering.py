"""Metering: uptime history -> `endpoint_uptime` debits through the billing service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.billing import BillingService
from core.db import Database
from core.db.models import CreditTransaction, EndpointEvent, EndpointUptimeBucket, InferenceEndpoint
from core.endpoints import ManualClock, metering
from core.endpoints.costs import EndpointCost, endpoint_costs
from core.endpoints.metering import MeterReport, UptimeMeter, idempotency_key
from core.money import apply_markup, usd_to_credits
from tests.core.endpoints.helpers import add_engineer, build

H0 = datetime(2026, 12, 1, 10, 0)


def at(minutes: float) -> datetime:
    return H0 + timedelta(minutes=minutes)


def seed_endpoint(
    rt: Database,
    owner_id: int,
    events: list[tuple[float, str, int]],
    *,
    hardware: str = "T4",
    observed: float = 600,
    deleted: float | None = None,
    name: str = "audio",
) -> int:
    """An endpoint with a recorded history (minutes after 10:00, state, replicas), observed up to `observed`."""
    with rt.session() as s:
        row = InferenceEndpoint(
            name=name,
            owner_id=owner_id,
            model_repo="facebook/mms-tts-eng",
            hardware_id=hardware,
            min_replicas=0,
            max_replicas=4,
            scale_to_zero_minutes=15,
            state=events[-1][1],
            replicas=events[-1][2],
            created_at=at(events[0][0]),
            observed_at=at(observed),
            deleted_at=at(deleted) if deleted is not None else None,
        )
        s.add(row)
        s.flush()
        for minute, state, replicas in events:
            s.add(EndpointEvent(endpoint_id=row.id, at=at(minute), state=state, replicas=replicas))
        return row.id


def meter(rt: Database, until: datetime) -> MeterReport:
    return UptimeMeter(rt.session_factory, BillingService(rt.session_factory, rt.settings), rt.settings).meter(until)


def debits(rt: Database) -> list[CreditTransaction]:
    with rt.session() as s:
        return list(
            s.scalars(
                select(CreditTransaction)
                .where(CreditTransaction.transaction_type == "endpoint_uptime")
                .order_by(CreditTransaction.id)
            )
        )


def balance(rt: Database, user_id: int) -> int:
    return BillingService(rt.session_factory, rt.settings).balance(user_id).total


def credits_for(usd: str, markup: str = "100") -> int:
    return apply_markup(usd_to_credits(Decimal(usd)), Decimal(markup))


def test_per_minute_and_replicas_become_hourly_debits_with_markup(runtime: Database) -> None:
    owner = add_engineer(runtime, markup="50")
    # 10:00-10:30 one replica, 10:30-11:15 three replicas, then paused
    endpoint_id = seed_endpoint(runtime, owner, [(0, "running", 1), (30, "running", 3), (75, "paused", 0)])
    report = meter(runtime, at(180))
    rows = debits(runtime)
    # hour 10: 30x1 + 30x3 = 120 replica-minutes = $1.20; hour 11: 15x3 = 45 = $0.45; hour 12: nothing
    assert [-t.amount for t in rows] == [credits_for("1.20", "50"), credits_for("0.45", "50")]
    assert [-t.amount for t in rows] == [45, 18]  # 30 base credits x 1.5; ceil(0.45/0.04)=12 x 1.5
    assert report.hours_charged == 2 and report.credits == 63
    meta = rows[0].meta
    assert {"endpoint_id", "endpoint_name", "model_repo", "hardware", "from", "to", "replica_minutes"} <= set(meta)
    assert (meta["endpoint_id"], meta["model_repo"], meta["hardware"]) == (endpoint_id, "facebook/mms-tts-eng", "T4")
    assert (meta["from"], meta["to"], meta["replica_minutes"]) == ("2026-12-01T10:00:00", "2026-12-01T11:00:00", 120)
    assert rows[0].idempotency_key == idempotency_key(endpoint_id, H0) == f"uptime:{endpoint_id}:2026-12-01T10:00"
    with runtime.session() as s:
        buckets = list(s.scalars(select(EndpointUptimeBucket).order_by(EndpointUptimeBucket.bucket_start)))
        row = s.get(InferenceEndpoint, endpoint_id)
    assert [(b.replica_minutes, b.base_cost_usd, b.credits, b.markup_pct) for b in buckets] == [
        (120, Decimal("1.2"), 45, Decimal("50")),
        (45, Decimal("0.45"), 18, Decimal("50")),
    ]
    assert row.metered_until == at(180)
    assert balance(runtime, owner) == -63  # delivered uptime is charged even when it overdraws


def test_metering_twice_never_charges_twice(runtime: Database) -> None:
    owner = add_engineer(runtime)
    seed_endpoint(runtime, owner, [(0, "running", 2), (200, "paused", 0)])
    meter(runtime, at(240))
    first = [(t.id, t.amount) for t in debits(runtime)]
    again = meter(runtime, at(240))
    later = meter(runtime, at(300))
    assert [(t.id, t.amount) for t in debits(runtime)] == first
    assert again.hours_charged == later.hours_charged == 0
    assert len(first) == 4  # 10, 11, 12 (2 replicas) and 13:00-13:20


def test_an_interrupted_meter_resumes_without_charging_twice(
    runtime: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = add_engineer(runtime)
    seed_endpoint(runtime, owner, [(0, "running", 1)], observed=150)
    meter_ = UptimeMeter(runtime.session_factory, BillingService(runtime.session_factory, runtime.settings))
    monkeypatch.setattr(metering, "RECORD_EVERY", 1)  # record each hour as soon as it is charged
    original = meter_._record
    calls = {"n": 0}

    def crash_after_second_charge(*args: object, **kw: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second hour was charged; the process dies before recording it
            raise KeyboardInterrupt
        original(*args, **kw)

    monkeypatch.setattr(meter_, "_record", crash_after_second_charge)
    with pytest.raises(KeyboardInterrupt):
        meter_.meter(at(150))
    assert len(debits(runtime)) == 2
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(EndpointUptimeBucket)) == 1
    monkeypatch.undo()
    report = meter(runtime, at(150))
    assert report.hours_resumed == 1 and report.hours_charged == 0
    assert len(debits(runtime)) == 2  # 10:00 and 11:00, once each
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(EndpointUptimeBucket)) == 2
    assert balance(runtime, owner) == -2 * credits_for("0.60")


def test_only_observed_complete_hours_are_metered(runtime: Database) -> None:
    owner = add_engineer(runtime)
    endpoint_id = seed_endpoint(runtime, owner, [(0, "running", 1)], observed=130)
    meter(runtime, at(600))  # known only up to 12:10: the hour 12 is not complete as far as we know
    assert len(debits(runtime)) == 2
    with runtime.session() as s:
        assert s.get(InferenceEndpoint, endpoint_id).metered_until == at(120)


def test_deleted_endpoint_is_closed_by_its_deletion_hour(runtime: Database) -> None:
    owner = add_engineer(runtime)
    seed_endpoint(runtime, owner, [(0, "running", 1), (70, "deleted", 0)], observed=70, deleted=70)
    meter(runtime, at(60 * 24))
    assert [-t.amount for t in debits(runtime)] == [credits_for("0.60"), credits_for("0.10")]
    assert meter(runtime, at(60 * 48)).endpoints == 0  # nothing left to look at


def test_pause_resume_and_scale_to_zero_on_the_stand_in(runtime: Database, tmp_path: Path) -> None:
    clock = ManualClock(H0)
    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)
    service.create_endpoint("audio", "facebook/mms-tts-eng", "T4", True, 0, 2, 15, "eng@example.com")
    clock.advance(minutes=1)
    service.refresh("audio")  # initializing from 10:01
    clock.advance(minutes=4)
    service.refresh("audio")  # running from 10:03
    clock.advance(minutes=20)
    service.pause("audio")  # 10:25 (it had scaled itself to zero at 10:18)
    clock.advance(minutes=30)
    service.resume("audio")  # 10:55 initializing, running 10:57
    clock.advance(minutes=5)
    service.refresh("audio")
    clock.advance(minutes=10)
    board.inner.record_traffic("acme", "audio", replicas=2)  # 11:10, two replicas from here
    clock.advance(minutes=10)
    service.refresh("audio")  # 11:20, still running (traffic at 11:10)
    clock.advance(minutes=25)
    service.refresh("audio")  # scaled to zero at 11:25 (15 idle minutes after 11:10), seen at 11:45
    clock.advance(minutes=75)
    service.refresh("audio")  # 13:00
    states = [(e.state, e.at.strftime("%H:%M"), e.replicas) for e in service.events("audio")]
    assert states == [
        ("pending", "10:00", 0),
        ("initializing", "10:01", 1),
        ("running", "10:03", 1),
        ("scaledToZero", "10:18", 0),  # idle 15 minutes; seen by the look the pause takes first, dated by the API
        ("paused", "10:25", 0),
        ("initializing", "10:55", 1),
        ("running", "10:57", 1),
        ("running", "11:10", 2),
        ("scaledToZero", "11:25", 0),
    ]
    meter(runtime, clock())
    # hour 10: 10:01-10:18 (17) + 10:55-11:00 (5) = 22 replica-minutes; hour 11: 10x1 + 15x2 = 40
    assert [t.meta["replica_minutes"] for t in debits(runtime)] == [22, 40]
    assert [-t.amount for t in debits(runtime)] == [credits_for("0.22"), credits_for("0.40")]


def test_month_to_date_adds_metered_and_accrued(runtime: Database) -> None:
    owner = add_engineer(runtime)
    endpoint_id = seed_endpoint(runtime, owner, [(0, "running", 1), (150, "paused", 0)], observed=160)
    before = endpoint_costs_of(runtime, endpoint_id)
    assert (before.metered_usd, before.accrued_usd) == (Decimal(0), Decimal("1.5"))
    meter(runtime, at(160))  # posts 10:00 and 11:00; 12:00-12:30 is still accruing
    after = endpoint_costs_of(runtime, endpoint_id)
    assert (after.metered_usd, after.accrued_usd, after.total_usd) == (Decimal("1.2"), Decimal("0.3"), Decimal("1.5"))
    assert after.metered_credits == 2 * credits_for("0.60")


def endpoint_costs_of(rt: Database, endpoint_id: int) -> EndpointCost:
    with rt.session() as s:
        return endpoint_costs(s, datetime(2026, 12, 1), at(160))[endpoint_id]
