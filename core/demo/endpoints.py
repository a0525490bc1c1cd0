"""A short endpoint history on the local stand-in, for the offline demo.

Nothing is written directly: two endpoints are created, used, paused and resumed through the service and the
stand-in exactly as the page would, with the clock wound back `days` days and moved forward step by step, then
metered into their owner's ledger. Only with `HF_ENDPOINTS_API_URL=local`: a demo never touches a real account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.billing import BillingService
from core.catalog.lookup import get_model
from core.config import Settings
from core.db.models import AIUsageLog, InferenceEndpoint, User, utcnow
from core.endpoints.client import HFEndpointsClient
from core.endpoints.clock import ManualClock
from core.endpoints.factory import LOCAL_NAMESPACE, is_local, local_state_path
from core.endpoints.lifecycle import HuggingFaceEndpointService
from core.endpoints.local import LOCAL_BASE_URL, LocalEndpointsTransport
from core.endpoints.metering import MeterReport, UptimeMeter
from core.errors import ConfigError, InvalidInputError

TTS = "demo-tts"
CHAT = "demo-chat"
WORK_START, WORK_END = 9, 18  # UTC hours of the simulated working day


@dataclass(frozen=True, kw_only=True)
class DemoReport:
    endpoints: list[str]
    events: int
    metered: MeterReport


def seed_endpoint_demo(
    session_factory: sessionmaker[Session],
    settings: Settings,
    billing: BillingService,
    *,
    days: int = 3,
    now: datetime | None = None,
) -> DemoReport:
    """Create `demo-tts` (T4, scales to zero when idle) and `demo-chat` (L4, one replica, paused at night, two at
    the midday peak) with `days` days of use, then meter them. Refuses if they exist or the API is not local."""
    if not is_local(settings):
        raise ConfigError("The endpoints demo runs only on the local stand-in: set HF_ENDPOINTS_API_URL=local.")
    if not 1 <= days <= 31:
        raise InvalidInputError(f"--days must be between 1 and 31, got {days}.")
    end = now or utcnow()
    start = (end - timedelta(days=days)).replace(hour=WORK_START - 1, minute=0, second=0, microsecond=0)
    with session_factory.begin() as s:
        if s.scalar(select(InferenceEndpoint.id).where(InferenceEndpoint.name.in_((TTS, CHAT)))):
            raise InvalidInputError("The endpoints demo is already there (demo-tts, demo-chat).")
        owner = s.scalar(select(User).where(User.role == "engineer").order_by(User.id)) or s.scalar(
            select(User).order_by(User.id)
        )
        if owner is None:
            raise InvalidInputError("Add a user first (or run `python -m core demo`): endpoints need an owner.")
        owner_email = owner.email

    clock = ManualClock(start)
    stand_in = LocalEndpointsTransport(local_state_path(settings), clock)
    namespace = settings.hf_namespace or LOCAL_NAMESPACE
    client = HFEndpointsClient(httpx.Client(transport=stand_in), LOCAL_BASE_URL, namespace, None)
    service = HuggingFaceEndpointService(session_factory, client, settings, clock=clock, sleep=clock.sleep)

    service.create_endpoint(CHAT, "meta-llama/Llama-3.1-8B-Instruct", "L4", True, 1, 2, None, owner_email)
    service.create_endpoint(TTS, "facebook/mms-tts-eng", "T4", True, 0, 1, 15, owner_email)
    service.wait_until(CHAT, "running", timeout=3600, poll_seconds=30)
    service.wait_until(TTS, "running", timeout=3600, poll_seconds=30)

    def step_to(t: datetime) -> None:
        clock.set(t)
        service.refresh_all()

    served: list[tuple[datetime, str]] = []  # (when, endpoint): the requests the demo's endpoints answer
    day = start.replace(hour=0)
    while True:
        day_start = day.replace(hour=WORK_START)
        if day_start >= end:
            break
        if day_start > start:
            step_to(day_start)
            if service.get(CHAT).state == "paused":
                service.resume(CHAT)
        for minute in range(0, (WORK_END - WORK_START) * 60, 20):  # a TTS request every 20 minutes, 12:00-14:00 off
            t = day_start + timedelta(minutes=minute)
            if t >= end:
                break
            if 12 <= t.hour < 14:
                continue
            step_to(t)
            stand_in.record_traffic(namespace, TTS)
            stand_in.record_traffic(namespace, CHAT, replicas=2 if 11 <= t.hour < 12 else 1)
            served.extend([(t, TTS), (t, CHAT)])
            step_to(t + timedelta(minutes=1))  # see a cold start while it initializes
        night = day.replace(hour=20)
        if night < end:
            step_to(night)
            service.pause(CHAT)
        day += timedelta(days=1)
    step_to(end)

    _log_requests(session_factory, owner_email, {n: service.get(n) for n in (CHAT, TTS)}, served)
    report = UptimeMeter(session_factory, billing, settings).meter(end)
    ids = {service.get(CHAT).id, service.get(TTS).id}
    events = sum(1 for e in service.events() if e.endpoint_id in ids)
    return DemoReport(endpoints=[CHAT, TTS], events=events, metered=report)


def _log_requests(
    session_factory: sessionmaker[Session], owner: str, endpoints: dict, served: list[tuple[datetime, str]]
) -> None:
    """Write the requests the endpoints answered to the usage log as real dedicated calls are logged (0 credits: the
    uptime is billed), so the break-even history and Optimize see what the endpoints served."""
    with session_factory.begin() as s:
        uid = s.scalar(select(User.id).where(User.email == owner))
        rows = []
        for at, name in served:
            view = endpoints[name]
            model = get_model(s, view.model_repo, "huggingface_endpoint")
            rows.append(
                AIUsageLog(
                    created_at=at,
                    user_id=uid,
                    ai_model_id=model.id,
                    provider=model.provider,
                    category=model.category,
                    deployment_type=model.deployment_type,
                    endpoint_id=view.id,
                    status="success",
                    latency_ms=900,
                    source="api",  # the apps that call a dedicated endpoint (None read "(unknown)" in spend by source)
                )
            )
        s.add_all(rows)
