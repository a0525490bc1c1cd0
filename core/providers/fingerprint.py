"""What identifies identical requests: one hash of the provider, the model and everything in the request that shapes
the answer. Stored on every usage row (`request_fingerprint`), so Optimize can count repeated requests and what the
response cache would have saved; the response cache keys its entries with the same hash.

For text-to-speech and transcription the hashed parts are exactly the response cache's historical key (text or audio,
voice, options, endpoint), so cache entries written before this module existed still match. Other categories add the
fields that change their answer (messages and sampling for chat, size and quality for images, lyrics for music).
The `no_cache` option is left out: a request that skipped the cache is still identical to the one it repeats.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from core.catalog.types import ModelPrice
from core.providers.types import Category, GenerationRequest

SKIPPED_OPTIONS = frozenset({"no_cache"})


def _sha256(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()


def request_fingerprint(model: ModelPrice, request: GenerationRequest) -> str:
    """A hex sha256 that two requests share exactly when they ask the same model for the same thing."""
    category = Category(request.category)
    parts: dict[str, Any] = {
        "provider": model.provider,
        "model": model.model_id,
        "category": category.value,
        "voice": request.voice,
        "options": {k: v for k, v in sorted(request.options.items()) if k not in SKIPPED_OPTIONS},
        "endpoint": request.endpoint_url or model.hf_endpoint_url,
    }
    if category == Category.TTS:
        parts["text"] = request.text
    elif category == Category.SPEECH_TO_TEXT:
        parts["audio_sha256"] = _sha256(request.audio)
    elif category == Category.CHAT:
        parts.update(
            messages=request.chat_messages(),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            task=request.task,
        )
        if request.top_p is not None:  # only when set, as stop below
            parts["top_p"] = request.top_p
        if request.stop:  # only when set: the fingerprints of requests without stop sequences stay what they were
            parts["stop"] = list(request.stop)
        if request.response_format is not None:  # JSON output is another answer to the same messages
            parts["response_format"] = request.response_format
        if request.tools:  # as may the tools offered (a conversation's tool calls are in its messages)
            parts.update(tools=request.tools, tool_choice=request.tool_choice, parallel=request.parallel_tool_calls)
    elif category == Category.IMAGE:
        parts.update(text=request.text, size=request.size, quality=request.quality, n=request.n)
    elif category == Category.MUSIC:
        parts.update(text=request.text, lyrics=request.lyrics)
    else:  # voice cloning: the sample, the voice id and the preview sentence
        parts.update(text=request.text, audio_sha256=_sha256(request.audio))
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
