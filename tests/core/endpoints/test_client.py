"""HFEndpointsClient against MockTransport handlers that assert the exact requests and reply with HF's shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from core.config import Secret
from core.endpoints import (
    EndpointAuthError,
    EndpointConflictError,
    EndpointNotFoundError,
    EndpointPermissionError,
    EndpointRequestError,
    EndpointSpec,
    EndpointUnavailableError,
    HFEndpointsClient,
)
from core.endpoints.client import CREATE_REGION, CREATE_VENDOR, live_offers
from tests.core.endpoints.hf_shapes import endpoint_json, provider_json

BASE = "https://api.endpoints.huggingface.cloud/v2"
TOKEN = "hf_test_token_123456"


def client_with(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[HFEndpointsClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.Client(transport=httpx.MockTransport(record))
    return HFEndpointsClient(http, BASE, "acme", Secret(TOKEN)), seen


def assert_auth(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/json"


def test_create_sends_the_documented_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert str(request.url) == f"{BASE}/endpoint/acme"
        assert request.headers["content-type"] == "application/json"
        assert_auth(request)
        return httpx.Response(200, json=endpoint_json(state="pending"))

    client, seen = client_with(handler)
    remote = client.create(
        EndpointSpec(
            name="my-audio-model",
            repository="facebook/mms-tts-eng",
            instance_type="nvidia-t4",
            min_replica=0,
            max_replica=1,
            scale_to_zero_timeout=15,
            task="text-to-speech",
        )
    )
    assert json.loads(seen[0].content) == {
        "name": "my-audio-model",
        "type": "authenticated",
        "compute": {
            "accelerator": "gpu",
            "instanceType": "nvidia-t4",
            "instanceSize": "x1",
            "scaling": {"minReplica": 0, "maxReplica": 1, "scaleToZeroTimeout": 15},
        },
        "model": {
            "repository": "facebook/mms-tts-eng",
            "framework": "pytorch",
            "image": {"huggingface": {}},
            "task": "text-to-speech",
        },
        "provider": {"vendor": "aws", "region": "us-east-1"},
    }
    assert remote.state == "pending"
    assert remote.instance_type == "nvidia-t4"
    assert remote.scale_to_zero_timeout == 15


def test_list_get_and_parsing_of_status() -> None:
    running = endpoint_json(
        state="running", ready=2, target=2, url="https://x.us-east-1.aws.endpoints.huggingface.cloud"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert_auth(request)
        if request.url.path == "/v2/endpoint/acme":
            return httpx.Response(200, json={"items": [running, endpoint_json("other", state="paused")]})
        assert request.url.path == "/v2/endpoint/acme/my-audio-model"
        return httpx.Response(200, json=running)

    client, _ = client_with(handler)
    items = client.list()
    assert [(e.name, e.state) for e in items] == [("my-audio-model", "running"), ("other", "paused")]
    one = client.get("my-audio-model")
    assert one.url and one.url.startswith("https://x.")
    assert (one.ready_replica, one.target_replica, one.billed_replicas) == (2, 2, 2)
    assert one.updated_at is not None and one.updated_at.tzinfo is None  # naive UTC like the database
    assert items[1].billed_replicas == 0


@pytest.mark.parametrize(
    ("call", "method", "path"),
    [
        ("pause", "POST", "/v2/endpoint/acme/my-audio-model/pause"),
        ("resume", "POST", "/v2/endpoint/acme/my-audio-model/resume"),
        ("scale_to_zero", "POST", "/v2/endpoint/acme/my-audio-model/scale-to-zero"),
        ("delete", "DELETE", "/v2/endpoint/acme/my-audio-model"),
    ],
)
def test_actions_use_the_documented_routes(call: str, method: str, path: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == (method, path)
        assert request.content == b""
        assert_auth(request)
        return httpx.Response(200, json=endpoint_json(state="paused"))

    client, seen = client_with(handler)
    getattr(client, call)("my-audio-model")
    assert len(seen) == 1


def test_update_puts_only_the_fields_given() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("PUT", "/v2/endpoint/acme/my-audio-model")
        assert_auth(request)
        return httpx.Response(200, json=endpoint_json(state="running", max_replica=3))

    client, seen = client_with(handler)
    client.update("my-audio-model", max_replica=3, scale_to_zero_timeout=30)
    assert json.loads(seen[0].content) == {"compute": {"scaling": {"maxReplica": 3, "scaleToZeroTimeout": 30}}}
    client.update("my-audio-model", instance_type="nvidia-l4", revision="abc")
    assert json.loads(seen[1].content) == {"compute": {"instanceType": "nvidia-l4"}, "model": {"revision": "abc"}}
    with pytest.raises(EndpointRequestError, match="Nothing to update"):
        client.update("my-audio-model")


def test_resume_on_a_running_endpoint_is_a_success() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/resume"):
            return httpx.Response(400, json={"error": "Endpoint is already running"})
        return httpx.Response(200, json=endpoint_json(state="running", ready=1, target=1))

    client, seen = client_with(handler)
    assert client.resume("my-audio-model").state == "running"
    assert [r.method for r in seen] == ["POST", "GET"]


def test_hardware_parses_vendors_regions_computes_with_exact_prices() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/v2/provider/acme")
        assert_auth(request)
        return httpx.Response(200, json=provider_json())

    client, _ = client_with(handler)
    offers = client.hardware()
    assert [(o.vendor, o.region, o.instance_type) for o in offers] == [
        ("aws", "us-east-1", "nvidia-t4"),
        ("aws", "us-east-1", "nvidia-l4"),
        ("aws", "us-east-1", "nvidia-a10g"),
        ("gcp", "us-east4", "nvidia-l4"),
    ]
    t4 = offers[0]
    assert t4.price_per_hour == Decimal("0.5") and t4.id == "aws-us-east-1-nvidia-t4-x1"
    assert t4.gpu_memory_gb == 16 and t4.num_accelerators == 1 and t4.status == "available"
    assert offers[2].status == "unavailable"


@pytest.mark.parametrize(
    ("status", "body", "error", "phrase"),
    [
        (401, {"error": "Invalid credentials in Authorization header"}, EndpointAuthError, "Set HF_TOKEN"),
        (403, {"error": "Forbidden"}, EndpointPermissionError, "namespace 'acme'"),
        (404, {"error": "Endpoint not found"}, EndpointNotFoundError, "no endpoint 'my-audio-model'"),
        (409, {"error": "Endpoint is being updated"}, EndpointConflictError, "busy"),
        (400, {"error": "Invalid scaling"}, EndpointRequestError, "Invalid scaling"),
        (402, {"error": "Payment required"}, EndpointPermissionError, "payment method"),
        (503, "upstream down", EndpointUnavailableError, "try again later"),
    ],
)
def test_errors_are_typed_with_actionable_messages(status: int, body: object, error: type, phrase: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(status, json=body)
        return httpx.Response(status, text=str(body))

    client, _ = client_with(handler)
    with pytest.raises(error, match=phrase) as info:
        client.pause("my-audio-model")
    assert info.value.status == status
    assert TOKEN not in str(info.value)


def test_create_conflict_says_the_name_is_taken() -> None:
    client, _ = client_with(lambda r: httpx.Response(409, json={"error": "Endpoint name already exists"}))
    spec = EndpointSpec(name="taken", repository="a/b", instance_type="nvidia-t4")
    with pytest.raises(EndpointConflictError, match="'taken' is already taken"):
        client.create(spec)


def test_resume_error_other_than_already_running_is_raised() -> None:
    client, _ = client_with(lambda r: httpx.Response(400, json={"error": "Endpoint is being deleted"}))
    with pytest.raises(EndpointRequestError, match="being deleted"):
        client.resume("my-audio-model")


def test_network_errors_are_typed_and_writes_are_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = client_with(handler)
    with pytest.raises(EndpointUnavailableError, match="Cannot reach"):
        client.pause("my-audio-model")
    assert calls == ["POST"]
    calls.clear()
    with pytest.raises(EndpointUnavailableError):
        client.get("my-audio-model")
    assert calls == ["GET", "GET"]  # a read is retried once


def test_timeout_on_a_write_says_it_may_have_applied() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, _ = client_with(handler)
    with pytest.raises(EndpointUnavailableError, match="may or may not have been applied"):
        client.delete("my-audio-model")


def test_repr_and_errors_never_show_the_token() -> None:
    client, _ = client_with(lambda r: httpx.Response(401, json={"error": "bad token"}))
    assert TOKEN not in repr(client)


def test_live_prices_are_those_of_the_region_where_endpoints_are_created() -> None:
    listing = provider_json()
    listing["vendors"].reverse()  # GCP's L4 ($0.70/h) is now listed before AWS's ($0.80/h)

    client, _ = client_with(lambda request: httpx.Response(200, json=listing))
    live = live_offers(client.hardware(), CREATE_VENDOR, CREATE_REGION)
    # before: the first L4 listed won, whatever its cloud: $0.70 shown for an endpoint that bills $0.80
    assert live["nvidia-l4"].price_per_hour == Decimal("0.8") and live["nvidia-l4"].vendor == "aws"
    assert set(live) == {"nvidia-t4", "nvidia-l4", "nvidia-a10g"}


def test_model_info_reads_the_hubs_answer() -> None:
    from tests.core.endpoints.hf_shapes import hub_model_json

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert str(request.url) == "https://huggingface.co/api/models/meta-llama/Llama-3.1-8B-Instruct"
        assert_auth(request)  # a private repository is visible only with the token
        return httpx.Response(200, json=hub_model_json())

    client, seen = client_with(handler)
    info = client.model_info("meta-llama/Llama-3.1-8B-Instruct")
    assert (info.id, info.pipeline_tag, info.private, info.gated, info.simulated) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        "text-generation",
        False,
        True,
        False,
    )
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("status", "headers"),
    [(404, {"x-error-code": "RepoNotFound"}), (401, {"x-error-code": "RepoNotFound"}), (401, {})],
)
def test_a_repository_the_hub_does_not_know_is_refused(status: int, headers: dict[str, str]) -> None:
    """404 with a token; 401 anonymously (missing, private and gated look alike), as huggingface_hub reads them."""
    from core.endpoints import RepositoryNotFoundError

    client, _ = client_with(lambda r: httpx.Response(status, json={"error": "Repository not found"}, headers=headers))
    with pytest.raises(RepositoryNotFoundError, match=r"no model repository 'acme/nope'.*Repository not found"):
        client.model_info("acme/nope")
