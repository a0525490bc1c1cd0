"""Time for the endpoints code: naive UTC like the database. Tests drive a `ManualClock`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.db.models import utcnow

Clock = Callable[[], datetime]

system_clock: Clock = utcnow


class ManualClock:
    """A clock that only moves when told to; `sleep` advances it, so waiting loops run instantly in tests."""

    def __init__(self, start: datetime) -> None:
        self.now = start.replace(tzinfo=None)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, *, seconds: float = 0, minutes: float = 0, hours: float = 0) -> datetime:
        self.now += timedelta(seconds=seconds, minutes=minutes, hours=hours)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.replace(tzinfo=None)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds=seconds)
