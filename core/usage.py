"""What a provider call consumed, read from the upstream's response."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

UNREADABLE = "usage_unreadable"  # Usage.extra key: why an upstream's usage report could not be read


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Quantities of one call. `input_tokens` counts every input token, cached or not (OpenAI's convention):
    `cached_tokens` (cache reads) and `cache_write_tokens` are the parts of it priced at their own rates, and
    `cache_write_1h_tokens` is the part of the cache writes kept for an hour (Anthropic prices those higher)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    characters: int = 0
    seconds: Decimal = Decimal(0)
    images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    requests: int = 1
    estimated: bool = False  # true when the upstream did not state usage (a broken stream) and it was estimated
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "characters",
            "images",
            "requests",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"Usage.{name} cannot be negative")
        if not isinstance(self.seconds, Decimal):
            object.__setattr__(self, "seconds", Decimal(str(self.seconds)))
        if not self.seconds.is_finite() or self.seconds < 0:
            raise ValueError("Usage.seconds must be a finite, non-negative number")
        if self.cached_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cached and cache-write tokens are part of input_tokens and cannot exceed it")
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise ValueError("1-hour cache writes are part of cache_write_tokens and cannot exceed it")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = str(self.seconds)
        return {k: v for k, v in data.items() if v not in (None, {}, 0, Decimal(0), "0", False) or k == "requests"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "seconds" in known:
            known["seconds"] = Decimal(str(known["seconds"]))
        return cls(**known)
