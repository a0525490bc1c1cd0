"""When to retry an upstream call and how long to wait: Retry-After and rate-limit headers, else exponential backoff.

Only what is safe is retried: 429, 502, 503, 504, 529 and failures to connect. Nothing is retried once a successful
response has started (the upstream may already have done, and billed, the work).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504, 529})
# Errors raised before any response arrived: the request did not reach the model, so trying again is safe.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_IETF_RESET = re.compile(r"(?:^|[;,\s])(?:t|reset)=(\d+(?:\.\d+)?)")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.5  # seconds before the second try; doubles each time
    max_delay: float = 8.0  # cap of the exponential backoff
    jitter: float = 0.5  # up to this fraction of the delay is added at random, so clients do not retry in step
    max_retry_after: float = 30.0  # an upstream asking us to wait longer than this gets a RateLimitError instead
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay after failed try number `attempt` (1-based) when the upstream gave no hint."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay + rng.uniform(0, delay * self.jitter)


NO_RETRY = RetryPolicy(max_attempts=1)


def _duration(text: str) -> float | None:
    """OpenAI's reset format: "1s", "6m0s", "120ms", "1h2m3.5s"."""
    parts = _DURATION_PART.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after_seconds(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """How long the upstream asks us to wait, from its headers, or None when it does not say.

    Reads `retry-after-ms`, `retry-after` (seconds or an HTTP date), OpenAI's `x-ratelimit-reset-*` for the limit
    that is exhausted, and the IETF `ratelimit` header Hugging Face sends (`...;t=55` or `reset=55`).
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (ra := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                when = parsedate_to_datetime(ra)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                now = now or datetime.now(UTC)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - now).total_seconds())
    resets = []
    for kind in ("requests", "tokens"):
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        if reset is not None and remaining is not None and remaining.strip() == "0":
            seconds = _duration(reset)
            if seconds is None:
                try:
                    seconds = float(reset)
                except ValueError:
                    seconds = None
            if seconds is not None:
                resets.append(seconds)
    if resets:
        return max(resets)
    if (ietf := headers.get("ratelimit")) is not None and (m := _IETF_RESET.search(ietf)):
        return float(m.group(1))
    return None
