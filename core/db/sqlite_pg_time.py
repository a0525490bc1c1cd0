"""PostgreSQL's `NOW() - INTERVAL '30 days'` on SQLite, so a report written for PostgreSQL runs on both databases.

The specification's spend SQL filters on `created_at > NOW() - INTERVAL '30 days'`. SQLite has no NOW() and cannot
parse an INTERVAL literal, so on every SQLite connection `make_engine` creates:
- NOW() returns the current UTC time as text in the form SQLAlchemy stores a DateTime in ('2026-12-01 10:00:00.000000'),
  so it compares with stored times as SQLite compares them: as text;
- `NOW()` or `CURRENT_TIMESTAMP`, plus or minus `INTERVAL '<n> <unit>'` (units second to year, singular or plural,
  several parts such as '1 day 2 hours'), is rewritten before it runs into SQLite's own date arithmetic,
  strftime('%Y-%m-%d %H:%M:%f', 'now', '-30 days'), text of the same shape ('2026-11-01 10:00:00.000').
Every other statement runs untouched (a substring search for "interval" or "INTERVAL" decides, in well under a
microsecond: the ledger's statements pass through here too). Stored times are naive UTC
(core.db.models.utcnow), which is what both sides of the comparison are here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidInputError

NOW_TEXT_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for DateTime on SQLite
_NOW_PLUS_INTERVAL = re.compile(
    r"(?:\bNOW\s*\(\s*\)|\bCURRENT_TIMESTAMP\b)\s*([-+])\s*INTERVAL\s*'([^']*)'", re.IGNORECASE
)
_PART = re.compile(r"\s*(\d+)\s*(second|minute|hour|day|week|month|year)s?\s*", re.IGNORECASE)


def utc_now_text() -> str:
    """NOW() on SQLite: the current UTC time, as stored times are written."""
    return datetime.now(UTC).strftime(NOW_TEXT_FORMAT)


def _modifiers(sign: str, interval: str) -> list[str]:
    """SQLite date modifiers for a PostgreSQL interval literal: '1 week 2 days' -> ['-7 days', '-2 days']."""
    parts, pos = [], 0
    for m in _PART.finditer(interval):
        if m.start() != pos:
            break
        pos = m.end()
        n, unit = int(m.group(1)), m.group(2).lower()
        if unit == "week":
            n, unit = n * 7, "day"
        parts.append(f"{sign}{n} {unit}s")
    if not parts or pos != len(interval):
        raise InvalidInputError(
            f"INTERVAL '{interval}' cannot run on SQLite: write it as whole numbers of seconds, minutes, hours, days, "
            "weeks, months or years (e.g. INTERVAL '30 days')."
        )
    return parts


def rewrite_now_intervals(statement: str) -> str:
    """`NOW() - INTERVAL '30 days'` -> `strftime('%Y-%m-%d %H:%M:%f', 'now', '-30 days')`; other text unchanged."""

    def replace(m: re.Match[str]) -> str:
        modifiers = ", ".join(f"'{mod}'" for mod in _modifiers(m.group(1), m.group(2)))
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', {modifiers})"

    return _NOW_PLUS_INTERVAL.sub(replace, statement)


def register_now(dbapi_conn: Any) -> None:
    """Give a sqlite3 connection a NOW() function (called from the engine's connect hook)."""
    dbapi_conn.create_function("now", 0, utc_now_text)


def before_cursor_execute(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
) -> tuple[str, Any]:
    """SQLAlchemy's `before_cursor_execute` hook (retval=True): rewrite interval arithmetic, pass the rest through."""
    if "nterval" in statement or "NTERVAL" in statement:  # a plain search: a regex would cost ~3 us per statement
        statement = rewrite_now_intervals(statement)
    return statement, parameters
