"""API keys for the HTTP gateway: making and recognising keys (`tokens`), storing them as hashes (`store`), and the
per-key request rate limit shared by every gateway process (`rate_limit`). Who may manage which keys is decided by
`core.services.keys`, not here."""

from core.keys.rate_limit import InProcessRateLimiter, RateLimiter, RedisRateLimiter, make_rate_limiter
from core.keys.store import ApiKeyView, KeyLimits, KeyOwner, NewApiKey
from core.keys.tokens import KEY_PREFIX, hash_key, new_key

__all__ = [
    "KEY_PREFIX",
    "ApiKeyView",
    "InProcessRateLimiter",
    "KeyLimits",
    "KeyOwner",
    "NewApiKey",
    "RateLimiter",
    "RedisRateLimiter",
    "hash_key",
    "make_rate_limiter",
    "new_key",
]
