"""Request fingerprints: identical requests share one, anything that changes the answer changes it, the response
cache keeps its historical keys, and every usage row the generation flow writes carries its request's fingerprint."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from core.catalog.types import ModelPrice
from core.db import Database
from core.providers import GenerationRequest, UpstreamError
from core.providers.fingerprint import request_fingerprint
from core.providers.response_cache import cache_key
from tests.core.providers.fakes import json_response
from tests.core.test_generate import CHAT_OK, Env, funded_user


def _model(pk: int, model_id: str, category: str) -> ModelPrice:
    return ModelPrice(
        id=pk,
        provider="openai",
        model_id=model_id,
        model_name=model_id,
        category=category,
        deployment_type="api_proxy",
        cost_unit="request",
        per_request_usd=Decimal("0.01"),
    )


TTS = _model(1, "tts-1", "tts")
STT = _model(2, "whisper-1", "speech_to_text")
CHAT = _model(3, "gpt-4o-mini", "chat")


def test_cache_keys_are_unchanged_for_text_to_speech_and_transcription() -> None:
    # the keys the response cache computed before fingerprints existed: entries already stored keep matching
    tts = GenerationRequest(category="tts", text="Hello there", voice="nova", options={"speed": 1.25})
    stt = GenerationRequest(category="speech_to_text", audio=b"RIFF1234", options={"language": "en"})
    assert cache_key(TTS, tts) == "112697086bd2f8dc33f1a19edcd40b26a75c5ce05c28c1081cb2f25815eafe95"
    assert cache_key(STT, stt) == "d8f1cba527971e0233e841353589857c29662eb836ffc3d423a4d98aabbab7dc"
    assert cache_key(TTS, tts) == request_fingerprint(TTS, tts)


def test_a_request_that_skipped_the_cache_is_identical_to_the_one_it_repeats() -> None:
    plain = GenerationRequest(category="tts", text="Hello", voice="nova")
    skipped = GenerationRequest(category="tts", text="Hello", voice="nova", options={"no_cache": True})
    assert cache_key(TTS, skipped) is None
    assert request_fingerprint(TTS, skipped) == request_fingerprint(TTS, plain)


@pytest.mark.parametrize(
    "other",
    [
        GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.7),
        GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.0, max_tokens=50),
        GenerationRequest(category="chat", text="What is the capital of Spain?", temperature=0.0),
        GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.0, system="Be terse."),
        GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.0, stop=("\n",)),
        GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.0, top_p=0.5),
    ],
)
def test_chat_fingerprints_follow_what_changes_the_answer(other: GenerationRequest) -> None:
    base = GenerationRequest(category="chat", text="What is the capital of France?", temperature=0.0)
    same = GenerationRequest(category="chat", messages=({"role": "user", "content": "What is the capital of France?"},))
    assert request_fingerprint(CHAT, base) != request_fingerprint(CHAT, other)
    assert request_fingerprint(CHAT, same) == request_fingerprint(
        CHAT, GenerationRequest(category="chat", text="What is the capital of France?")
    )
    assert cache_key(CHAT, base) is None  # chat is not served from the cache


def test_the_same_text_on_another_model_is_another_request() -> None:
    req = GenerationRequest(category="tts", text="Hello", voice="nova")
    hd = _model(4, "tts-1-hd", "tts")
    assert request_fingerprint(TTS, req) != request_fingerprint(hd, req)


def test_usage_rows_carry_the_request_fingerprint(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK), json_response(200, CHAT_OK), json_response(500, {"error": "x"})])
    user = funded_user(runtime)
    req = GenerationRequest(category="chat", text="Capital of France?", max_tokens=400)
    env.generate(user, "gpt-4o", req)
    env.generate(user, "gpt-4o", req)
    with pytest.raises(UpstreamError):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="Other?", max_tokens=400))
    rows = env.usage_rows()
    assert [r.status for r in rows] == ["success", "success", "failed"]
    assert rows[0].request_fingerprint == rows[1].request_fingerprint != rows[2].request_fingerprint
    assert len(rows[0].request_fingerprint) == 64


def test_cache_hits_are_logged_with_the_fingerprint_of_the_request_they_repeat(runtime: Database) -> None:
    mp3 = b"\xff\xfb\x90\x00" + bytes(413)
    env = Env(runtime, [httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"})])
    user = funded_user(runtime)
    req = GenerationRequest(category="tts", text="Welcome aboard!", voice="nova")
    env.generate(user, "tts-1", req)
    env.generate(user, "tts-1", req)
    first, hit = env.usage_rows()
    assert hit.cache_hit and first.request_fingerprint == hit.request_fingerprint
