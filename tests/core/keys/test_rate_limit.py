"""The per-key requests-per-minute limit (GCRA): in this process, and in Redis shared by several limiters (as several
gateway processes share it). With CI=true an unreachable Redis fails instead of skipping."""

from __future__ import annotations

import time
import uuid

import pytest

from core.keys.rate_limit import InProcessRateLimiter, RateLimiterUnavailable, RedisRateLimiter


def test_in_process_allows_exactly_the_limit_then_says_when() -> None:
    limiter = InProcessRateLimiter()
    waits = [limiter.acquire("k", 5) for _ in range(7)]
    assert waits[:5] == [None] * 5
    assert all(w is not None and 0 < w <= 12 for w in waits[5:])
    assert limiter.acquire("other", 5) is None  # keys are independent


@pytest.mark.parametrize("uptime_s", [1.0, 7_358.123_456_7, 91_234.567_891, 3_000_000.1])
def test_a_burst_of_exactly_the_limit_is_allowed_at_any_clock_reading(
    uptime_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock frozen, so the whole burst falls on one instant: all `rpm` requests pass and the next is refused.
    In floating-point seconds about half of these bursts lost their last request (and 1 in 700 a key's first)."""
    monkeypatch.setattr(time, "monotonic", lambda: uptime_s)
    monkeypatch.setattr(time, "monotonic_ns", lambda: int(uptime_s * 1e9))
    limiter = InProcessRateLimiter()
    for rpm in range(1, 121):
        key = f"k{rpm}"
        assert [limiter.acquire(key, rpm) for _ in range(rpm)] == [None] * rpm, rpm
        wait = limiter.acquire(key, rpm)
        assert wait is not None and 0 < wait <= 60 / rpm, (rpm, wait)


def test_redis_allows_a_burst_of_exactly_the_limit(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    run = uuid.uuid4().hex
    try:
        for rpm in (1, 3, 7, 13, 59, 60, 61, 97):
            key = f"test-{run}-{rpm}"
            assert [limiter.acquire(key, rpm) for _ in range(rpm)] == [None] * rpm, rpm
            wait = limiter.acquire(key, rpm)
            assert wait is not None and 0 < wait <= 60 / rpm, (rpm, wait)
    finally:
        limiter.close()


def test_redis_limit_is_shared_by_every_limiter(redis_url: str) -> None:
    key = f"test-{uuid.uuid4().hex}"
    a, b = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    try:
        waits = [(a if i % 2 else b).acquire(key, 6) for i in range(10)]
        assert waits[:6] == [None] * 6
        assert all(w is not None and 0 < w <= 10 for w in waits[6:])
    finally:
        a.close()
        b.close()


def test_an_unreachable_redis_refuses_with_a_sentence() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
    with pytest.raises(RateLimiterUnavailable, match="unset REDIS_URL"):
        limiter.acquire("k", 5)


def test_on_the_event_loop_redis_is_asked_from_a_thread(redis_url: str) -> None:
    """A call on the gateway's event loop (core.event_loop) asks Redis from a worker thread, so an unreachable Redis
    (a 2 s timeout) does not hold up the loop's other calls: a sleeping call on the loop ends meanwhile."""
    import asyncio
    import threading

    from core import event_loop
    from tests.support.aio import run

    limiter = RedisRateLimiter(redis_url)
    unreachable = RedisRateLimiter("redis://127.0.0.1:1/0")
    asked_from: list[bool] = []
    seen: list[str] = []
    script = limiter._script

    def recording(**kwargs: object) -> object:
        asked_from.append(threading.current_thread() is threading.main_thread() or event_loop.on_loop())
        return script(**kwargs)

    limiter._script = recording  # type: ignore[method-assign]

    def refused() -> None:
        with pytest.raises(RateLimiterUnavailable):
            unreachable.acquire("k", 5)
        seen.append("refused")

    def other() -> None:
        event_loop.sleep(0)
        seen.append("other")

    async def calls() -> float | None:
        await asyncio.gather(event_loop.run(refused), event_loop.run(other))
        return await event_loop.run(limiter.acquire, f"test-{uuid.uuid4().hex}", 5)

    try:
        assert run(calls()) is None
        assert asked_from == [False] and seen == ["other", "refused"]
    finally:
        limiter.close()
        unreachable.close()
