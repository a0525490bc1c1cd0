"""Everything the Endpoints page draws, in one call: fresh states, month-to-date cost and the state timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from core.endpoints.costs import EndpointCost, changes_for, endpoint_costs, month_start_utc
from core.endpoints.service import HuggingFaceEndpointService
from core.endpoints.types import DELETED
from core.endpoints.uptime import StateChange
from core.endpoints.views import EndpointView


@dataclass(frozen=True, kw_only=True)
class EndpointRow:
    endpoint: EndpointView
    cost: EndpointCost | None

    @property
    def month_to_date_usd(self) -> Decimal:
        return self.cost.total_usd if self.cost else Decimal(0)

    @property
    def breakeven_link(self) -> str:
        return "/breakeven?" + urlencode({"model": self.endpoint.model_repo, "profile": "history"})


@dataclass(frozen=True, kw_only=True)
class StateSegment:
    endpoint: str
    state: str
    replicas: int
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class EndpointsOverview:
    as_of: datetime
    month_start: datetime  # naive UTC start of the reporting month
    rows: list[EndpointRow]  # live endpoints, oldest first
    deleted_rows: list[EndpointRow]  # deleted this month, still carrying cost
    refresh_errors: dict[str, str]
    segments: list[StateSegment]  # this month's state timeline, every endpoint

    @property
    def month_metered_usd(self) -> Decimal:
        return sum((r.cost.metered_usd for r in self.all_rows if r.cost), Decimal(0))

    @property
    def month_accrued_usd(self) -> Decimal:
        return sum((r.cost.accrued_usd for r in self.all_rows if r.cost), Decimal(0))

    @property
    def month_total_usd(self) -> Decimal:
        return self.month_metered_usd + self.month_accrued_usd

    @property
    def month_credits(self) -> int:
        return sum(r.cost.metered_credits for r in self.all_rows if r.cost)

    @property
    def cost_per_hour_now_usd(self) -> Decimal:
        return sum((r.endpoint.cost_per_hour_now_usd for r in self.rows), Decimal(0))

    @property
    def all_rows(self) -> list[EndpointRow]:
        return [*self.rows, *self.deleted_rows]


def state_segments(name: str, changes: list[StateChange], start: datetime, end: datetime) -> list[StateSegment]:
    """One endpoint's history as [start, end) segments clipped to the window (deleted: no segment)."""
    ordered = sorted(changes, key=lambda c: c.at)
    out: list[StateSegment] = []
    for i, c in enumerate(ordered):
        seg_start = max(c.at, start)
        seg_end = min(ordered[i + 1].at if i + 1 < len(ordered) else end, end)
        if seg_end <= seg_start or c.state == DELETED:
            continue
        out.append(StateSegment(endpoint=name, state=c.state, replicas=c.replicas, start=seg_start, end=seg_end))
    return out


def endpoints_overview(
    service: HuggingFaceEndpointService, *, tz: ZoneInfo, now: datetime | None = None, refresh: bool = True
) -> EndpointsOverview:
    """Refresh every endpoint from the API (unless told not to), then price the month so far per endpoint."""
    errors: dict[str, str] = service.refresh_all().errors if refresh else {}
    now = now or service.clock()
    start = month_start_utc(now, tz)
    views = service.list_endpoints(include_deleted=True)
    rows, deleted, segments = [], [], []
    with service.session_factory.begin() as s:
        costs = endpoint_costs(s, start, now)
        for v in views:
            row = EndpointRow(endpoint=v, cost=costs.get(v.id))
            if v.deleted_at is None:
                rows.append(row)
            elif v.deleted_at >= start and row.cost is not None:
                deleted.append(row)
            else:
                continue
            segments += state_segments(v.name, changes_for(s, v.id, start, now), start, now)
    return EndpointsOverview(
        as_of=now,
        month_start=start,
        rows=rows,
        deleted_rows=deleted,
        refresh_errors=errors,
        segments=segments,
    )
