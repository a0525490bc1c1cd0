"""`HuggingFaceEndpointService`: the lifecycle of dedicated endpoints, kept consistent with the management API.

The API is the source of truth for an endpoint's state; the database keeps what the product needs on top of it:
the owner, the hardware's catalog price and the history of states (`endpoint_events`) that uptime is billed from.
Every operation calls the API first and writes locally only what the API confirmed, so a refused or failed call
leaves the database as it was; `refresh` brings it back in line with whatever the API says now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import event_loop
from core.catalog.lookup import get_hardware, list_hardware
from core.config import Settings
from core.db.engine import write_session
from core.db.models import AIModel, AuditLog, EndpointEvent, InferenceEndpoint, User
from core.endpoints.client import CREATE_REGION, CREATE_VENDOR, EndpointSpec, HFEndpointsClient, live_offers
from core.endpoints.clock import Clock, system_clock
from core.endpoints.errors import (
    EndpointConflictError,
    EndpointError,
    EndpointFailedError,
    EndpointNotFoundError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    InvalidEndpointNameError,
    OwnerOverdrawnError,
)
from core.endpoints.types import DELETED, STATES, TASK_BY_CATEGORY, RemoteEndpoint
from core.endpoints.views import EndpointView, EventView, HardwareOption, RefreshReport
from core.errors import InvalidInputError, NotFoundError
from core.users import get_user

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MAX_REPLICAS = 10  # a guard against a typo that would bill dozens of GPUs; raise it deliberately if needed
MAX_IDLE_MINUTES = 43_200  # 30 days: longer than any idle timeout the endpoints API takes


class UnknownEndpointError(NotFoundError):
    @classmethod
    def named(cls, name: str) -> UnknownEndpointError:
        return cls(f"No endpoint named {name!r} is managed here; `python -m core endpoints list` shows them.")


def validate_endpoint_name(name: str) -> str:
    """Hugging Face's rule: 1-32 lowercase letters, digits and hyphens, not starting or ending with a hyphen."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidEndpointNameError(
            f"{name!r} is not a valid endpoint name: use 1-32 lowercase letters, digits and hyphens, starting and "
            "ending with a letter or digit (e.g. my-audio-model)."
        )
    return name


class HuggingFaceEndpointService:
    """Create, observe, pause, resume, scale to zero and delete dedicated endpoints; record every state change.

    `default_owner` (a user's email or id) owns the endpoints `create_endpoint` makes without an explicit `owner`:
    whoever builds the service on a person's behalf (`acting_for(person)`) lets the specification's call, which names
    no owner, charge that person's credits."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: HFEndpointsClient,
        settings: Settings | None = None,
        *,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = event_loop.sleep,
        default_owner: str | int | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.settings = settings or Settings()
        self.clock = clock
        self.sleep = sleep
        self.default_owner = default_owner

    def acting_for(self, owner: str | int) -> HuggingFaceEndpointService:
        """The same service (database, API client, clock) with `owner` as the default owner of new endpoints."""
        return HuggingFaceEndpointService(
            self.session_factory, self.client, self.settings, clock=self.clock, sleep=self.sleep, default_owner=owner
        )

    @contextmanager
    def _session(self) -> Iterator[Session]:
        # endpoint rows are read, then written: hold SQLite's write lock from the start so concurrent commands wait
        with write_session(self.session_factory) as s:
            yield s

    # ---- reads ------------------------------------------------------------------------------------------------------
    def list_endpoints(self, *, include_deleted: bool = False) -> list[EndpointView]:
        with self._session() as s:
            stmt = select(InferenceEndpoint).order_by(InferenceEndpoint.created_at, InferenceEndpoint.id)
            if not include_deleted:
                stmt = stmt.where(InferenceEndpoint.deleted_at.is_(None))
            return [self._view(s, row) for row in s.scalars(stmt)]

    def get(self, name: str) -> EndpointView:
        with self._session() as s:
            return self._view(s, self._row(s, name))

    def events(self, name: str | None = None, *, since: datetime | None = None) -> list[EventView]:
        """The recorded state history (of one endpoint, or of all), oldest first."""
        with self._session() as s:
            stmt = select(EndpointEvent).order_by(EndpointEvent.at, EndpointEvent.id)
            if name is not None:
                stmt = stmt.where(EndpointEvent.endpoint_id == self._row(s, name).id)
            if since is not None:
                stmt = stmt.where(EndpointEvent.at >= since)
            return [
                EventView(endpoint_id=e.endpoint_id, at=e.at, state=e.state, replicas=e.replicas, note=e.note)
                for e in s.scalars(stmt)
            ]

    def hardware_options(self) -> tuple[list[HardwareOption], str | None]:
        """The catalog's hardware with what we bill, plus the live price from the API (and why it is missing)."""
        live: dict[str, Any] = {}
        problem: str | None = None
        try:
            live = live_offers(self.client.hardware(), CREATE_VENDOR, CREATE_REGION)
        except EndpointError as exc:
            problem = str(exc)
        with self._session() as s:
            catalog = list_hardware(s)
        options = []
        for hw in catalog:
            offer = live.get(hw.instance_type)
            options.append(
                HardwareOption(
                    id=hw.id,
                    instance_type=hw.instance_type,
                    gpu_memory_gb=hw.gpu_memory_gb,
                    hourly_usd=hw.hourly_usd,
                    list_hourly_usd=hw.list_hourly_usd,
                    live_hourly_usd=offer.price_per_hour if offer else None,
                    available=(offer.status == "available") if offer else (None if problem else False),
                )
            )
        return options, problem

    # ---- lifecycle --------------------------------------------------------------------------------------------------
    def create_endpoint(
        self,
        endpoint_name: str,
        model_repo: str,
        hardware_type: str,
        auto_scale: bool = True,
        min_replicas: int = 0,
        max_replicas: int = 1,
        scale_to_zero_minutes: int | None = 15,
        owner: str | int | None = None,
        *,
        task: str | None = None,
        actor: str | None = None,
    ) -> EndpointView:
        """Create the endpoint on the API, then record it (owner, hardware price, first state) locally.

        `hardware_type` is the catalog's id (T4) or Hugging Face's instance type (nvidia-t4); `owner` defaults to the
        service's `default_owner`."""
        name = validate_endpoint_name(endpoint_name)
        repo = (model_repo or "").strip()
        if not REPO_RE.match(repo):
            raise InvalidInputError(f"{model_repo!r} is not a Hub model repository; use the form owner/name.")
        if owner is None:
            owner = self.default_owner
        if owner is None:
            raise InvalidInputError(
                "An endpoint needs an owner: its uptime is charged to that user's credits. Pass owner=EMAIL, or use "
                "a service acting for the person creating it (HuggingFaceEndpointService.acting_for)."
            )
        if not auto_scale:
            min_replicas = max_replicas  # a fixed size: no autoscaling and no scale-to-zero
        if not 1 <= max_replicas <= MAX_REPLICAS:
            raise InvalidInputError(f"Max replicas must be between 1 and {MAX_REPLICAS}, got {max_replicas}.")
        if not 0 <= min_replicas <= max_replicas:
            raise InvalidInputError(
                f"Min replicas must be between 0 and max replicas ({max_replicas}), got {min_replicas}."
            )
        timeout: int | None = None
        if min_replicas == 0:
            if scale_to_zero_minutes is None or scale_to_zero_minutes < 1:
                raise InvalidInputError(
                    "With min replicas 0 the endpoint scales to zero when idle: give --scale-to-zero-minutes >= 1."
                )
            timeout = int(scale_to_zero_minutes)
            if timeout > MAX_IDLE_MINUTES:
                raise InvalidInputError(
                    f"Scale to zero after at most {MAX_IDLE_MINUTES:,} minutes (30 days), got {timeout:,}."
                )
        hub = self.client.model_info(repo)  # a repository the Hub does not know would only fail later, upstream
        repo = hub.id or repo

        with self._session() as s:
            owner_view = get_user(s, owner)
            _refuse_overdrawn(owner_view.email, owner_view.credit_balance, f"created ({name})")
            hardware = get_hardware(s, hardware_type)
            live = s.scalar(
                select(InferenceEndpoint).where(InferenceEndpoint.name == name, InferenceEndpoint.deleted_at.is_(None))
            )
            if live is not None:
                raise EndpointConflictError(f"An endpoint named {name!r} already exists here; choose another name.")
            catalog_model = s.scalar(
                select(AIModel).where(AIModel.model_id == repo, AIModel.deployment_type == "dedicated")
            )
            model_id = catalog_model.id if catalog_model else None
            task = task or (TASK_BY_CATEGORY.get(catalog_model.category) if catalog_model else hub.pipeline_tag)

        spec = EndpointSpec(
            name=name,
            repository=repo,
            instance_type=hardware.instance_type,
            min_replica=min_replicas,
            max_replica=max_replicas,
            scale_to_zero_timeout=timeout,
            task=task,
        )
        remote = self.client.create(spec)  # refused or unreachable: nothing was written locally
        now = self.clock()
        try:
            with self._session() as s:
                old = s.scalar(select(InferenceEndpoint).where(InferenceEndpoint.name == name))
                if old is not None:  # a deleted endpoint of the same name keeps its history under a new name
                    old.name = f"{name}~deleted-{old.id}"
                    s.flush()
                row = InferenceEndpoint(
                    name=name,
                    owner_id=owner_view.id,
                    model_repo=repo,
                    ai_model_id=model_id,
                    hardware_id=hardware.id,
                    min_replicas=min_replicas,
                    max_replicas=max_replicas,
                    scale_to_zero_minutes=timeout,
                    state=remote.state,
                    replicas=remote.billed_replicas,
                    url=remote.url,
                    vendor=remote.vendor or spec.vendor,
                    region=remote.region or spec.region,
                    created_at=now,
                    observed_at=now,
                )
                s.add(row)
                s.flush()
                s.add(
                    EndpointEvent(
                        endpoint_id=row.id, at=now, state=remote.state, replicas=remote.billed_replicas, note="created"
                    )
                )
                s.add(
                    AuditLog(
                        at=now,
                        actor=actor or owner_view.email,
                        action="endpoint.create",
                        target=name,
                        details={
                            "model_repo": repo,
                            "hardware": hardware.id,
                            "min_replicas": min_replicas,
                            "max_replicas": max_replicas,
                            "scale_to_zero_minutes": timeout,
                            "owner": owner_view.email,
                        },
                    )
                )
                s.flush()
                return self._view(s, row)
        except Exception:
            # The API created an endpoint we could not record: delete it so nobody pays for an untracked GPU.
            with suppress(EndpointError):
                self.client.delete(name)
            raise

    def refresh(self, name: str) -> EndpointView:
        """Ask the API for the endpoint's state and record a change (with its time) in `endpoint_events`."""
        with self._session() as s:
            self._live_row(s, name)
        remote = self.client.get(name)
        with self._session() as s:
            row = self._live_row(s, name)
            self._observe(s, row, remote, self.clock())
            return self._view(s, row)

    def refresh_all(self) -> RefreshReport:
        """Refresh every live endpoint with one list call; endpoints the API no longer lists are reported."""
        errors: dict[str, str] = {}
        try:
            remote = {r.name: r for r in self.client.list()}
        except EndpointError as exc:
            views = self.list_endpoints()
            return RefreshReport(endpoints=views, errors={v.name: str(exc) for v in views})
        now = self.clock()
        with self._session() as s:
            rows = list(s.scalars(select(InferenceEndpoint).where(InferenceEndpoint.deleted_at.is_(None))))
            for row in rows:
                found = remote.get(row.name)
                if found is None:
                    errors[row.name] = (
                        f"The API no longer lists {row.name!r}. If it was deleted on Hugging Face, "
                        f"`python -m core endpoints delete {row.name}` records that here."
                    )
                    continue
                self._observe(s, row, found, now)
            views = [self._view(s, row) for row in rows]
        return RefreshReport(endpoints=views, errors=errors)

    def pause(self, name: str) -> EndpointView:
        return self._action(name, self.client.pause)

    def resume(self, name: str) -> EndpointView:
        """Start a paused endpoint again; refused while its owner is overdrawn (its uptime would be theirs)."""
        with self._session() as s:
            owner = s.get(User, self._live_row(s, name).owner_id)
            if owner is not None:
                _refuse_overdrawn(owner.email, owner.credit_balance, f"resumed ({name})")
        return self._action(name, self.client.resume)

    def scale_to_zero(self, name: str) -> EndpointView:
        return self._action(name, self.client.scale_to_zero)

    def delete(self, name: str, *, actor: str | None = None) -> EndpointView:
        """Delete upstream, then record it. An endpoint the API does not know any more is recorded as deleted."""
        with self._session() as s:
            self._live_row(s, name)  # refuse unknown or already deleted names before calling the API
        self._try_refresh(name)  # record the state it ran in up to now (e.g. a start we had not seen yet)
        try:
            self.client.delete(name)
        except EndpointNotFoundError:
            pass  # already gone upstream: record what the API says
        except EndpointUnavailableError:
            self._try_refresh(name)
            raise
        now = self.clock()
        with self._session() as s:
            row = self._live_row(s, name)
            if row.state != DELETED:
                s.add(EndpointEvent(endpoint_id=row.id, at=now, state=DELETED, replicas=0, note="deleted"))
            row.state, row.replicas, row.url = DELETED, 0, None
            row.deleted_at = row.observed_at = now
            owner = s.get(User, row.owner_id)
            s.add(
                AuditLog(
                    at=now,
                    actor=actor or (owner.email if owner else "system"),
                    action="endpoint.delete",
                    target=name,
                    details={"endpoint_id": row.id, "model_repo": row.model_repo, "hardware": row.hardware_id},
                )
            )
            s.flush()
            return self._view(s, row)

    def wait_until(self, name: str, state: str, timeout: float = 900, *, poll_seconds: float = 5) -> EndpointView:
        """Refresh until the endpoint is in `state`; raise if it fails first or `timeout` seconds pass."""
        if state not in STATES:
            raise InvalidInputError(f"Unknown state {state!r}; one of: {', '.join(STATES)}.")
        deadline = self.clock() + timedelta(seconds=timeout)
        while True:
            view = self.refresh(name)
            if view.state == state:
                return view
            if view.state in ("failed", "updateFailed") and state not in ("failed", "updateFailed"):
                raise EndpointFailedError(
                    f"Endpoint {name!r} is {view.state} instead of {state}; see its logs on Hugging Face, then "
                    f"`python -m core endpoints resume {name}` or delete it."
                )
            if self.clock() >= deadline:
                raise EndpointTimeoutError(
                    f"Endpoint {name!r} is still {view.state} after {timeout:g} s (waiting for {state})."
                )
            self.sleep(poll_seconds)

    # ---- internals --------------------------------------------------------------------------------------------------
    def _action(self, name: str, call: Callable[[str], RemoteEndpoint]) -> EndpointView:
        with self._session() as s:
            self._live_row(s, name)
        # First record the state the action ends (e.g. a start since our last look, dated by the API), so the
        # history, and the uptime billed from it, does not jump straight from an old state to the new one.
        self._try_refresh(name)
        try:
            remote = call(name)
        except EndpointUnavailableError:
            # The call may have been applied before the connection broke: follow the API if it answers now.
            self._try_refresh(name)
            raise
        with self._session() as s:
            row = self._live_row(s, name)
            self._observe(s, row, remote, self.clock())
            return self._view(s, row)

    def _try_refresh(self, name: str) -> None:
        with suppress(EndpointError):
            self.refresh(name)

    def _observe(self, s: Session, row: InferenceEndpoint, remote: RemoteEndpoint, now: datetime) -> None:
        """Record what the API says. A change is dated by the API's `updatedAt` when it falls after our last look
        (the API's own time of the change); otherwise by now, the first moment we knew of it."""
        replicas = remote.billed_replicas
        if remote.state != row.state or replicas != row.replicas:
            last_seen = row.observed_at or row.created_at
            at = now
            if remote.updated_at is not None and last_seen < remote.updated_at <= now:
                at = remote.updated_at
            s.add(EndpointEvent(endpoint_id=row.id, at=at, state=remote.state, replicas=replicas, note=remote.message))
            row.state, row.replicas = remote.state, replicas
        row.url = remote.url
        row.min_replicas = remote.min_replica
        row.max_replicas = remote.max_replica or row.max_replicas
        row.scale_to_zero_minutes = remote.scale_to_zero_timeout
        row.observed_at = now
        s.flush()

    @staticmethod
    def _row(s: Session, name: str) -> InferenceEndpoint:
        row = s.scalar(select(InferenceEndpoint).where(InferenceEndpoint.name == name))
        if row is None:
            raise UnknownEndpointError.named(name)
        return row

    @classmethod
    def _live_row(cls, s: Session, name: str) -> InferenceEndpoint:
        row = cls._row(s, name)
        if row.deleted_at is not None:
            raise UnknownEndpointError(f"Endpoint {name!r} was deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC.")
        return row

    @staticmethod
    def _view(s: Session, row: InferenceEndpoint) -> EndpointView:
        owner = s.get(User, row.owner_id)
        hardware = get_hardware(s, row.hardware_id)
        return EndpointView(
            id=row.id,
            name=row.name,
            owner_id=row.owner_id,
            owner_email=owner.email if owner else "",
            model_repo=row.model_repo,
            hardware_id=row.hardware_id,
            instance_type=hardware.instance_type,
            hourly_usd=hardware.hourly_usd,
            min_replicas=row.min_replicas,
            max_replicas=row.max_replicas,
            scale_to_zero_minutes=row.scale_to_zero_minutes,
            state=row.state,
            replicas=row.replicas,
            url=row.url,
            vendor=row.vendor,
            region=row.region,
            created_at=row.created_at,
            deleted_at=row.deleted_at,
            observed_at=row.observed_at,
            metered_until=row.metered_until,
        )


def _refuse_overdrawn(owner: str, balance: int, what: str) -> None:
    if balance < 0:
        raise OwnerOverdrawnError(owner, balance, what)
