"""The stretch of history Optimize and the pricing lab read, and how its figures become monthly ones.

A period is half-open [start, end) in naive UTC, on whole minutes. Dates given by a person are calendar days in the
reporting time zone (as on the Spend page); the period never runs past the analytics store's as-of time, since the
future has no traffic yet and counting it as idle would flatter scale-to-zero (the break-even history does the same).
Monthly figures are the period's scaled to 730 hours, the break-even simulator's month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from core.analytics.filters import local_midnight_utc, zone
from core.breakeven.defaults import MONTH_HOURS
from core.errors import InvalidInputError

DEFAULT_DAYS = 30
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Period:
    start: datetime  # naive UTC, a whole minute
    end: datetime  # exclusive
    tz: str = "UTC"  # the reporting time zone its days were picked in: the zone label() shows its times in

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInputError(
                f"The period ends ({_wall_clock(self.end, self.tz):%Y-%m-%d %H:%M}) before it starts "
                f"({_wall_clock(self.start, self.tz):%Y-%m-%d %H:%M}) {self.tz}: choose dates up to the last sync."
            )

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def hours(self) -> float:
        return self.minutes / 60.0

    @property
    def month_factor(self) -> Decimal:
        """Multiply a figure of the period by this to get a month's (730 hours)."""
        return Decimal(MONTH_HOURS * 60) / Decimal(self.minutes)

    def per_month(self, usd: Decimal) -> Decimal:
        """A period's dollars as dollars a month, to the cent."""
        return (usd * self.month_factor).quantize(CENT, rounding=ROUND_HALF_UP)

    def label(self) -> str:
        """The period in words, its times in its reporting time zone (named), as the pages and the command line
        show every other time: `2026-11-07 00:00 to 2026-12-06 08:53 America/New_York (29.4 days)`."""
        last = self.end - timedelta(microseconds=1)
        start, last = (_wall_clock(t, self.tz) for t in (self.start, last))
        return f"{start:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} {self.tz} ({self.hours / 24:,.1f} days)"

    @classmethod
    def of_days(cls, since: date | None, until: date | None, *, tz: str, as_of: datetime) -> Period:
        """Local days `since`..`until` (both included; by default the last 30 days up to the as-of day), cut after
        the minute of the store's as-of time."""
        zone(tz)
        if until is None:
            until = as_of.replace(tzinfo=zone("UTC")).astimezone(zone(tz)).date()
        if since is None:
            since = until - timedelta(days=DEFAULT_DAYS - 1)
        if until < since:
            raise InvalidInputError(f"--until {until} is before --since {since}.")
        start = local_midnight_utc(since, tz)
        current = as_of.replace(second=0, microsecond=0) + timedelta(minutes=1)  # the minute of the sync counts
        end = min(local_midnight_utc(until + timedelta(days=1), tz), current)
        if end <= start:
            raise InvalidInputError(
                f"The period starting {since} begins after the last sync ({_wall_clock(as_of, tz):%Y-%m-%d %H:%M} "
                f"{tz}): choose earlier dates or sync the analytics store."
            )
        return cls(start, end, tz)


def _wall_clock(at: datetime, tz: str) -> datetime:
    """A naive UTC instant as the naive wall-clock time in `tz`."""
    return at.replace(tzinfo=UTC).astimezone(zone(tz)).replace(tzinfo=None)
