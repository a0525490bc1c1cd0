"""The response cache: deterministic outputs served again without an upstream call.

Only requests whose answer is a function of their input are cached: text-to-speech of the same text, voice, model and
settings, and a transcription of the same audio by the same model. A hit is logged with `cache_hit`.

Entries are per user: a transcription is the user's own audio, so one user's cached output never answers another's
request unless the administrator sets RESPONSE_CACHE_SHARED=true (then identical requests share one entry). The cache
is bounded: an entry older than RESPONSE_CACHE_MAX_AGE_SECONDS is not served (and is dropped), and past
RESPONSE_CACHE_MAX_MB of stored output the oldest entries are dropped first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.catalog.types import ModelPrice
from core.db.engine import write_session
from core.db.models import ResponseCache, utcnow
from core.providers.fingerprint import request_fingerprint
from core.providers.types import Category, GenerationRequest, ProviderResult
from core.redaction import redact_value
from core.usage import Usage

CACHEABLE = frozenset({Category.TTS, Category.SPEECH_TO_TEXT})
MB = 1024 * 1024
MAX_CACHED_BYTES = 20 * MB  # one entry


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


def entry_key(fingerprint: str, user_id: int, *, shared: bool) -> str:
    """The entry a request reads and writes: the request fingerprint itself when entries are shared, else a hash of
    it with the user's id, so nobody else's request can reach the entry."""
    if shared:
        return fingerprint
    return hashlib.sha256(f"{fingerprint}:user:{user_id}".encode()).hexdigest()


def lookup(session_factory: sessionmaker[Session], key: str, *, max_age_seconds: int) -> CachedResponse | None:
    with session_factory() as s:
        row = s.get(ResponseCache, key)
        if row is None or row.created_at < utcnow() - timedelta(seconds=max_age_seconds):
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


def store(
    session_factory: sessionmaker[Session],
    key: str,
    model: ModelPrice,
    result: ProviderResult,
    *,
    max_bytes: int = 500 * MB,
    max_age_seconds: int = 7 * 86_400,
) -> bool:
    """Keep a successful, exactly measured answer, then drop what is past the cache's age and size; returns False
    when it is not kept (estimated, too big, a race)."""
    limit = min(MAX_CACHED_BYTES, max_bytes)
    if result.usage.estimated or (result.data is not None and len(result.data) > limit):
        return False
    if result.text is None and result.data is None:
        return False
    size = len(result.data or b"") + len(result.text or "")
    evict(session_factory, max_bytes=max_bytes - size, max_age_seconds=max_age_seconds)  # room for it, stale ones out
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


def evict(session_factory: sessionmaker[Session], *, max_bytes: int, max_age_seconds: int) -> int:
    """Drop entries older than the age limit, then the oldest until the stored output fits `max_bytes`; returns how
    many were dropped."""
    size = func.coalesce(func.length(ResponseCache.output_bytes), 0) + func.coalesce(
        func.length(ResponseCache.output_text), 0
    )
    with write_session(session_factory) as s:
        dropped = s.execute(
            delete(ResponseCache).where(ResponseCache.created_at < utcnow() - timedelta(seconds=max_age_seconds))
        ).rowcount
        total, doomed = 0, []
        for key, n in s.execute(select(ResponseCache.key, size).order_by(ResponseCache.created_at.desc())):
            total += int(n or 0)
            if total > max_bytes:
                doomed.append(key)
        for i in range(0, len(doomed), 500):
            s.execute(delete(ResponseCache).where(ResponseCache.key.in_(doomed[i : i + 500])))
    return int(dropped or 0) + len(doomed)
