"""HuggingFaceEndpointService on the local stand-in, on SQLite and PostgreSQL: lifecycle, events, consistency."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.billing import BillingService
from core.db import Database
from core.db.models import AuditLog, EndpointEvent, InferenceEndpoint
from core.endpoints import (
    EndpointConflictError,
    EndpointFailedError,
    EndpointNotFoundError,
    EndpointSpec,
    EndpointTimeoutError,
    EndpointUnavailableError,
    EndpointView,
    HuggingFaceEndpointService,
    InvalidEndpointNameError,
    ManualClock,
    OwnerOverdrawnError,
    UnknownEndpointError,
)
from core.errors import InvalidInputError, NotFoundError
from tests.core.endpoints.conftest import START, TIMINGS
from tests.core.endpoints.helpers import add_engineer, build
from tests.support.billing import overdraw_by_uptime


def count(rt: Database, model: type) -> int:
    with rt.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def create(service: HuggingFaceEndpointService, name: str = "my-audio-model", **kw: object) -> EndpointView:
    args = dict(
        endpoint_name=name,
        model_repo="facebook/mms-tts-eng",
        hardware_type="T4",
        min_replicas=0,
        max_replicas=1,
        scale_to_zero_minutes=15,
        owner="eng@example.com",
    )
    args.update(kw)
    return service.create_endpoint(**args)


def test_create_records_endpoint_price_first_event_and_audit(
    runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    view = create(service)
    assert (view.state, view.hardware_id, view.instance_type) == ("pending", "T4", "nvidia-t4")
    assert view.hourly_usd == Decimal("0.60")  # the catalog's price, what uptime is billed at
    assert view.owner_email == "eng@example.com"
    assert service.client.get("my-audio-model").state == "pending"
    events = service.events("my-audio-model")
    assert [(e.state, e.at) for e in events] == [("pending", START)]
    with runtime.session() as s:
        audit = s.scalars(select(AuditLog)).one()
        row = s.scalars(select(InferenceEndpoint)).one()
    assert (audit.action, audit.target, audit.actor) == ("endpoint.create", "my-audio-model", "eng@example.com")
    assert row.ai_model_id is not None  # matched to the catalog's dedicated entry for the repo


def test_hardware_by_hugging_faces_instance_type(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    view = create(service, hardware_type="nvidia-l4")
    assert (view.hardware_id, view.instance_type, view.hourly_usd) == ("L4", "nvidia-l4", Decimal("0.80"))
    assert service.client.get("my-audio-model").instance_type == "nvidia-l4"


def test_the_owner_defaults_to_the_person_the_service_acts_for(
    runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    add_engineer(runtime)
    add_engineer(runtime, "other@example.com")
    service, _ = build(runtime, tmp_path, clock)
    mine = service.acting_for("eng@example.com")
    assert mine.default_owner == "eng@example.com" and service.default_owner is None
    assert (mine.session_factory, mine.client, mine.clock) == (service.session_factory, service.client, service.clock)
    view = mine.create_endpoint(endpoint_name="mine", model_repo="facebook/mms-tts-eng", hardware_type="T4")
    assert view.owner_email == "eng@example.com"
    explicit = mine.create_endpoint("theirs", "facebook/mms-tts-eng", "T4", owner="other@example.com")
    assert explicit.owner_email == "other@example.com"  # an explicit owner still wins
    with pytest.raises(InvalidInputError, match="acting_for"):
        service.create_endpoint("nobodys", "facebook/mms-tts-eng", "T4")
    assert [v.name for v in service.list_endpoints()] == ["mine", "theirs"]


def test_the_view_answers_to_the_specifications_names(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    create(service)
    clock.advance(seconds=TIMINGS.pending_seconds + TIMINGS.initializing_seconds + 30)
    view = service.refresh("my-audio-model")
    assert (view.endpoint_name, view.status, view.endpoint_url) == (view.name, "running", view.url)
    assert view.endpoint_url and view.endpoint_url.startswith("https://")
    assert view.hourly_cost_usd == view.hourly_usd == Decimal("0.6")
    assert f"${view.hourly_cost_usd}/hr" == "$0.60/hr"  # dollars and cents, as the specification prints it


def test_refresh_records_each_change_with_the_api_time(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    create(service)
    clock.advance(seconds=TIMINGS.pending_seconds + 30)
    assert service.refresh("my-audio-model").state == "initializing"
    clock.advance(minutes=10)
    view = service.refresh("my-audio-model")
    assert (view.state, view.replicas) == ("running", 1)
    view = service.refresh("my-audio-model")  # no change: no new event
    states = [(e.state, e.at.strftime("%H:%M:%S")) for e in service.events("my-audio-model")]
    # dated by the API's updatedAt (10:01:00, 10:03:00), not by the polls (10:01:30, 10:11:30)
    assert states == [("pending", "10:00:00"), ("initializing", "10:01:00"), ("running", "10:03:00")]
    assert view.observed_at == clock()


def test_pause_resume_scale_to_zero_and_wait(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)
    create(service)
    assert service.wait_until("my-audio-model", "running", timeout=600, poll_seconds=30).state == "running"
    assert service.pause("my-audio-model").state == "paused"
    assert service.resume("my-audio-model").state == "initializing"
    assert service.wait_until("my-audio-model", "running", poll_seconds=30).replicas == 1
    assert service.resume("my-audio-model").state == "running"  # already running: a success, no error
    assert service.scale_to_zero("my-audio-model").state == "scaledToZero"
    board.inner.record_traffic("acme", "my-audio-model")
    assert service.refresh("my-audio-model").state == "initializing"
    states = [e.state for e in service.events("my-audio-model")]
    assert states == [
        "pending",
        "initializing",
        "running",
        "paused",
        "initializing",
        "running",
        "scaledToZero",
        "initializing",
    ]


def test_wait_until_times_out_and_reports_failure(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)
    create(service)
    with pytest.raises(EndpointTimeoutError, match="still"):
        service.wait_until("my-audio-model", "running", timeout=30, poll_seconds=10)
    board.inner.fail("acme", "my-audio-model", "CUDA out of memory")
    with pytest.raises(EndpointFailedError, match="failed"):
        service.wait_until("my-audio-model", "running", timeout=600)
    assert service.get("my-audio-model").state == "failed"


@pytest.mark.parametrize(
    ("kw", "error", "phrase"),
    [
        ({"name": "My_Model"}, InvalidEndpointNameError, "lowercase"),
        ({"name": "x" * 33}, InvalidEndpointNameError, "1-32"),
        ({"name": "-edge"}, InvalidEndpointNameError, "starting and ending"),
        ({"model_repo": "not a repo"}, InvalidInputError, "owner/name"),
        ({"hardware_type": "H100"}, NotFoundError, "choose one of"),
        ({"min_replicas": 2, "max_replicas": 1}, InvalidInputError, "Min replicas"),
        ({"max_replicas": 50}, InvalidInputError, "Max replicas"),
        ({"scale_to_zero_minutes": None}, InvalidInputError, "scale-to-zero"),
        ({"owner": "nobody@example.com"}, NotFoundError, "No user"),
        ({"owner": None}, InvalidInputError, "owner"),
    ],
)
def test_invalid_input_is_refused_before_calling_the_api(
    sqlite_runtime: Database, tmp_path: Path, clock: ManualClock, kw: dict, error: type, phrase: str
) -> None:
    add_engineer(sqlite_runtime)
    service, board = build(sqlite_runtime, tmp_path, clock)
    calls: list[str] = []
    board.before = lambda r: calls.append(r.method)
    name = kw.pop("name", "my-audio-model")
    with pytest.raises(error, match=phrase):
        create(service, name, **kw)
    assert [c for c in calls if c != "GET"] == []
    assert count(sqlite_runtime, InferenceEndpoint) == 0


def test_fixed_size_when_not_autoscaled(sqlite_runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(sqlite_runtime)
    service, _ = build(sqlite_runtime, tmp_path, clock)
    view = create(service, auto_scale=False, max_replicas=2)
    assert (view.min_replicas, view.max_replicas, view.scale_to_zero_minutes) == (2, 2, None)


def test_api_refusal_leaves_nothing_locally(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    # someone took the name on Hugging Face directly
    service.client.create(EndpointSpec(name="my-audio-model", repository="a/b", instance_type="nvidia-t4"))
    with pytest.raises(EndpointConflictError, match="already taken"):
        create(service)
    assert count(runtime, InferenceEndpoint) == 0
    assert count(runtime, EndpointEvent) == 0


def test_network_failure_on_create_leaves_nothing(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)

    def down(request: httpx.Request) -> None:
        raise httpx.ConnectError("network down", request=request)

    board.before = down
    with pytest.raises(EndpointUnavailableError):
        create(service)
    assert count(runtime, InferenceEndpoint) == 0


def test_database_failure_after_create_deletes_the_upstream_endpoint(
    sqlite_runtime: Database, tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_engineer(sqlite_runtime)
    service, _ = build(sqlite_runtime, tmp_path, clock)

    def broken_view(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "_view", broken_view)
    with pytest.raises(RuntimeError, match="disk full"):
        create(service)
    assert service.client.list() == []  # nobody pays for an endpoint we do not track
    assert count(sqlite_runtime, InferenceEndpoint) == 0


def test_failed_pause_leaves_local_state_as_the_api_has_it(
    runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)
    create(service)
    clock.advance(minutes=5)
    service.refresh("my-audio-model")

    def refuse(request: httpx.Request) -> None:
        raise httpx.ConnectError("network down", request=request)

    board.before = refuse  # the pause never reaches the API
    with pytest.raises(EndpointUnavailableError):
        service.pause("my-audio-model")
    board.before = None
    assert service.get("my-audio-model").state == "running" == service.client.get("my-audio-model").state

    def lost_reply(request: httpx.Request) -> None:
        if request.method == "POST":
            raise httpx.ReadTimeout("reply lost", request=request)

    board.after = lost_reply  # the pause is applied upstream but its reply is lost
    with pytest.raises(EndpointUnavailableError, match="may or may not"):
        service.pause("my-audio-model")
    assert service.get("my-audio-model").state == "paused" == service.client.get("my-audio-model").state


def test_delete_records_it_and_the_name_can_be_reused(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    first = create(service)
    clock.advance(minutes=5)
    deleted = service.delete("my-audio-model")
    assert (deleted.state, deleted.deleted_at) == ("deleted", clock())
    assert service.client.list() == []
    assert service.list_endpoints() == []
    with pytest.raises(UnknownEndpointError, match="was deleted"):
        service.pause("my-audio-model")
    second = create(service)
    assert second.id != first.id
    names = {v.name for v in service.list_endpoints(include_deleted=True)}
    assert names == {f"my-audio-model~deleted-{first.id}", "my-audio-model"}
    # the first endpoint's history is intact under its id
    assert [e.state for e in service.events() if e.endpoint_id == first.id][-1] == "deleted"


def test_delete_of_an_endpoint_already_gone_upstream(runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    create(service)
    service.client.delete("my-audio-model")  # deleted on Hugging Face's site
    report = service.refresh_all()
    assert "no longer lists" in report.errors["my-audio-model"]
    assert service.delete("my-audio-model").state == "deleted"


def test_unknown_endpoint_names(sqlite_runtime: Database, tmp_path: Path, clock: ManualClock) -> None:
    service, _ = build(sqlite_runtime, tmp_path, clock)
    with pytest.raises(UnknownEndpointError, match="endpoints list"):
        service.refresh("nope")


def test_hardware_options_merge_catalog_and_live_prices(
    sqlite_runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    service, board = build(sqlite_runtime, tmp_path, clock)
    options, problem = service.hardware_options()
    assert problem is None
    t4 = next(o for o in options if o.id == "T4")
    assert (t4.hourly_usd, t4.live_hourly_usd, t4.available) == (Decimal("0.60"), Decimal("0.5"), True)

    def down(request: httpx.Request) -> None:
        raise httpx.ConnectError("network down", request=request)

    board.before = down
    options, problem = service.hardware_options()
    assert problem and "Cannot reach" in problem
    assert all(o.live_hourly_usd is None and o.available is None for o in options)
    assert [o.id for o in options] == ["T4", "L4", "A10G", "A100"]


def test_a_repository_the_hub_does_not_know_creates_nothing(
    runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    from core.endpoints import RepositoryNotFoundError

    add_engineer(runtime)
    service, board = build(runtime, tmp_path, clock)
    asked: list[str] = []
    board.before = lambda request: asked.append(f"{request.method} {request.url.path}")
    with pytest.raises(RepositoryNotFoundError, match=r"'acme/typo-model'.*not found \(simulated"):
        create(service, model_repo="acme/typo-model")
    assert asked == ["GET /api/models/acme/typo-model"]  # checked first: no create reached the management API
    assert count(runtime, InferenceEndpoint) == 0 and service.client.list() == []


def test_an_overdrawn_owner_gets_no_new_or_resumed_endpoint(
    runtime: Database, tmp_path: Path, clock: ManualClock
) -> None:
    """Uptime is charged even past zero, so an overdrawn person (refused every call that costs a credit) could still
    start a GPU on their credits from the Endpoints page; now neither a create nor a resume is sent upstream."""
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    create(service)
    assert service.wait_until("my-audio-model", "running", timeout=600, poll_seconds=30).state == "running"
    assert service.pause("my-audio-model").state == "paused"
    ledger = BillingService(runtime.session_factory, runtime.settings)
    overdraw_by_uptime(ledger, "eng@example.com", 7)
    endpoints = count(runtime, InferenceEndpoint)
    with pytest.raises(
        OwnerOverdrawnError, match=r"Not created \(second\): eng@example\.com is overdrawn by 7 credits"
    ):
        create(service, "second")
    assert count(runtime, InferenceEndpoint) == endpoints
    with pytest.raises(EndpointNotFoundError):
        service.client.get("second")  # never asked for upstream
    with pytest.raises(OwnerOverdrawnError, match="Ask finance for a top-up of at least 7 credits first"):
        service.resume("my-audio-model")
    assert service.client.get("my-audio-model").state == "paused"
    ledger.grant("eng@example.com", 10)  # back above zero: both work again
    assert service.resume("my-audio-model").state == "initializing"
    assert create(service, "second").state == "pending"
