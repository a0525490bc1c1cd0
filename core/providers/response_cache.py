"""The response cache: deterministic outputs served again without an upstream call.

Only requests whose answer is a function of their input are cached: text-to-speech of the same text, voice, model and
settings, and a transcription of the same audio by the same model. A hit is logged with `cache_hit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.catalog.types import ModelPrice
from core.db.models import ResponseCache
from core.providers.fingerprint import request_fingerprint
from core.providers.types import Category, GenerationRequest, ProviderResult
from core.redaction import redact_value
from core.usage import Usage

CACHEABLE = frozenset({Category.TTS, Category.SPEECH_TO_TEXT})
MAX_CACHED_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class CachedResponse:
    key: str
    usage: Usage
    text: str | None
    data: bytes | None
    mime: str | None


def cacheable(model: ModelPrice, request: GenerationRequest) -> bool:
    """Whether the cache may answer this request (a deterministic category, a real provider, no `no_cache`)."""
    return (
        Category(request.category) in CACHEABLE and model.provider != "sandbox" and not request.options.get("no_cache")
    )


def cache_key(model: ModelPrice, request: GenerationRequest) -> str | None:
    """The key of a cacheable request (its request fingerprint), or None when the request must reach the upstream."""
    return request_fingerprint(model, request) if cacheable(model, request) else None


def lookup(session_factory: sessionmaker[Session], key: str) -> CachedResponse | None:
    with session_factory() as s:
        row = s.get(ResponseCache, key)
        if row is None:
            return None
        return CachedResponse(
            key=row.key,
            usage=Usage.from_dict(row.usage),
            text=row.output_text,
            data=row.output_bytes,
            mime=row.output_mime,
        )


def record_hit(session_factory: sessionmaker[Session], key: str) -> None:
    with session_factory.begin() as s:
        s.execute(update(ResponseCache).where(ResponseCache.key == key).values(hits=ResponseCache.hits + 1))


def store(session_factory: sessionmaker[Session], key: str, model: ModelPrice, result: ProviderResult) -> bool:
    """Keep a successful, exactly measured answer; returns False when it is not kept (estimated, too big, a race)."""
    if result.usage.estimated or (result.data is not None and len(result.data) > MAX_CACHED_BYTES):
        return False
    if result.text is None and result.data is None:
        return False
    try:
        with session_factory.begin() as s:
            if s.scalar(select(ResponseCache.key).where(ResponseCache.key == key)) is not None:
                return False
            s.add(
                ResponseCache(
                    key=key,
                    provider=model.provider,
                    model_id=model.model_id,
                    usage=redact_value(result.usage.to_dict()),
                    output_text=redact_value(result.text),
                    output_bytes=result.data,
                    output_mime=result.mime,
                    hits=0,
                )
            )
    except IntegrityError:
        return False  # another call stored the same answer first
    return True
