"""Endpoints: dedicated Hugging Face Inference Endpoints, what each costs per hour and this month, their lifecycle,
and posting their uptime to the owners' ledgers.

Engineers and admins (the manage-endpoints capability) create, pause, resume, scale to zero, delete and meter; finance
and admins see every endpoint; anyone else sees the endpoints they own. Everything the Endpoints page draws comes from
`overview`, in one call: fresh states, month-to-date cost and the state timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from core.access import Caller, Capability, Principal, guarded
from core.db.models import utcnow
from core.demo.endpoints import DemoReport, seed_endpoint_demo
from core.endpoints.costs import EndpointCost, changes_for, endpoint_costs, month_start_utc
from core.endpoints.factory import configuration_problem, is_local
from core.endpoints.lifecycle import MAX_IDLE_MINUTES, MAX_REPLICAS, HuggingFaceEndpointService
from core.endpoints.metering import MeterReport, UptimeMeter
from core.endpoints.types import DELETED, STATES
from core.endpoints.uptime import StateChange
from core.endpoints.views import EndpointView, EventView, HardwareOption
from core.errors import PermissionDeniedError
from core.users import list_users

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "MAX_IDLE_MINUTES",
    "MAX_REPLICAS",
    "STATES",
    "DemoReport",
    "EndpointCost",
    "EndpointDetail",
    "EndpointRow",
    "EndpointService",
    "EndpointView",
    "EndpointsOverview",
    "EventView",
    "HardwareOption",
    "MeterReport",
    "StateSegment",
]


@dataclass(frozen=True, kw_only=True)
class EndpointRow:
    endpoint: EndpointView
    cost: EndpointCost | None

    @property
    def month_to_date_usd(self) -> Decimal:
        return self.cost.total_usd if self.cost else Decimal(0)

    @property
    def shown_month_to_date_usd(self) -> Decimal:
        """The month so far as people are shown it (its parts to the cent, summed): what a total of rows adds up."""
        return self.cost.shown_total_usd if self.cost else Decimal(0)

    @property
    def breakeven_query(self) -> dict[str, str]:
        """The Break-even page's query parameters for this endpoint: its model's real traffic and its own settings
        (hardware, replicas, idle timeout; no timeout when it never scales to zero)."""
        e = self.endpoint
        query = {
            "model": e.model_repo,
            "profile": "history",
            "hardware": e.hardware_id,
            "min_replicas": str(e.min_replicas),
            "max_replicas": str(e.max_replicas),
        }
        if e.scale_to_zero_minutes:
            query["idle"] = str(e.scale_to_zero_minutes)
        return query

    @property
    def breakeven_link(self) -> str:
        return "/breakeven?" + urlencode(self.breakeven_query)


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

    def _month_sum(self, part: str) -> Decimal:
        """One part of every endpoint's month cost (EndpointCost's `part`), summed over live and deleted endpoints."""
        return sum((getattr(r.cost, part) for r in self.all_rows if r.cost), Decimal(0))

    @property
    def month_metered_usd(self) -> Decimal:
        return self._month_sum("metered_usd")

    @property
    def month_accrued_usd(self) -> Decimal:
        return self._month_sum("accrued_usd")

    @property
    def month_total_usd(self) -> Decimal:
        return self.month_metered_usd + self.month_accrued_usd

    # The same figures as people are shown them: each endpoint's parts to the cent (EndpointCost.shown_*), summed, so
    # the printed total is the sum of the printed rows and of "posted" and "not yet metered" (--json keeps exact sums).
    @property
    def shown_month_metered_usd(self) -> Decimal:
        return self._month_sum("shown_metered_usd")

    @property
    def shown_month_accrued_usd(self) -> Decimal:
        return self._month_sum("shown_accrued_usd")

    @property
    def shown_month_total_usd(self) -> Decimal:
        return self.shown_month_metered_usd + self.shown_month_accrued_usd

    @property
    def shown_deleted_usd(self) -> Decimal:
        """What endpoints deleted this month cost in it (listed only with --all), as shown."""
        return sum((r.shown_month_to_date_usd for r in self.deleted_rows), Decimal(0))

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


@dataclass(frozen=True, kw_only=True)
class EndpointDetail:
    endpoint: EndpointView
    month_cost: EndpointCost | None
    events: list[EventView]


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


def _sees_all_endpoints(caller: Caller) -> bool:
    return caller.can(Capability.MANAGE_ENDPOINTS) or caller.can(Capability.VIEW_ALL_SPEND)


class EndpointService:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _manager(self) -> HuggingFaceEndpointService:
        return self._s.endpoint_manager()

    # ---- configuration -----------------------------------------------------------------------------------------------
    @guarded(None)
    def configuration_problem(self, caller: Caller) -> str | None:
        """Why endpoints cannot be managed with these settings (with how to fix it), or None."""
        return configuration_problem(self._s.settings)

    @guarded(None)
    def is_local(self, caller: Caller) -> bool:
        """Whether the management API is the offline stand-in (`HF_ENDPOINTS_API_URL=local`)."""
        return is_local(self._s.settings)

    # ---- reads -------------------------------------------------------------------------------------------------------
    @guarded(
        None,
        scoped=(
            Capability.MANAGE_ENDPOINTS,
            Capability.VIEW_ALL_SPEND,
        ),
    )
    def overview(self, caller: Caller, *, refresh: bool = True, now: datetime | None = None) -> EndpointsOverview:
        """Every endpoint (the caller's own unless they manage endpoints or see all spend), refreshed from the API."""
        ov = endpoints_overview(self._manager(), tz=self._s.settings.tz, now=now, refresh=refresh)
        if _sees_all_endpoints(caller):
            return ov
        mine = caller.user_id  # type: ignore[union-attr]
        names = {r.endpoint.name for r in ov.all_rows if r.endpoint.owner_id == mine}
        return EndpointsOverview(
            as_of=ov.as_of,
            month_start=ov.month_start,
            rows=[r for r in ov.rows if r.endpoint.name in names],
            deleted_rows=[r for r in ov.deleted_rows if r.endpoint.name in names],
            refresh_errors={k: v for k, v in ov.refresh_errors.items() if k in names},
            segments=[seg for seg in ov.segments if seg.endpoint in names],
        )

    @guarded(
        None,
        scoped=(
            Capability.MANAGE_ENDPOINTS,
            Capability.VIEW_ALL_SPEND,
        ),
    )
    def detail(self, caller: Caller, name: str) -> EndpointDetail:
        """One endpoint (refreshed unless deleted), its cost this month and its state history."""
        manager = self._manager()
        view = manager.get(name)
        if not _sees_all_endpoints(caller) and view.owner_id != caller.user_id:  # type: ignore[union-attr]
            raise PermissionDeniedError(
                f"Your role ({caller.role}) may see only the endpoints you own; {name!r} is not yours."  # type: ignore[union-attr]
            )
        if view.deleted_at is None:
            view = manager.refresh(name)
        now = manager.clock()
        with self._s.db.session() as s:
            cost = endpoint_costs(s, month_start_utc(now, self._s.settings.tz), now).get(view.id)
        return EndpointDetail(endpoint=view, month_cost=cost, events=manager.events(name))

    @guarded(None)
    def hardware_options(self, caller: Caller) -> tuple[list[HardwareOption], str | None]:
        """The catalog's hardware with what we bill, the live price from the API, and why that is missing."""
        return self._manager().hardware_options()

    @guarded(None, always=Capability.MANAGE_ENDPOINTS, scoped=(Capability.BILL_ENDPOINTS_TO_OTHERS,))
    def owners(self, caller: Caller) -> list[str]:
        """Whom the caller may bill an endpoint's uptime to: themselves; an admin (or the system) anyone, themselves
        first."""
        with self._s.db.session() as s:
            emails = [u.email for u in list_users(s)]
        own = getattr(caller, "email", None)
        if not caller.can(Capability.BILL_ENDPOINTS_TO_OTHERS):
            return [e for e in emails if e == own]
        return sorted(emails, key=lambda e: e != own)

    # ---- lifecycle ---------------------------------------------------------------------------------------------------
    @guarded(Capability.BILL_ENDPOINTS_TO_OTHERS, own="owner", always=Capability.MANAGE_ENDPOINTS)
    def create(
        self,
        caller: Caller,
        name: str,
        model_repo: str,
        hardware: str,
        *,
        owner: str | int | None = None,
        auto_scale: bool = True,
        min_replicas: int = 0,
        max_replicas: int = 1,
        scale_to_zero_minutes: int | None = 15,
        task: str | None = None,
        wait: bool = False,
    ) -> EndpointView:
        """Create an endpoint whose uptime is charged to `owner`'s credits (by default the caller's own; the system
        must name one); with `wait`, until it runs. `hardware` is T4, L4, A10G or A100, or Hugging Face's instance type
        (nvidia-t4, ...). Only an admin may name someone else as the owner: an engineer's endpoints are billed to
        themselves (a person names themselves; the command line does it for `--as` without `--owner`)."""
        manager = self._manager()
        if isinstance(caller, Principal):
            manager = manager.acting_for(caller.email)
        view = manager.create_endpoint(
            name,
            model_repo,
            hardware,
            auto_scale=auto_scale,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            scale_to_zero_minutes=scale_to_zero_minutes,
            owner=owner,
            task=task,
            actor=caller.actor,
        )
        return manager.wait_until(view.name, "running") if wait else view

    @guarded(Capability.MANAGE_ENDPOINTS)
    def pause(self, caller: Caller, name: str) -> EndpointView:
        return self._manager().pause(name)

    @guarded(Capability.MANAGE_ENDPOINTS)
    def resume(self, caller: Caller, name: str) -> EndpointView:
        return self._manager().resume(name)

    @guarded(Capability.MANAGE_ENDPOINTS)
    def scale_to_zero(self, caller: Caller, name: str) -> EndpointView:
        return self._manager().scale_to_zero(name)

    @guarded(Capability.MANAGE_ENDPOINTS)
    def refresh(self, caller: Caller, name: str) -> EndpointView:
        return self._manager().refresh(name)

    @guarded(Capability.MANAGE_ENDPOINTS)
    def delete(self, caller: Caller, name: str) -> EndpointView:
        return self._manager().delete(name, actor=caller.actor)

    @guarded(Capability.MANAGE_ENDPOINTS)
    def wait_until(self, caller: Caller, name: str, state: str = "running", *, timeout: float = 900) -> EndpointView:
        return self._manager().wait_until(name, state, timeout=timeout)

    # ---- billing the uptime ------------------------------------------------------------------------------------------
    @guarded(Capability.MANAGE_ENDPOINTS)
    def meter(self, caller: Caller, until: datetime | None = None, *, refresh: bool = True) -> MeterReport:
        """Post every complete, observed hour of uptime not yet charged to its owner (safe to repeat): refresh every
        endpoint from the API first when it is configured, so the history is known up to now."""
        warnings: dict[str, str] = {}
        if refresh:
            problem = configuration_problem(self._s.settings)
            if problem:
                warnings["*"] = problem + " Metered the recorded history only."
            else:
                warnings.update(self._manager().refresh_all().errors)
        self._s.billing.expire_holds()  # an hourly job: stored hold statuses stay true even for idle users
        meter = UptimeMeter(self._s.db.session_factory, self._s.billing, self._s.settings)
        report = meter.meter(until or utcnow())
        report.warnings.update(warnings)
        return report

    @guarded(Capability.MANAGE_ENDPOINTS)
    def demo(self, caller: Caller, *, days: int = 3, now: datetime | None = None) -> DemoReport:
        """A few days of history for two endpoints on the offline stand-in, metered (local mode only)."""
        return seed_endpoint_demo(self._s.db.session_factory, self._s.settings, self._s.billing, days=days, now=now)
