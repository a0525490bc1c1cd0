"""Requests per minute per API key, shared by every gateway worker and instance.

The generic cell rate algorithm (GCRA): each key has a "theoretical arrival time" (TAT); a request is allowed when
TAT + 60/rpm is at most 60 s ahead of now, and moves TAT by 60/rpm. It allows `rpm` requests in any 60 s (bursts
included) and says exactly when the next one will be allowed (the Retry-After). With `REDIS_URL` the TAT lives in
Redis and one Lua script reads and moves it atomically, with Redis's own clock (instances need not agree on the
time); without it, in this process (then limits are per process: set REDIS_URL when running several).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from core import event_loop
from core.errors import ConfigError

# Time is counted in whole microseconds, with the interval rounded down: `rpm` intervals then never exceed the period,
# so a burst of exactly `rpm` is always allowed. (In floating-point seconds, (now + 60) - now - 60 can come out a
# few nanoseconds above 0 and refuse a key's very first request.)
_PERIOD_US = 60_000_000

# KEYS[1] the key's TAT (µs); ARGV[1] period (µs), ARGV[2] limit. Returns "0" when allowed, else the µs to wait.
# Lua numbers are doubles: integers of microseconds since 1970 (~2^51) are exact.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local interval = math.floor(period / tonumber(ARGV[2]))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - period
if wait > 0 then return string.format('%d', wait) end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return '0'
"""


class RateLimiter(Protocol):
    def acquire(self, key: str, per_minute: int) -> float | None:
        """None when a request under `key` is allowed now (and counted); else the seconds until one will be."""
        ...

    def close(self) -> None: ...


class InProcessRateLimiter:
    """GCRA in this process (one gateway process, tests, the app)."""

    def __init__(self) -> None:
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, per_minute: int) -> float | None:
        interval = _PERIOD_US // per_minute
        with self._lock:
            now = time.monotonic_ns() // 1000
            tat = max(self._tat.get(key, now), now)
            wait = tat + interval - now - _PERIOD_US
            if wait > 0:
                return wait / 1e6
            self._tat[key] = tat + interval
            return None

    def close(self) -> None:
        return None


class RedisRateLimiter:
    """GCRA in Redis, shared by every process that uses the same Redis."""

    def __init__(self, url: str, *, namespace: str = "ai-credits:rpm:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._script = self._redis.register_script(_GCRA_LUA)
        self._namespace = namespace
        self._url_shown = url.split("@")[-1]

    def acquire(self, key: str, per_minute: int) -> float | None:
        import redis

        try:
            # off the gateway's event loop: an unreachable Redis would hold up every call for its timeout
            out = event_loop.off_loop(self._script, keys=[self._namespace + key], args=[_PERIOD_US, per_minute])
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(
                f"The rate limiter's Redis ({self._url_shown}) did not answer ({type(exc).__name__}); check that it "
                "is running, or unset REDIS_URL to limit per process."
            ) from exc
        wait = int(out)
        return wait / 1e6 if wait > 0 else None

    def close(self) -> None:
        self._redis.close()


class RateLimiterUnavailable(ConfigError):
    """REDIS_URL is set but Redis cannot be reached: requests are refused rather than let through unlimited."""


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis when a URL is configured, else in this process."""
    return RedisRateLimiter(redis_url) if redis_url else InProcessRateLimiter()
