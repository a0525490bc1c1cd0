"""When a budget's period starts and ends: a calendar month in the reporting time zone, or once and for ever.

Stored times are naive UTC, so a month is the UTC instants between two local midnights (a December in Europe/Paris is
2026-11-30 23:00 to 2026-12-31 23:00 UTC); DST changes inside the month are carried by the zone's own offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

FOREVER = datetime(9999, 12, 31)  # the end of a one-off budget's only period
PERIODS = ("monthly", "once")


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # naive UTC, included
    end: datetime  # naive UTC, excluded; FOREVER for a one-off budget


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def _month_start(day: date, months_later: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


def current_window(period: str, now: datetime, tz: ZoneInfo, starts_at: datetime) -> Window:
    """The period that contains `now` (naive UTC): its local calendar month, or [starts_at, FOREVER) once."""
    if period == "once":
        return Window(starts_at, FOREVER)
    local_day = now.replace(tzinfo=UTC).astimezone(tz).date()
    first = _month_start(local_day)
    return Window(_local_midnight_utc(first, tz), _local_midnight_utc(_month_start(first, 1), tz))


def windows_to_prepare(period: str, now: datetime, tz: ZoneInfo, starts_at: datetime) -> list[Window]:
    """The current period and, for a monthly budget, the next one: counters made ahead of time are ready at the
    month's first call, so `reserve` rarely has to make one."""
    current = current_window(period, now, tz, starts_at)
    if period == "once":
        return [current]
    return [current, current_window(period, current.end, tz, starts_at)]


def resets_on(window: Window, tz: ZoneInfo) -> date | None:
    """The local date a new period starts (None: a one-off budget never resets)."""
    if window.end >= FOREVER:
        return None
    return window.end.replace(tzinfo=UTC).astimezone(tz).date()


def period_label(window: Window, tz: ZoneInfo) -> str:
    """'December 2026' for a month, 'since 2026-12-04' for a one-off budget."""
    local = window.start.replace(tzinfo=UTC).astimezone(tz)
    if window.end >= FOREVER:
        return f"since {local:%Y-%m-%d}"
    return f"{local:%B %Y}"
