"""The local stand-in: same routes and payloads as the real API, and its state machine driven by a manual clock."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import httpx
import pytest

from core.endpoints import (
    EndpointAuthError,
    EndpointConflictError,
    EndpointNotFoundError,
    EndpointRequestError,
    EndpointSpec,
    HFEndpointsClient,
    LocalEndpointsTransport,
    ManualClock,
    RemoteEndpoint,
)
from core.endpoints.local import LOCAL_BASE_URL
from tests.core.endpoints.conftest import START, TIMINGS
from tests.core.endpoints.hf_shapes import endpoint_json

SPEC = EndpointSpec(
    name="my-audio-model",
    repository="facebook/mms-tts-eng",
    instance_type="nvidia-t4",
    min_replica=0,
    max_replica=2,
    scale_to_zero_timeout=15,
)


def test_payload_has_the_real_api_shape(local_client: HFEndpointsClient) -> None:
    created = local_client.create(SPEC)
    real = endpoint_json()
    assert set(created.raw) == set(real)
    for key in ("compute", "model", "provider", "status"):
        assert set(created.raw[key]) == set(real[key]), key
    assert set(created.raw["compute"]["scaling"]) == set(real["compute"]["scaling"])
    # and the body went in exactly as the client sends it to Hugging Face
    assert created.raw["compute"]["instanceType"] == "nvidia-t4"
    assert created.raw["model"]["repository"] == "facebook/mms-tts-eng"
    assert RemoteEndpoint.from_raw(created.raw).state == "pending"


def test_pending_initializing_running(local_client: HFEndpointsClient, clock: ManualClock) -> None:
    local_client.create(SPEC)
    assert local_client.get("my-audio-model").state == "pending"
    clock.advance(seconds=TIMINGS.pending_seconds)
    e = local_client.get("my-audio-model")
    assert (e.state, e.target_replica, e.ready_replica, e.url) == ("initializing", 1, 0, None)
    clock.advance(seconds=TIMINGS.initializing_seconds)
    e = local_client.get("my-audio-model")
    assert (e.state, e.ready_replica) == ("running", 1)
    assert e.url is not None and e.url.endswith(".invalid")  # says plainly it is not a real endpoint
    # updatedAt is the time of the transition, not of the poll
    clock.advance(minutes=5)
    assert local_client.get("my-audio-model").updated_at == START.replace(minute=3)


def test_transitions_happen_at_their_own_time_even_when_polled_late(
    local_client: HFEndpointsClient, clock: ManualClock
) -> None:
    local_client.create(SPEC)
    clock.advance(hours=2)  # nobody looked for two hours: running at 10:03, scaled to zero 15 idle minutes later
    e = local_client.get("my-audio-model")
    assert e.state == "scaledToZero"
    assert e.updated_at == START.replace(minute=18)


def test_scale_to_zero_after_idle_timeout_and_traffic_wakes_it(
    local_client: HFEndpointsClient, stand_in: LocalEndpointsTransport, clock: ManualClock
) -> None:
    local_client.create(SPEC)
    clock.advance(minutes=3)  # running at 10:03
    assert local_client.get("my-audio-model").state == "running"
    clock.advance(minutes=10)
    stand_in.record_traffic("acme", "my-audio-model")  # 10:13: idle timer restarts
    clock.advance(minutes=14)
    assert local_client.get("my-audio-model").state == "running"  # 10:27, only 14 idle minutes
    clock.advance(minutes=1)
    e = local_client.get("my-audio-model")
    assert (e.state, e.ready_replica, e.target_replica) == ("scaledToZero", 0, 0)
    # a request wakes it: cold start through initializing
    assert stand_in.record_traffic("acme", "my-audio-model", replicas=2) == "initializing"
    clock.advance(seconds=TIMINGS.initializing_seconds)
    e = local_client.get("my-audio-model")
    assert (e.state, e.ready_replica) == ("running", 2)


def test_min_replica_one_never_scales_to_zero(local_client: HFEndpointsClient, clock: ManualClock) -> None:
    local_client.create(EndpointSpec(name="always-on", repository="a/b", instance_type="nvidia-l4", min_replica=1))
    clock.advance(hours=10)
    assert local_client.get("always-on").state == "running"


def test_pause_resume_and_already_running(local_client: HFEndpointsClient, clock: ManualClock) -> None:
    local_client.create(SPEC)
    clock.advance(minutes=5)
    assert local_client.pause("my-audio-model").state == "paused"
    clock.advance(hours=3)
    assert local_client.get("my-audio-model").state == "paused"  # paused stays paused, idle or not
    assert local_client.resume("my-audio-model").state == "initializing"
    clock.advance(seconds=TIMINGS.initializing_seconds)
    assert local_client.get("my-audio-model").state == "running"
    # the stand-in answers 400 "already running" like HF; the client turns it into a success
    transport_reply = local_client.http.post(f"{LOCAL_BASE_URL}/endpoint/acme/my-audio-model/resume")
    assert transport_reply.status_code == 400 and "already running" in transport_reply.json()["error"]
    assert local_client.resume("my-audio-model").state == "running"


def test_scale_to_zero_action_and_refusal_when_paused(local_client: HFEndpointsClient, clock: ManualClock) -> None:
    local_client.create(SPEC)
    clock.advance(minutes=4)
    assert local_client.scale_to_zero("my-audio-model").state == "scaledToZero"
    local_client.pause("my-audio-model")
    with pytest.raises(EndpointRequestError, match="paused"):
        local_client.scale_to_zero("my-audio-model")


def test_failed_and_resume_from_failed(
    local_client: HFEndpointsClient, stand_in: LocalEndpointsTransport, clock: ManualClock
) -> None:
    local_client.create(SPEC)
    clock.advance(minutes=2)
    stand_in.fail("acme", "my-audio-model", "CUDA out of memory")
    e = local_client.get("my-audio-model")
    assert (e.state, e.message) == ("failed", "CUDA out of memory")
    assert local_client.resume("my-audio-model").state == "initializing"


def test_update_scaling_and_redeploy(local_client: HFEndpointsClient, clock: ManualClock) -> None:
    local_client.create(SPEC)
    clock.advance(minutes=5)
    e = local_client.update("my-audio-model", min_replica=2, max_replica=3)
    assert (e.state, e.min_replica, e.target_replica) == ("running", 2, 2)
    e = local_client.update("my-audio-model", instance_type="nvidia-l4")
    assert (e.state, e.instance_type) == ("updating", "nvidia-l4")
    clock.advance(seconds=TIMINGS.updating_seconds)
    assert local_client.get("my-audio-model").state == "running"
    with pytest.raises(EndpointRequestError, match="minReplica"):
        local_client.update("my-audio-model", min_replica=5)


def test_create_validation_conflict_and_delete(local_client: HFEndpointsClient) -> None:
    local_client.create(SPEC)
    with pytest.raises(EndpointConflictError, match="already taken"):
        local_client.create(SPEC)
    with pytest.raises(EndpointRequestError, match="lowercase"):
        local_client.create(EndpointSpec(name="Bad_Name", repository="a/b", instance_type="nvidia-t4"))
    with pytest.raises(EndpointRequestError, match="Unknown instance"):
        local_client.create(EndpointSpec(name="x", repository="a/b", instance_type="nvidia-h100"))
    with pytest.raises(EndpointRequestError, match="minReplica"):
        local_client.create(EndpointSpec(name="x", repository="a/b", instance_type="nvidia-t4", min_replica=2))
    local_client.delete("my-audio-model")
    with pytest.raises(EndpointNotFoundError):
        local_client.get("my-audio-model")
    assert local_client.list() == []


def test_hardware_lists_the_catalog_gpus_with_list_prices(local_client: HFEndpointsClient) -> None:
    offers = {o.instance_type: o for o in local_client.hardware()}
    assert set(offers) == {"nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-a100"}
    assert str(offers["nvidia-t4"].price_per_hour) == "0.5"  # Hugging Face's list price kept in hardware.yaml


def test_token_is_checked_when_configured(tmp_path: Path, clock: ManualClock) -> None:
    transport = LocalEndpointsTransport(tmp_path / "s.json", clock, token="secret-token")
    bad = HFEndpointsClient(httpx.Client(transport=transport), LOCAL_BASE_URL, "acme", "wrong")
    with pytest.raises(EndpointAuthError):
        bad.list()
    good = HFEndpointsClient(httpx.Client(transport=transport), LOCAL_BASE_URL, "acme", "secret-token")
    assert good.list() == []


def test_state_is_shared_through_the_file(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "shared.json"
    a = HFEndpointsClient(httpx.Client(transport=LocalEndpointsTransport(path, clock)), LOCAL_BASE_URL, "acme", None)
    b = HFEndpointsClient(httpx.Client(transport=LocalEndpointsTransport(path, clock)), LOCAL_BASE_URL, "acme", None)
    a.create(SPEC)
    assert [e.name for e in b.list()] == ["my-audio-model"]
    assert json.loads(path.read_text())["namespaces"]["acme"]["my-audio-model"]["state"] == "pending"


def _create_many(path: str, prefix: str, n: int) -> None:
    clock = ManualClock(START)
    client = HFEndpointsClient(
        httpx.Client(transport=LocalEndpointsTransport(Path(path), clock)), LOCAL_BASE_URL, "acme", None
    )
    for i in range(n):
        client.create(EndpointSpec(name=f"{prefix}-{i}", repository="a/b", instance_type="nvidia-t4"))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "race.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_create_many, args=(str(path), p, 25)) for p in ("app", "cli")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    names = json.loads(path.read_text())["namespaces"]["acme"]
    assert len(names) == 50  # without the lock, interleaved read-modify-write cycles drop creations


def test_the_stand_in_knows_the_catalogs_repositories_and_no_other(local_client) -> None:
    from core.endpoints import RepositoryNotFoundError

    info = local_client.model_info("facebook/MMS-TTS-eng")  # the Hub ignores case and answers the canonical name
    assert (info.id, info.pipeline_tag, info.simulated) == ("facebook/mms-tts-eng", "text-to-speech", True)
    with pytest.raises(RepositoryNotFoundError, match=r"not found \(simulated"):
        local_client.model_info("acme/not-a-model")
