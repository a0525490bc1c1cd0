"""Known secret values, and their removal from any text the engine shows, stores or logs.

Every `core.config.Secret` registers its value here; every `CoreError` message passes through `redact`, and every
value written to the database (usage rows' request ids, errors and metadata, ledger descriptions and metadata, audit
details, cached outputs) through `redact_value`, so an upstream that echoes a key back, in an error message, a
response id, a finish reason or a mid-stream error event, cannot carry it into the database, a log line or a page.
"""

from __future__ import annotations

import threading
from typing import Any

_KNOWN: set[str] = set()
_LOCK = threading.Lock()
MIN_SECRET_CHARS = 8  # shorter values would redact ordinary words


def mask(value: str) -> str:
    return f"{value[:3]}…{value[-2:]}" if len(value) > MIN_SECRET_CHARS else "•••"


def register(value: str) -> None:
    if value and len(value) >= MIN_SECRET_CHARS:
        with _LOCK:
            _KNOWN.add(value)


def redact_value(value: Any) -> Any:
    """`value` with every string in it redacted (dicts, lists and tuples are walked; other values are kept)."""
    if not _KNOWN:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def redact(text: str) -> str:
    """`text` with every known secret replaced by its masked form."""
    if not text or not _KNOWN:
        return text
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, mask(value))
    return text
