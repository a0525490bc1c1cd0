"""The offline endpoints demo: real operations on the stand-in with a wound-back clock, metered into the ledger."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.access import SYSTEM
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction, EndpointUptimeBucket
from core.errors import ConfigError, InvalidInputError
from core.users import add_user
from tests.conftest import make_runtime, services_of

NOW = datetime(2026, 12, 4, 16, 30)


@pytest.fixture
def local_rt(tmp_path: Path) -> Database:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, hf_endpoints_api_url="local")
    with rt.session() as s:
        add_user(s, email="eng@example.com", name="Eng", role="engineer")
    yield rt
    rt.dispose()


def test_demo_history_is_consistent_and_metered(local_rt: Database) -> None:
    report = services_of(local_rt).endpoints.demo(SYSTEM, days=2, now=NOW)
    assert report.endpoints == ["demo-chat", "demo-tts"]
    assert report.metered.hours_charged > 0 and report.metered.credits > 0
    with local_rt.session() as s:
        buckets = list(s.scalars(select(EndpointUptimeBucket)))
        debits = list(
            s.scalars(select(CreditTransaction).where(CreditTransaction.transaction_type == "endpoint_uptime"))
        )
    assert len(buckets) == len(debits) == report.metered.hours_charged
    assert sum(b.credits for b in buckets) == -sum(d.amount for d in debits) == report.metered.credits
    # demo-chat keeps one replica all day and is paused at night: never more than 2 replicas, nothing after 20:00
    chat = [b for b in buckets if b.idempotency_key.startswith("uptime:1:")]
    assert chat and all(b.replica_minutes <= 120 for b in chat)
    assert all(8 <= b.bucket_start.hour < 20 for b in chat)  # created at 08:00 on day one, resumed at 09:00 after
    tts = [b for b in buckets if b.idempotency_key.startswith("uptime:2:")]
    assert tts and all(b.replica_minutes < 60 for b in tts if b.bucket_start.hour != 8)  # scales to zero between calls
    with local_rt.session() as s:  # what they served is in the usage log, as dedicated calls are logged (0 credits)
        served = list(s.scalars(select(AIUsageLog)))
    assert served and {u.endpoint_id for u in served} == {1, 2} and all(u.cost_credits == 0 for u in served)
    assert all(u.deployment_type == "dedicated" and 9 <= u.created_at.hour < 18 for u in served)
    with pytest.raises(InvalidInputError, match="already there"):
        services_of(local_rt).endpoints.demo(SYSTEM, days=2, now=NOW)


def test_demo_refuses_a_real_account(sqlite_runtime: Database) -> None:
    with pytest.raises(ConfigError, match="HF_ENDPOINTS_API_URL=local"):
        services_of(sqlite_runtime).endpoints.demo(SYSTEM)
