"""A small audio usage history with known figures, written through the billing service as real calls write it: the
specification's spend SQL (over the audio views) and `python -m core spend` must answer the same questions from it.

Everything counted by the views is inside the last 30 days; what they leave out is there on purpose: a chat call, a
sandbox call, a failed call, a call 40 days old, an endpoint uptime debit and a refund (the last two are ledger rows,
which the Spend figures count and the views do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import count

from sqlalchemy import update

from core.billing import BillingService, price_usage
from core.billing.types import Transaction, UsageRecord
from core.catalog import ModelPrice, get_model
from core.db import Database
from core.db.models import AIUsageLog, utcnow
from core.usage import Usage
from core.users import UserView, add_user


@dataclass(frozen=True)
class AudioHistory:
    ana: UserView  # markup 100%
    ben: UserView  # markup 50%
    models: dict[str, ModelPrice]  # by "provider/model_id"
    top_users: dict[int, int]  # user id -> credits of their audio calls in the last 30 days (what the views hold)
    top_models: dict[int, int]  # ai_models id -> the same per model
    uptime: Transaction  # ana's endpoint uptime debit for the dedicated TTS model (30 credits)
    refund: Transaction  # gives back ben's Bark call (2 credits)


def write_audio_history(rt: Database) -> AudioHistory:
    billing = BillingService(rt.session_factory, rt.settings)
    with rt.session() as s:
        ana = add_user(s, email="ana@example.com", name="Ana", role="pm", markup_pct=Decimal(100))
        ben = add_user(s, email="ben@example.com", name="Ben", role="pm", markup_pct=Decimal(50))
        models = {
            key: get_model(s, key.split("/", 1)[1], key.split("/", 1)[0])
            for key in (
                "huggingface/facebook/mms-tts-eng",
                "huggingface_endpoint/facebook/mms-tts-eng",
                "openai/whisper-1",
                "openai/gpt-4o-mini",
                "huggingface/suno/bark",
                "minimax/music-2.0",
                "minimax/voice-clone",
                "sandbox/sandbox-tts",
            )
        }
    for who in (ana, ben):
        billing.grant(who, 1_000)
    keys = (f"call-{n}" for n in count())

    def call(who: UserView, key: str, usage: Usage, **kw: object) -> int:
        model = models[key]
        record = UsageRecord(model=model, usage=usage, base_cost_usd=price_usage(model, usage), **kw)  # type: ignore[arg-type]
        hold = billing.reserve(who, 100, next(keys))
        if record.status == "failed":
            billing.release(hold, failure=record)
            return 0
        return billing.settle(hold, record).usage_id

    tts, whisper = "huggingface/facebook/mms-tts-eng", "openai/whisper-1"
    for _ in range(3):
        call(ana, tts, Usage(seconds=Decimal(30)))  # the specification's example: $0.003 -> 1 credit -> 2 credits
    call(ana, whisper, Usage(seconds=Decimal(60)))  # $0.006 -> 1 -> 2
    call(ana, "openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=1000))  # chat: not audio
    call(ana, "sandbox/sandbox-tts", Usage(characters=100), sandbox=True)  # simulated: not usage
    call(ana, whisper, Usage(seconds=Decimal(60)), status="failed", error="upstream 500")  # failed: not usage
    old = call(ana, tts, Usage(seconds=Decimal(30)))  # moved 40 days back below: outside the window
    with rt.session() as s:
        s.execute(update(AIUsageLog).where(AIUsageLog.id == old).values(created_at=utcnow() - timedelta(days=40)))
    bark = call(ben, "huggingface/suno/bark", Usage())  # $0.01 -> 1 -> ceil(1.5) = 2
    call(ben, "minimax/music-2.0", Usage())  # $0.035 -> 1 -> 2
    call(ben, "minimax/voice-clone", Usage())  # $1.50 -> 38 -> 57
    dedicated = models["huggingface_endpoint/facebook/mms-tts-eng"]
    uptime = billing.charge(
        ana,
        Decimal("0.60"),  # one T4 hour: 15 base credits, 30 at 100%
        idempotency_key="uptime:1:2026-12-01T10",
        description="endpoint uptime",
        kind="endpoint_uptime",
        metadata={"ai_model_id": dedicated.id, "model_repo": dedicated.model_id, "hardware": "T4"},
    )
    with rt.session() as s:
        bark_tx = s.get(AIUsageLog, bark).transaction_id  # type: ignore[union-attr]
    refund = billing.refund(bark_tx, "the audio was silent")
    m = {key: models[key].id for key in models}
    return AudioHistory(
        ana=ana,
        ben=ben,
        models=models,
        top_users={ana.id: 3 * 2 + 2, ben.id: 2 + 2 + 57},
        top_models={
            m[tts]: 6,
            m[whisper]: 2,
            m["huggingface/suno/bark"]: 2,
            m["minimax/music-2.0"]: 2,
            m["minimax/voice-clone"]: 57,
        },
        uptime=uptime,
        refund=refund,
    )
