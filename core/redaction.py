"""Known secret values, and their removal from any text the engine shows, stores or logs.

Every `core.config.Secret` registers its value here; every `CoreError` message passes through `redact`, so an upstream
that echoes a key back in its error message cannot carry it into the database, a log line or a page.
"""

from __future__ import annotations

import threading

_KNOWN: set[str] = set()
_LOCK = threading.Lock()
MIN_SECRET_CHARS = 8  # shorter values would redact ordinary words


def mask(value: str) -> str:
    return f"{value[:3]}…{value[-2:]}" if len(value) > MIN_SECRET_CHARS else "•••"


def register(value: str) -> None:
    if value and len(value) >= MIN_SECRET_CHARS:
        with _LOCK:
            _KNOWN.add(value)


def redact(text: str) -> str:
    """`text` with every known secret replaced by its masked form."""
    if not text or not _KNOWN:
        return text
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, mask(value))
    return text
