"""The response cache is per user unless shared, and bounded by age and size (core.providers.response_cache)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from core.db import Database
from core.db.models import ResponseCache, utcnow
from core.providers import GenerationRequest
from core.providers.response_cache import evict
from tests.core.test_generate import Env, funded_user

MP3 = b"\xff\xfb\x90\x00" + bytes(413)


def _mp3() -> httpx.Response:
    return httpx.Response(200, content=MP3, headers={"content-type": "audio/mpeg"})


def _speak(env: Env, email: str) -> bool:
    return env.generate(email, "tts-1", GenerationRequest(category="tts", text="Good morning", voice="nova")).cache_hit


def test_one_users_cached_output_never_answers_another(runtime: Database) -> None:
    env = Env(runtime, [_mp3(), _mp3()])
    funded_user(runtime, email="ana@example.com")
    funded_user(runtime, email="bo@example.com")
    assert [_speak(env, "ana@example.com"), _speak(env, "bo@example.com"), _speak(env, "ana@example.com")] == [
        False,
        False,
        True,
    ]
    assert len(env.upstream.requests) == 2


def test_sharing_is_the_administrators_choice(runtime: Database) -> None:
    env = Env(runtime, [_mp3()], response_cache_shared=True)
    funded_user(runtime, email="ana@example.com")
    funded_user(runtime, email="bo@example.com")
    assert [_speak(env, "ana@example.com"), _speak(env, "bo@example.com")] == [False, True]
    assert len(env.upstream.requests) == 1


def test_an_entry_past_its_age_is_not_served(runtime: Database) -> None:
    env = Env(runtime, [_mp3(), _mp3()], response_cache_max_age_seconds=3600)
    funded_user(runtime, email="ana@example.com")
    assert not _speak(env, "ana@example.com")
    with runtime.session() as s:
        s.execute(update(ResponseCache).values(created_at=utcnow() - timedelta(hours=2)))
    assert not _speak(env, "ana@example.com")  # stale: asked again upstream, stored afresh
    assert _speak(env, "ana@example.com")
    assert len(env.upstream.requests) == 2


def test_a_cache_turned_off_stores_nothing(runtime: Database) -> None:
    env = Env(runtime, [_mp3(), _mp3()], response_cache_max_mb=0)
    funded_user(runtime, email="ana@example.com")
    assert [_speak(env, "ana@example.com"), _speak(env, "ana@example.com")] == [False, False]
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(ResponseCache)) == 0


def test_past_its_size_the_oldest_entries_go_first(runtime: Database) -> None:
    now = utcnow()
    with runtime.session() as s:
        for i in range(5):  # 1,000 bytes each, entry 4 the newest
            s.add(
                ResponseCache(
                    key=f"k{i}",
                    provider="openai",
                    model_id="tts-1",
                    created_at=now - timedelta(minutes=10 - i),
                    usage={"characters": 1},
                    output_bytes=bytes(1000),
                    hits=0,
                )
            )
    assert evict(runtime.session_factory, max_bytes=2_500, max_age_seconds=3600) == 3
    with runtime.session() as s:
        assert sorted(s.scalars(select(ResponseCache.key))) == ["k3", "k4"]
