"""What an upstream reports is billed only within what the request allowed, on both databases: a claim above the
limit is capped and listed as disputed, a reply without the billed unit is never a $0 success, and a hold covers what
the provider can bill by its own counting rule (MiniMax counts CJK characters twice)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.billing.disputes import disputed_calls
from core.billing.errors import InsufficientCreditsError
from core.billing.ledger_check import check_ledger
from core.cli import main
from core.db import Database
from core.providers import GenerationRequest
from tests.core.providers.fakes import json_response, mp3_bytes, wav_bytes
from tests.core.providers.test_minimax import t2a_reply
from tests.core.test_generate import Env, funded_user

# OpenAI's chat completion shape, from a hostile or broken upstream: 50M completion tokens for max_tokens = 5.
INFLATED = {
    "id": "chatcmpl-inflated",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"}],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 50_000_000,
        "total_tokens": 50_000_009,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}
# gpt-4o-transcribe's usage shape (OpenAI API reference), as whisper-1 (priced per second) may answer it.
TOKEN_TRANSCRIPT = {
    "text": "Imagine the wildest idea that you've ever had.",
    "usage": {
        "type": "tokens",
        "input_tokens": 14,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 14},
        "output_tokens": 45,
        "total_tokens": 59,
    },
}


def test_output_above_max_tokens_is_capped_flagged_and_listed(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, INFLATED, {"x-request-id": "req_inflated"})])
    user = funded_user(runtime, credits=100)
    r = env.generate(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi", max_tokens=5))
    [hold] = env.holds()
    # before: 50M tokens at $0.60/1M = $30 -> 1,502 credits against a 2-credit hold
    assert r.usage.output_tokens == 5 and r.credits_charged == 2 <= hold.credits and env.balance(user) == 98
    [row] = env.usage_rows()
    assert row.usage_disputed is True and row.output_tokens == 5
    assert row.meta["usage_disputed"] == {"output_tokens": {"reported": 50_000_000, "billed": 5}}
    [call] = disputed_calls(runtime.engine)
    assert (call.usage_id, call.email, call.model_id, call.request_id) == (
        row.id,
        user.email,
        "gpt-4o-mini",
        "req_inflated",
    )
    assert call.figures["output_tokens"]["reported"] == 50_000_000
    assert disputed_calls(runtime.engine, user_id=user.id + 1) == []
    assert check_ledger(runtime.session_factory) == []


def test_a_report_within_limits_is_billed_as_reported_and_not_disputed(runtime: Database) -> None:
    honest = {**INFLATED, "usage": {**INFLATED["usage"], "completion_tokens": 5, "total_tokens": 14}}
    env = Env(runtime, [json_response(200, honest)])
    user = funded_user(runtime, credits=100)
    env.generate(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi", max_tokens=5))
    [row] = env.usage_rows()
    assert row.usage_disputed is False and "usage_disputed" not in (row.meta or {})
    assert disputed_calls(runtime.engine) == []


def test_per_second_transcription_answered_with_tokens_bills_the_measured_audio(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, TOKEN_TRANSCRIPT)])
    user = funded_user(runtime)
    req = GenerationRequest(category="speech_to_text", audio=wav_bytes(12.5, rate=8000), audio_filename="a.wav")
    r = env.generate(user, "whisper-1", req)
    # before: seconds 0 -> $0, a success that charged nothing
    assert r.usage.seconds == Decimal("12.500") and r.base_cost_usd == Decimal("0.001250000")
    assert r.credits_charged == 2 and not r.usage.estimated
    [row] = env.usage_rows()
    assert row.duration_seconds == Decimal("12.500") and row.input_tokens == 14 and row.output_tokens == 45


def test_unmeasurable_audio_answered_with_tokens_bills_the_bound_flagged_never_zero(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, TOKEN_TRANSCRIPT)])
    user = funded_user(runtime)
    webm = b"\x1a\x45\xdf\xa3" + bytes(9_996)  # WebM (whisper-1 accepts it; no decoder here measures it)
    r = env.generate(user, "whisper-1", GenerationRequest(category="speech_to_text", audio=webm))
    [hold] = env.holds()
    assert r.usage.seconds == Decimal(10) and r.usage.estimated and r.base_cost_usd > 0
    assert 0 < r.credits_charged <= hold.credits
    [row] = env.usage_rows()
    assert "stated no second usage" in row.meta["usage_estimated"]


def test_minimax_hold_counts_cjk_characters_twice(runtime: Database) -> None:
    text = "你好" * 2500  # 5,000 characters that MiniMax bills as 10,000
    env = Env(runtime, [json_response(200, t2a_reply(mp3_bytes(20), usage_characters=10_000))])
    # 10,000 x $0.0001 = $1.00 -> 25 credits -> 50 with markup. The hold used to count 5,000 (26 credits): a user
    # with 26 credits was let in and left at -24.
    poor = funded_user(runtime, credits=26, email="poor@example.com")
    with pytest.raises(InsufficientCreditsError, match="needs 50, you have 26"):
        env.generate(poor, "speech-02-hd", GenerationRequest(category="tts", text=text))
    assert env.upstream.requests == []
    user = funded_user(runtime, credits=50)
    r = env.generate(user, "speech-02-hd", GenerationRequest(category="tts", text=text))
    [hold] = env.holds()
    assert r.usage.characters == 10_000 and r.credits_charged == hold.credits == 50 and env.balance(user) == 0
    assert check_ledger(runtime.session_factory) == []


def test_ledger_disputed_cli(sqlite_runtime: Database, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    env = Env(sqlite_runtime, [json_response(200, INFLATED)])
    user = funded_user(sqlite_runtime, credits=100)
    env.generate(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi", max_tokens=5))
    monkeypatch.setenv("DATABASE_URL", sqlite_runtime.settings.database_url)
    assert main(["ledger", "disputed", "--user", user.email]) == 0
    out = capsys.readouterr().out
    assert "output_tokens 50000000 -> 5" in out and "openai/gpt-4o-mini" in out
    assert main(["ledger", "disputed", "--json"]) == 0
    import json

    [call] = json.loads(capsys.readouterr().out)
    assert call["figures"] == {"output_tokens": {"reported": 50_000_000, "billed": 5}} and call["credits_charged"] == 2
