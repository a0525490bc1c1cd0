"""The per-key requests-per-minute limit (GCRA): in this process, and in Redis shared by several limiters (as several
gateway processes share it). With CI=true an unreachable Redis fails instead of skipping."""

from __future__ import annotations

import uuid

import pytest

from core.keys.rate_limit import InProcessRateLimiter, RateLimiterUnavailable, RedisRateLimiter


def test_in_process_allows_exactly_the_limit_then_says_when() -> None:
    limiter = InProcessRateLimiter()
    waits = [limiter.acquire("k", 5) for _ in range(7)]
    assert waits[:5] == [None] * 5
    assert all(w is not None and 0 < w <= 12 for w in waits[5:])
    assert limiter.acquire("other", 5) is None  # keys are independent


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
