"""Times and days as every interface shows them.

The database stores instants as naive UTC. People read them in the reporting time zone (REPORTING_TZ), and every
label names that zone, so the Ledger, Spend, API keys, Endpoints, Budgets and the Overview put a call at 23:30 in
New York on the same day. A day a person picks (a filter's "from" and "to") is a local day too, the same one Spend
buckets by (`SpendFilter.dates`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from core.analytics.filters import local_midnight_utc, zone

__all__ = ["day_bounds", "labelled", "local_day", "stamp", "to_local", "to_local_all"]


def to_local(at: datetime | None, tz: str) -> datetime | None:
    """A stored instant (naive UTC; an aware one is converted) as the naive wall-clock time in time zone `tz`."""
    if at is None:
        return None
    aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return aware.astimezone(zone(tz)).replace(tzinfo=None)


def to_local_all(values: Iterable[datetime | None], tz: str) -> list[datetime | None]:
    """`to_local` of each value (a missing one stays missing)."""
    return [None if v is None or v != v else to_local(_datetime(v), tz) for v in values]  # v != v: NaN, NaT


def _datetime(v: object) -> datetime:
    to_py = getattr(v, "to_pydatetime", None)  # a pandas Timestamp
    return to_py() if callable(to_py) else v  # type: ignore[return-value]


def local_day(at: datetime, tz: str) -> date:
    """The day in time zone `tz` that a stored instant (naive UTC) falls on."""
    local = to_local(at, tz)
    assert local is not None
    return local.date()


def day_bounds(since: date | None, until: date | None, tz: str) -> tuple[datetime | None, datetime | None]:
    """Local days `since`..`until` (both included) in `tz` as naive UTC instants [start, end), the same bounds Spend
    uses for the same days; an open side stays None."""
    start = None if since is None else local_midnight_utc(since, tz)
    end = None if until is None else local_midnight_utc(until + timedelta(days=1), tz)
    return start, end


def stamp(at: datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored instant as text in `tz`, the zone named: `2026-12-01 18:30 America/New_York`."""
    return f"{to_local(at, tz):{fmt}} {tz}"


def labelled(label: str, tz: str) -> str:
    """A time column's or axis' label naming the zone its times are in: `at (America/New_York)`."""
    return f"{label} ({tz})"
