"""Synthetic usage histories whose right answers are known in closed form, written straight into the tables (as the
demo generator does) and synced into a scratch analytics store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from core.analytics import SpendQueries
from core.db import Database
from core.db.models import AIModel, AIUsageLog, EndpointUptimeBucket, InferenceEndpoint
from core.users import UserView, add_user
from tests.support.analytics import store_for, sync_store

START = datetime(2025, 3, 3)  # a Monday
DAYS = 14
MINUTES = DAYS * 24 * 60


@dataclass(frozen=True)
class Model:
    pk: int
    provider: str
    category: str
    deployment_type: str


def model(rt: Database, model_id: str, provider: str | None = None) -> Model:
    with rt.session() as s:
        stmt = select(AIModel).where(AIModel.model_id == model_id)
        if provider:
            stmt = stmt.where(AIModel.provider == provider)
        m = s.scalars(stmt.order_by(AIModel.id)).first()
        assert m is not None, model_id
        return Model(m.id, m.provider, m.category, m.deployment_type)


def user(rt: Database, email: str = "ana@example.com", markup: str = "100", role: str = "engineer") -> UserView:
    with rt.session() as s:
        return add_user(s, email=email, name=email.split("@")[0], role=role, markup_pct=Decimal(markup))


def write_usage(rt: Database, who: UserView, m: Model, times: Iterable[datetime], cost: str, **cols: Any) -> int:
    """One successful usage row per time, each costing `cost` USD (columns in `cols` override the defaults)."""
    rows = [
        {
            "created_at": t,
            "user_id": who.id,
            "ai_model_id": m.pk,
            "provider": m.provider,
            "category": m.category,
            "deployment_type": m.deployment_type,
            "requests_count": 1,
            "base_cost_usd": Decimal(cost),
            "markup_pct": Decimal(100),
            "cost_credits": 0,
            "cost_usd": Decimal(0),
            "status": "success",
            "cache_hit": False,
            "sandbox": False,
            **cols,
        }
        for t in times
    ]
    if rows:
        with rt.engine.begin() as conn:
            conn.execute(insert(AIUsageLog.__table__), rows)
    return len(rows)


def steady(per_hour: int, minutes: int = MINUTES, start: datetime = START) -> list[datetime]:
    """Evenly spaced requests: minute t holds floor(R(t+1)/60) - floor(Rt/60) of them (the simulator's flat trace)."""
    out = []
    for t in range(minutes):
        n = (per_hour * (t + 1)) // 60 - (per_hour * t) // 60
        out.extend(start + timedelta(minutes=t, seconds=s) for s in range(n))
    return out


def endpoint(
    rt: Database, owner: UserView, *, repo: str, hardware: str, min_replicas: int, idle: int | None, hourly: str
) -> int:
    """An endpoint metered every hour of the period at one replica for the whole hour."""
    with rt.session() as s:
        e = InferenceEndpoint(
            name="tts-prod",
            owner_id=owner.id,
            model_repo=repo,
            hardware_id=hardware,
            min_replicas=min_replicas,
            max_replicas=1,
            scale_to_zero_minutes=idle,
            state="running",
            replicas=1,
            created_at=START - timedelta(days=1),
        )
        s.add(e)
        s.flush()
        for h in range(DAYS * 24):
            at = START + timedelta(hours=h)
            s.add(
                EndpointUptimeBucket(
                    endpoint_id=e.id,
                    owner_id=owner.id,
                    bucket_start=at,
                    bucket_end=at + timedelta(hours=1),
                    billed_minutes=60,
                    replica_minutes=60,
                    max_replicas=1,
                    hourly_usd=Decimal(hourly),
                    base_cost_usd=Decimal(hourly),
                    markup_pct=Decimal(100),
                    credits=30,
                    idempotency_key=f"uptime:{e.id}:{at:%Y-%m-%dT%H:%M}",
                )
            )
        return e.id


def synced(rt: Database) -> SpendQueries:
    sync_store(rt)
    return SpendQueries(store_for(rt), credit_usd=rt.settings.credit_usd, reporting_tz="UTC")
