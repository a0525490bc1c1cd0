"""What a spend question is restricted to, and its translation into a SQL condition with bound parameters.

Every value a person typed (an email, a model id, a provider, a date) reaches DuckDB as a bound parameter; the SQL
text holds only placeholders and this module's own column names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.config import time_zone_names
from core.errors import InvalidInputError

STATUSES = ("success", "failed")


def zone(name: str) -> ZoneInfo:
    if name not in time_zone_names():  # `localtime` and the like open in Python, and fail in DuckDB's queries
        raise InvalidInputError(f"{name!r} is not a known time zone; use a name such as Europe/Paris or UTC.")
    return ZoneInfo(name)


def local_midnight_utc(day: date, tz: str) -> datetime:
    """The UTC instant (naive) at which `day` starts in time zone `tz`."""
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC).replace(tzinfo=None)


def _tuple(values: Iterable[Any] | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str | int):
        return (values,)
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True, kw_only=True)
class SpendFilter:
    """Restrictions on spend rows. Empty tuples mean "all". `start`/`end` are naive UTC instants (half-open);
    build them from calendar days in a time zone with `SpendFilter.dates(...)`."""

    start: datetime | None = None
    end: datetime | None = None
    users: tuple[str, ...] = ()  # emails (case-insensitive)
    user_ids: tuple[int, ...] = ()
    models: tuple[str, ...] = ()  # catalog model ids, e.g. "gpt-4o"
    providers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    deployment_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    include_sandbox: bool = False
    kinds: tuple[str, ...] = field(default=())  # usage | endpoint_uptime | refund
    api_keys: tuple[int, ...] = ()  # API key ids
    sources: tuple[str, ...] = ()  # playground | cli | api

    def __post_init__(self) -> None:
        for name in (
            "users",
            "user_ids",
            "models",
            "providers",
            "categories",
            "deployment_types",
            "statuses",
            "kinds",
            "api_keys",
            "sources",
        ):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise InvalidInputError(f"Unknown status {bad[0]!r}; choose from {', '.join(STATUSES)}.")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidInputError("The end of the date range must be after its start.")

    @classmethod
    def dates(cls, since: date | None = None, until: date | None = None, *, tz: str = "UTC", **kw: Any) -> SpendFilter:
        """Calendar days `since`..`until` (both included) in time zone `tz`."""
        if since is not None and until is not None and until < since:
            raise InvalidInputError(f"--until {until} is before --since {since}.")
        return cls(
            start=local_midnight_utc(since, tz) if since else None,
            end=local_midnight_utc(until + timedelta(days=1), tz) if until else None,
            **kw,
        )

    def between(self, start: datetime | None, end: datetime | None) -> SpendFilter:
        """The same filter over another time range (naive UTC, half-open)."""
        return replace(self, start=start, end=end)

    def day_range(self, tz: str) -> tuple[date | None, date | None] | None:
        """The time range as local days [first, after-last) when both bounds are midnights in `tz` (an unbounded
        side is None); None when a bound falls inside a day."""
        out: list[date | None] = []
        for bound in (self.start, self.end):
            if bound is None:
                out.append(None)
                continue
            local = bound.replace(tzinfo=UTC).astimezone(zone(tz))
            if local.time() != time(0) or local_midnight_utc(local.date(), tz) != bound:
                return None
            out.append(local.date())
        return out[0], out[1]

    def where(self, alias: str = "", *, days: tuple[date | None, date | None] | None = None) -> tuple[str, list[Any]]:
        """A SQL condition over the `spend` view's columns and its bound parameters; with `days` (from
        `day_range`), over `daily_spend`'s, whose `day` replaces `ts`."""
        p = f"{alias}." if alias else ""
        conds: list[str] = []
        params: list[Any] = []

        def isin(column: str, values: tuple[Any, ...]) -> None:
            conds.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

        lo, hi = days if days is not None else (self.start, self.end)
        col = "day" if days is not None else "ts"
        if lo is not None:
            conds.append(f"{p}{col} >= ?")
            params.append(lo)
        if hi is not None:
            conds.append(f"{p}{col} < ?")
            params.append(hi)
        if not self.include_sandbox:
            conds.append(f"NOT {p}sandbox")
        if self.user_ids:
            isin(f"{p}user_id", self.user_ids)
        if self.users:
            marks = ", ".join("?" * len(self.users))
            conds.append(f"{p}user_id IN (SELECT id FROM users WHERE lower(email) IN ({marks}))")  # noqa: S608 - placeholders only
            params.extend(u.strip().lower() for u in self.users)
        if self.models:
            marks = ", ".join("?" * len(self.models))
            conds.append(f"{p}ai_model_id IN (SELECT id FROM ai_models WHERE model_id IN ({marks}))")  # noqa: S608 - placeholders only
            params.extend(self.models)
        if self.providers:
            isin(f"{p}provider", self.providers)
        if self.categories:
            isin(f"{p}category", self.categories)
        if self.deployment_types:
            isin(f"{p}deployment_type", self.deployment_types)
        if self.statuses:
            isin(f"{p}status", self.statuses)
        if self.kinds:
            isin(f"{p}kind", self.kinds)
        if self.api_keys:
            isin(f"{p}api_key_id", self.api_keys)
        if self.sources:
            isin(f"{p}source", self.sources)
        return (" AND ".join(conds) if conds else "TRUE"), params
