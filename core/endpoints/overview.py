"""Everything the Endpoints page draws, in one call: fresh states, month-to-date cost and the state timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from core.endpoints.costs import EndpointCost, endpoint_costs, month_start_utc
from core.endpoints.service import HuggingFaceEndpointService
from core.endpoints.views import EndpointView, EventView


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


def state_segments(
    events: list[EventView], names: dict[int, str], start: datetime, end: datetime
) -> list[StateSegment]:
    """Turn the event history into [start, end) segments per endpoint, clipped to the window."""
    by_endpoint: dict[int, list[EventView]] = {}
    for e in sorted(events, key=lambda e: e.at):
        by_endpoint.setdefault(e.endpoint_id, []).append(e)
    out: list[StateSegment] = []
    for endpoint_id, evs in by_endpoint.items():
        for i, e in enumerate(evs):
            seg_end = evs[i + 1].at if i + 1 < len(evs) else end
            seg_start = max(e.at, start)
            seg_end = min(seg_end, end)
            if seg_end <= seg_start or e.state == "deleted":
                continue
            out.append(
                StateSegment(
                    endpoint=names.get(endpoint_id, str(endpoint_id)),
                    state=e.state,
                    replicas=e.replicas,
                    start=seg_start,
                    end=seg_end,
                )
            )
    return out


def endpoints_overview(
    service: HuggingFaceEndpointService, *, tz: ZoneInfo, now: datetime | None = None, refresh: bool = True
) -> EndpointsOverview:
    """Refresh every endpoint from the API (unless told not to), then price the month so far per endpoint."""
    errors: dict[str, str] = service.refresh_all().errors if refresh else {}
    now = now or service.clock()
    start = month_start_utc(now, tz)
    views = service.list_endpoints(include_deleted=True)
    with service.session_factory.begin() as s:
        costs = endpoint_costs(s, start, now)
    rows, deleted = [], []
    for v in views:
        row = EndpointRow(endpoint=v, cost=costs.get(v.id))
        if v.deleted_at is None:
            rows.append(row)
        elif v.deleted_at >= start and row.cost is not None:
            deleted.append(row)
    # the state in force at the month's start comes from the last earlier event
    events = service.events()
    names = {v.id: v.name for v in views}
    return EndpointsOverview(
        as_of=now,
        month_start=start,
        rows=rows,
        deleted_rows=deleted,
        refresh_errors=errors,
        segments=state_segments(events, names, start, now),
    )
