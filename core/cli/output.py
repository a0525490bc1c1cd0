"""Printing for the command line: JSON with exact decimals, aligned tables, a progress bar on stderr."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.services import decimal_text
from core.services.times import labelled, to_local


def json_time(at: datetime) -> str:
    """An instant as ISO 8601 with its offset, always UTC (`2026-12-01T10:00:00+00:00`): times are stored as naive
    UTC, and a time without an offset would be read as local by whoever parses it."""
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).isoformat()


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return decimal_text(obj)
    if isinstance(obj, datetime):
        return json_time(obj)
    if isinstance(obj, date):  # a calendar day has no time, nor an offset
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def print_json(data: Any) -> None:
    """`data` as JSON: money as exact decimal strings, times as ISO 8601 in UTC with the offset (`json_time`)."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str] | None = None, *, tz: str | None = None) -> None:
    """Rows as an aligned table. With `tz` (the reporting time zone), times (stored as naive UTC) print in that zone
    and each column holding times says which in its header (`created_at (America/New_York)`), as the pages do."""
    if not rows:
        print("(nothing to show)")
        return
    columns = columns or list(rows[0].keys())
    if tz is not None:
        timed = {c for c in columns if any(isinstance(r.get(c), datetime) for r in rows)}
        rows = [{c: to_local(v, tz) if c in timed else v for c, v in r.items()} for r in rows]
        headers = [labelled(c, tz) if c in timed else c for c in columns]
    else:
        headers = list(columns)
    text = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in text)) for i, h in enumerate(headers)]
    print("  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


# Bidirectional overrides and isolates reorder what follows them on a terminal (a note could make "+5" read "5+").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` with its control characters written out (`\\n`, `\\x1b`, `\\u202e`): a note or a description is free
    text, and printed raw an escape sequence would recolour or rewrite the terminal and a newline split a table row."""
    return "".join(
        repr(c)[1:-1]
        if unicodedata.category(c) == "Cc"
        else f"\\u{ord(c):04x}"
        if c in BIDI_CONTROLS or unicodedata.category(c) in ("Zl", "Zp")
        else c
        for c in text
    )


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return f"{v.normalize():f}" if v == v.to_integral_value() or abs(v) >= 1 else f"{v:f}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return printable(str(v))


class ProgressBar:
    """A small stderr progress bar (no dependency); silent when stderr is not a terminal unless forced."""

    def __init__(self, label: str, *, enabled: bool | None = None, width: int = 30) -> None:
        self.label = label
        self.width = width
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        sys.stderr.write(f"\r{self.label} [{bar:<{self.width}}] {done:,}/{total:,} {now - self.started:5.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
