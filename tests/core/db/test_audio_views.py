"""The specification's `audio_models` and `audio_model_usage` views (migration 0004), on SQLite and PostgreSQL: what
they hold, what they leave out, and that they join as the specification's tables do."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Row, select, text, update

from core.billing import BillingService, price_usage
from core.billing.types import UsageRecord
from core.db import Database
from core.db.models import AUDIO_CATEGORIES, AIUsageLog, utcnow
from core.usage import Usage
from tests.support.audio_history import write_audio_history


def query(rt: Database, sql: str, **params: object) -> list[Row]:
    with rt.engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def test_audio_model_usage_holds_the_successful_paid_audio_calls(runtime: Database) -> None:
    h = write_audio_history(runtime)
    rows = query(
        runtime,
        "SELECT audio_model_id, user_id, duration_seconds, requests_count, base_cost_usd, cost_credits "
        "FROM audio_model_usage ORDER BY id",
    )
    tts = h.models["huggingface/facebook/mms-tts-eng"].id
    # ana: 3 TTS calls, 1 Whisper call and the 40-day-old TTS call; ben: Bark, music, voice clone. The chat call, the
    # sandbox call and the failed call are not audio usage; uptime and the refund are ledger rows, not calls.
    assert [(r.user_id, r.audio_model_id, int(r.cost_credits)) for r in rows] == [
        (h.ana.id, tts, 2),
        (h.ana.id, tts, 2),
        (h.ana.id, tts, 2),
        (h.ana.id, h.models["openai/whisper-1"].id, 2),
        (h.ana.id, tts, 2),
        (h.ben.id, h.models["huggingface/suno/bark"].id, 2),
        (h.ben.id, h.models["minimax/music-2.0"].id, 2),
        (h.ben.id, h.models["minimax/voice-clone"].id, 57),
    ]
    assert Decimal(str(rows[0].duration_seconds)) == 30 and rows[0].requests_count == 1
    assert Decimal(str(rows[0].base_cost_usd)) == Decimal("0.003")


def test_a_cache_hit_is_audio_usage_the_provider_billed_nothing_for(runtime: Database) -> None:
    """A transcription answered from the response cache, charged at catalog price (CHARGE_CACHE_HITS): its credits
    are usage, its provider cost is 0 (migration 0011), as the Spend page counts it."""
    h = write_audio_history(runtime)
    billing = BillingService(runtime.session_factory, runtime.settings)
    whisper = h.models["openai/whisper-1"]
    usage = Usage(seconds=Decimal(60))
    record = UsageRecord(model=whisper, usage=usage, base_cost_usd=price_usage(whisper, usage), cache_hit=True)
    hit = billing.settle(billing.reserve(h.ana, 100, "cached-call"), record).usage_id
    [row] = query(runtime, "SELECT base_cost_usd, cost_credits FROM audio_model_usage WHERE id = :id", id=hit)
    assert Decimal(str(row.base_cost_usd)) == 0 and int(row.cost_credits) == 2
    with runtime.session() as s:
        row = s.get(AIUsageLog, hit)
        # the row agrees: no provider cost, the catalog cost its charge was priced at kept in metadata
        assert row.base_cost_usd == 0 and row.meta["catalog_cost_usd"] == "0.006000000"


def test_audio_models_is_the_audio_catalog_in_the_specifications_terms(runtime: Database) -> None:
    with runtime.engine.connect() as conn:
        rows = {
            (r.provider, r.model_id): r
            for r in conn.execute(
                text(
                    "SELECT id, model_id, model_name, provider, deployment_type, category, base_cost_usd, cost_unit, "
                    "hf_endpoint_url, hardware_type, api_endpoint, api_method, status, created_at FROM audio_models"
                )
            )
        }
        categories = {c for (c,) in conn.execute(text("SELECT DISTINCT category FROM audio_models"))}
    assert categories == set(AUDIO_CATEGORIES)
    serverless = rows[("huggingface", "facebook/mms-tts-eng")]
    assert (serverless.deployment_type, serverless.cost_unit) == ("inference_api", "per_second")
    assert Decimal(str(serverless.base_cost_usd)) == Decimal("0.0001")  # the specification's HF audio rate
    dedicated = rows[("huggingface_endpoint", "facebook/mms-tts-eng")]
    assert (dedicated.cost_unit, dedicated.hardware_type) == ("per_hour", "nvidia-t4")
    assert Decimal(str(dedicated.base_cost_usd)) == Decimal("0.60")  # its hardware's hourly rate
    assert rows[("openai", "tts-1")].cost_unit == "per_character"
    assert rows[("minimax", "music-2.0")].cost_unit == "per_request"
    assert ("openai", "gpt-4o") not in rows


def test_usage_joins_models_as_the_specifications_tables_do(runtime: Database) -> None:
    h = write_audio_history(runtime)
    rows = query(
        runtime,
        "SELECT m.model_name, COUNT(*) AS usage_count, SUM(u.cost_credits) AS revenue "
        "FROM audio_model_usage u JOIN audio_models m ON u.audio_model_id = m.id "
        "WHERE u.user_id = :uid GROUP BY m.model_name ORDER BY m.model_name",
        uid=h.ana.id,
    )
    got = [(r.model_name, r.usage_count, int(r.revenue)) for r in rows]
    assert got == [("MMS TTS English", 4, 8), ("Whisper", 1, 2)]


@pytest.mark.parametrize("session_tz", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_the_30_day_window_is_exact_in_any_session_time_zone(runtime: Database, session_tz: str) -> None:
    """Stored times are naive UTC; on PostgreSQL the view reads them as UTC, so NOW() - INTERVAL '30 days' cuts at the
    same instant whatever time zone the session is in (a naive comparison would move the cut by the zone's offset)."""
    h = write_audio_history(runtime)
    tts = h.models["huggingface/facebook/mms-tts-eng"].id
    now = utcnow()
    with runtime.session() as s:
        ids = list(
            s.scalars(
                select(AIUsageLog.id).where(AIUsageLog.user_id == h.ana.id, AIUsageLog.ai_model_id == tts).limit(2)
            )
        )
        for usage_id, age in zip(ids, (timedelta(days=29, hours=22), timedelta(days=30, hours=2)), strict=True):
            s.execute(update(AIUsageLog).where(AIUsageLog.id == usage_id).values(created_at=now - age))
    with runtime.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL TIME ZONE '{session_tz}'"))  # this transaction only
        window = "SELECT id FROM audio_model_usage WHERE created_at > NOW() - INTERVAL '30 days'"
        inside = {r.id for r in conn.execute(text(window))}
    assert ids[0] in inside and ids[1] not in inside
