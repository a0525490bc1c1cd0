"""`HFEndpointsClient`: the Hugging Face Inference Endpoints management API over an injected `httpx.Client`.

Routes (reference/providers.md): `GET|POST /endpoint/{namespace}`, `GET|PUT|DELETE /endpoint/{namespace}/{name}`,
`POST /endpoint/{namespace}/{name}/pause|resume|scale-to-zero`, `GET /provider/{namespace}`. Bearer token.
Before a create, the Hub's model info (`GET https://huggingface.co/api/models/{repo}`) says the repository exists.
The same code runs against the local stand-in (`core.endpoints.local`), which is just another transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from core.config import Secret
from core.endpoints.errors import (
    EndpointAuthError,
    EndpointConflictError,
    EndpointError,
    EndpointNotFoundError,
    EndpointPermissionError,
    EndpointRequestError,
    EndpointUnavailableError,
    RepositoryNotFoundError,
)
from core.endpoints.types import ComputeOffer, HubModel, RemoteEndpoint

USER_AGENT = "ai-credits-endpoints/1"
HUB_URL = "https://huggingface.co"  # the Hub's model info: GET {HUB_URL}/api/models/{repo}
GET_ATTEMPTS = 2  # a GET changes nothing, so one retry after a network blip is safe; writes are never retried


# Where this service creates endpoints (EndpointSpec's defaults); live hardware prices are read for the same place.
CREATE_VENDOR = "aws"
CREATE_REGION = "us-east-1"


def live_offers(offers: list[ComputeOffer], vendor: str, region: str) -> dict[str, ComputeOffer]:
    """Single-GPU offers by instance type in the vendor and region where endpoints are created: the same GPU costs
    something else elsewhere (AWS L4 $0.80/h, GCP L4 $0.70/h), so the first one listed is not the price."""
    return {o.instance_type: o for o in offers if o.instance_size == "x1" and (o.vendor, o.region) == (vendor, region)}


@dataclass(frozen=True, kw_only=True)
class EndpointSpec:
    """Everything `POST /endpoint/{namespace}` needs, in the product's words."""

    name: str
    repository: str
    instance_type: str  # nvidia-t4, nvidia-l4, nvidia-a10g, nvidia-a100, ...
    accelerator: str = "gpu"
    instance_size: str = "x1"
    min_replica: int = 0
    max_replica: int = 1
    scale_to_zero_timeout: int | None = 15  # minutes; only meaningful with min_replica == 0
    framework: str = "pytorch"
    task: str | None = None
    revision: str | None = None
    image: dict[str, Any] = field(default_factory=lambda: {"huggingface": {}})
    vendor: str = CREATE_VENDOR
    region: str = CREATE_REGION
    type: str = "authenticated"

    def to_body(self) -> dict[str, Any]:
        scaling: dict[str, Any] = {"minReplica": self.min_replica, "maxReplica": self.max_replica}
        if self.scale_to_zero_timeout is not None:
            scaling["scaleToZeroTimeout"] = self.scale_to_zero_timeout
        model: dict[str, Any] = {"repository": self.repository, "framework": self.framework, "image": self.image}
        if self.task:
            model["task"] = self.task
        if self.revision:
            model["revision"] = self.revision
        return {
            "name": self.name,
            "type": self.type,
            "compute": {
                "accelerator": self.accelerator,
                "instanceType": self.instance_type,
                "instanceSize": self.instance_size,
                "scaling": scaling,
            },
            "model": model,
            "provider": {"vendor": self.vendor, "region": self.region},
        }


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return str(body)[:300]


class HFEndpointsClient:
    """Typed calls to the management API. Every failure is an `EndpointError` subclass with a usable message."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        namespace: str,
        token: str | Secret | None,
        *,
        hub_url: str = HUB_URL,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self.hub_url = hub_url.rstrip("/")
        self._token = token.get() if isinstance(token, Secret) else token

    def __repr__(self) -> str:  # never show the token
        return f"HFEndpointsClient(base_url={self.base_url!r}, namespace={self.namespace!r})"

    # ---- routes -------------------------------------------------------------------------------------------------
    def list(self) -> list[RemoteEndpoint]:
        body = self._request("GET", self._collection())
        items = body.get("items", []) if isinstance(body, dict) else body
        return [RemoteEndpoint.from_raw(item) for item in items or []]

    def get(self, name: str) -> RemoteEndpoint:
        return RemoteEndpoint.from_raw(self._request("GET", self._item(name), name=name))

    def create(self, spec: EndpointSpec) -> RemoteEndpoint:
        body = self._request("POST", self._collection(), json=spec.to_body(), name=spec.name, creating=True)
        return RemoteEndpoint.from_raw(body)

    def update(
        self,
        name: str,
        *,
        min_replica: int | None = None,
        max_replica: int | None = None,
        scale_to_zero_timeout: int | None = None,
        accelerator: str | None = None,
        instance_type: str | None = None,
        instance_size: str | None = None,
        repository: str | None = None,
        revision: str | None = None,
        task: str | None = None,
    ) -> RemoteEndpoint:
        """`PUT /endpoint/{namespace}/{name}` with only the fields given (the API merges them)."""
        scaling = _without_none(
            {"minReplica": min_replica, "maxReplica": max_replica, "scaleToZeroTimeout": scale_to_zero_timeout}
        )
        compute = _without_none(
            {"accelerator": accelerator, "instanceType": instance_type, "instanceSize": instance_size}
        )
        if scaling:
            compute["scaling"] = scaling
        model = _without_none({"repository": repository, "revision": revision, "task": task})
        body: dict[str, Any] = {}
        if compute:
            body["compute"] = compute
        if model:
            body["model"] = model
        if not body:
            raise EndpointRequestError("Nothing to update: give at least one field to change.")
        return RemoteEndpoint.from_raw(self._request("PUT", self._item(name), json=body, name=name))

    def pause(self, name: str) -> RemoteEndpoint:
        return RemoteEndpoint.from_raw(self._request("POST", self._item(name) + "/pause", name=name))

    def resume(self, name: str) -> RemoteEndpoint:
        """Resume; resuming an endpoint that already runs is a success (the API answers 400 "already running")."""
        try:
            return RemoteEndpoint.from_raw(self._request("POST", self._item(name) + "/resume", name=name))
        except EndpointRequestError as exc:
            if "already running" in str(exc).lower():
                return self.get(name)
            raise

    def scale_to_zero(self, name: str) -> RemoteEndpoint:
        return RemoteEndpoint.from_raw(self._request("POST", self._item(name) + "/scale-to-zero", name=name))

    def delete(self, name: str) -> None:
        self._request("DELETE", self._item(name), name=name)

    def hardware(self) -> list[ComputeOffer]:
        """Hardware the namespace may use, with live `pricePerHour` (`vendors[].regions[].computes[]`)."""
        body = self._request("GET", f"{self.base_url}/provider/{quote(self.namespace, safe='')}")
        offers: list[ComputeOffer] = []
        for vendor in body.get("vendors", []) if isinstance(body, dict) else []:
            for region in vendor.get("regions", []) or []:
                for compute in region.get("computes", []) or []:
                    offers.append(
                        ComputeOffer.from_raw(compute, str(vendor.get("name", "")), str(region.get("name", "")))
                    )
        return offers

    def model_info(self, repo: str) -> HubModel:
        """The Hub's model info for `repo`; `RepositoryNotFoundError` when the Hub has none. The Hub answers 404 for a
        missing repository, and 401 to an anonymous request for one that is missing, private or gated (as
        huggingface_hub reads it, with the `X-Error-Code: RepoNotFound` header)."""
        url = f"{self.hub_url}/api/models/{quote(repo, safe='/')}"
        for attempt in range(1, GET_ATTEMPTS + 1):
            try:
                response = self.http.request("GET", url, headers=self._headers())
            except httpx.TransportError as exc:
                if attempt < GET_ATTEMPTS:
                    continue
                raise EndpointUnavailableError(
                    f"Cannot reach the Hugging Face Hub at {self.hub_url} to check {repo!r} ({type(exc).__name__}); "
                    "check the network and try again."
                ) from exc
            if response.status_code >= 500 and attempt < GET_ATTEMPTS:
                continue
            break
        status = response.status_code
        if 200 <= status < 300:
            try:
                return HubModel.from_raw(response.json())
            except (ValueError, AttributeError) as exc:
                raise EndpointUnavailableError(
                    f"The Hub answered {status} for {repo!r} with a body that is not model info; try again later."
                ) from exc
        text = _error_text(response)
        if status in (401, 404) or response.headers.get("x-error-code") == "RepoNotFound":
            raise RepositoryNotFoundError(
                f"Hugging Face has no model repository {repo!r} ({text or status}); check the name on "
                f"{HUB_URL}/{repo}. A private or gated repository needs HF_TOKEN of an account that may read it.",
                status=status,
            )
        if status >= 500:
            raise EndpointUnavailableError(
                f"The Hugging Face Hub failed ({status}) checking {repo!r}; try again later.", status=status
            )
        raise EndpointRequestError(f"The Hugging Face Hub refused to describe {repo!r} ({status}: {text}).")

    # ---- plumbing -----------------------------------------------------------------------------------------------
    def _collection(self) -> str:
        return f"{self.base_url}/endpoint/{quote(self.namespace, safe='')}"

    def _item(self, name: str) -> str:
        return f"{self._collection()}/{quote(name, safe='')}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _request(
        self, method: str, url: str, *, json: Any = None, name: str | None = None, creating: bool = False
    ) -> Any:
        attempts = GET_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.http.request(method, url, json=json, headers=self._headers())
            except httpx.TimeoutException as exc:
                if attempt < attempts:
                    continue
                maybe = "" if method == "GET" else " The change may or may not have been applied: refresh to see."
                raise EndpointUnavailableError(
                    f"The Inference Endpoints API at {self.base_url} did not answer in time ({method}).{maybe}"
                ) from exc
            except httpx.TransportError as exc:
                if attempt < attempts:
                    continue
                raise EndpointUnavailableError(
                    f"Cannot reach the Inference Endpoints API at {self.base_url} ({type(exc).__name__}: {exc}). "
                    "Check the network, or HF_ENDPOINTS_API_URL (set it to `local` for the offline stand-in)."
                ) from exc
            if response.status_code >= 500 and attempt < attempts:
                continue
            return self._parse(response, name, creating)
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, response: httpx.Response, name: str | None, creating: bool) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError as exc:
                raise EndpointUnavailableError(
                    f"The Inference Endpoints API answered {status} with a body that is not JSON; "
                    "check HF_ENDPOINTS_API_URL points at the management API (…/v2)."
                ) from exc
        raise self._error(status, _error_text(response), name, creating)

    def _error(self, status: int, text: str, name: str | None, creating: bool) -> EndpointError:
        ns = self.namespace
        what = f"endpoint {name!r}" if name else f"namespace {ns!r}"
        detail = f" ({text})" if text else ""
        if status == 401:
            return EndpointAuthError(
                f"Hugging Face refused the token (401){detail}. Set HF_TOKEN to a valid token with write access to "
                "Inference Endpoints.",
                status=status,
            )
        if status == 403:
            return EndpointPermissionError(
                f"The token may not manage Inference Endpoints in namespace {ns!r} (403){detail}. Use a token of a "
                "member of that namespace with the Inference Endpoints write permission, or fix HF_NAMESPACE.",
                status=status,
            )
        if status == 404:
            if creating or not name:
                return EndpointNotFoundError(
                    f"Hugging Face does not know namespace {ns!r} (404){detail}. Set HF_NAMESPACE to your user or "
                    "organization name.",
                    status=status,
                )
            return EndpointNotFoundError(
                f"Hugging Face has no endpoint {name!r} in namespace {ns!r} (404){detail}. "
                "`python -m core endpoints list` shows the endpoints.",
                status=status,
            )
        if status == 409:
            if creating:
                return EndpointConflictError(
                    f"The name {name!r} is already taken in namespace {ns!r} (409){detail}; choose another name.",
                    status=status,
                )
            return EndpointConflictError(
                f"{what.capitalize()} is busy with another operation (409){detail}; wait a moment and try again.",
                status=status,
            )
        if status == 402:
            return EndpointPermissionError(
                f"Hugging Face requires a payment method on namespace {ns!r} before it runs endpoints (402){detail}.",
                status=status,
            )
        if status == 429:
            return EndpointUnavailableError(
                f"The Inference Endpoints API is rate limiting this token (429){detail}; try again in a minute.",
                status=status,
            )
        if status >= 500:
            return EndpointUnavailableError(
                f"The Inference Endpoints API failed ({status}){detail}; try again later. Nothing is known to have "
                "changed.",
                status=status,
            )
        return EndpointRequestError(
            f"The Inference Endpoints API refused the request ({status}){detail}.", status=status
        )


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
