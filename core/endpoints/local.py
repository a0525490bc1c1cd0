"""A faithful local stand-in for the Inference Endpoints management API, served as an `httpx` transport.

`httpx.Client(transport=LocalEndpointsTransport(state_path, clock))` answers the same routes with the same payloads
as `https://api.endpoints.huggingface.cloud/v2`, so `HFEndpointsClient` runs unchanged against it. It is selected by
`HF_ENDPOINTS_API_URL=local` and used by the offline demo, the tests and the browser test.

State machine, driven by `clock` (tests use a `ManualClock`; the app uses real time):
  create -> pending -> (pending_seconds) initializing -> (initializing_seconds) running
  pause -> paused;  resume (paused, scaledToZero, failed) -> initializing -> running;  resume while running -> 400
  running with minReplica 0 and no traffic for scaleToZeroTimeout minutes -> scaledToZero; traffic wakes it up
  scale-to-zero -> scaledToZero;  PUT of the model or hardware while running -> updating -> running
  `fail(name)` -> failed (what a broken image or an out-of-capacity region does upstream)
Traffic is recorded with `record_traffic` (the stand-in has no real model behind it). State transitions are computed
lazily from the clock on every request, so nothing runs in the background.

The state lives in a JSON file (default `data/endpoints_local.json`, git-ignored) written atomically under an
exclusive `flock`, so the app and the command line can share it without corrupting it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from core.catalog.loader import parse_hardware, parse_models
from core.config import DATA_DIR
from core.endpoints.clock import Clock, system_clock
from core.endpoints.types import TASK_BY_CATEGORY, format_api_time

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
ROUTE_RE = re.compile(r"^(?:/v2)?/(endpoint|provider)/([^/]+)(?:/([^/]+)(?:/(pause|resume|scale-to-zero))?)?/?$")
DEFAULT_STATE_PATH = DATA_DIR / "endpoints_local.json"
LOCAL_BASE_URL = "http://endpoints.local/v2"
LOCAL_HUB_URL = "http://hub.local"  # the stand-in also answers the Hub's model info, from the catalog
HUB_PREFIX = "/api/models/"
HUB_PROVIDERS = ("huggingface", "huggingface_endpoint")
STAND_IN_REGION = ("aws", "us-east-1")


@dataclass(frozen=True, kw_only=True)
class LocalTimings:
    """How long the stand-in's transitions take. Real endpoints take minutes; the offline demo is kept brisk."""

    pending_seconds: int = 3
    initializing_seconds: int = 8
    updating_seconds: int = 8


def _iso(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class LocalStateFile:
    """The stand-in's JSON state, read and written under an exclusive lock so two processes never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, load, yield the state for changes, then write it atomically (temp file + rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = self._load()
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    self._write(state)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "namespaces": {}}
        text = self.path.read_text(encoding="utf-8")
        if not text.strip():
            return {"version": 1, "namespaces": {}}
        state = json.loads(text)
        state.setdefault("namespaces", {})
        return state

    def _write(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # no fsync: the rename is atomic for other processes, and a stand-in need not survive power loss
                json.dump(state, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _reply(status: int, body: Any = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status)
    return httpx.Response(status, json=body)


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message})


class LocalEndpointsTransport(httpx.BaseTransport):
    """The management API's routes answered from a local JSON file, with a clock the caller controls."""

    def __init__(
        self,
        state_path: Path | str = DEFAULT_STATE_PATH,
        clock: Clock = system_clock,
        *,
        timings: LocalTimings | None = None,
        token: str | None = None,
    ) -> None:
        self.file = LocalStateFile(Path(state_path))
        self.clock = clock
        self.timings = timings or LocalTimings()
        self.token = token  # when set, requests must carry `Authorization: Bearer <token>` (else 401), like HF
        self._computes: list[dict[str, Any]] | None = None
        self._repos: dict[str, str] | None = None  # Hub repository -> pipeline tag, from the catalog

    # ---- hooks the real API has no route for ----------------------------------------------------------------------
    def record_traffic(self, namespace: str, name: str, *, requests: int = 1, replicas: int | None = None) -> str:
        """Requests reached the endpoint: resets the idle timer, wakes a scaled-to-zero endpoint (cold start), and
        with `replicas` sets how many replicas the load needs (clamped to the scaling range). Returns the state."""
        now = self.clock()
        with self.file.transaction() as state:
            rec = self._existing(state, namespace, name, now)
            rec["requests"] = int(rec.get("requests", 0)) + requests
            rec["lastRequestAt"] = _iso(now)
            scaling = rec["body"]["compute"]["scaling"]
            floor = max(int(scaling["minReplica"]), 1)
            wanted = max(floor, min(int(replicas or rec.get("targetReplica") or 1), int(scaling["maxReplica"])))
            if rec["state"] == "scaledToZero":
                self._enter(rec, "initializing", now, target=wanted, ready=0, message="Scaling up after a request")
            elif rec["state"] == "running" and replicas is not None and wanted != rec.get("readyReplica"):
                rec["targetReplica"] = rec["readyReplica"] = wanted
                rec["updatedAt"] = _iso(now)
            return str(rec["state"])

    def fail(self, namespace: str, name: str, message: str = "Endpoint failed to start") -> None:
        """Put the endpoint in `failed`, as a crashing container or a capacity shortage does upstream."""
        now = self.clock()
        with self.file.transaction() as state:
            rec = self._existing(state, namespace, name, now)
            self._enter(rec, "failed", now, target=0, ready=0, message=message)

    # ---- httpx transport ------------------------------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid credentials in Authorization header")
        if request.url.path.startswith(HUB_PREFIX) and request.method == "GET":
            return self._model_info(unquote(request.url.path[len(HUB_PREFIX) :]).strip("/"))
        match = ROUTE_RE.match(request.url.path)
        if not match:
            return _error(404, f"No route for {request.method} {request.url.path}")
        kind, namespace, name, action = match.groups()
        namespace = unquote(namespace)
        name = unquote(name) if name else None
        method = request.method
        if kind == "provider":
            return _reply(200, self._provider()) if method == "GET" and not name else _error(405, "Method not allowed")
        body: dict[str, Any] = {}
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                return _error(400, "Request body is not valid JSON")
        now = self.clock()
        with self.file.transaction() as state:
            endpoints = state["namespaces"].setdefault(namespace, {})
            for rec in endpoints.values():
                self._advance(rec, now)
            if name is None:
                if method == "GET":
                    return _reply(200, {"items": [self._view(r, namespace) for r in endpoints.values()]})
                if method == "POST":
                    return self._create(endpoints, namespace, body, now)
                return _error(405, "Method not allowed")
            rec = endpoints.get(name)
            if rec is None:
                return _error(404, "Endpoint not found")
            if action is None:
                if method == "GET":
                    return _reply(200, self._view(rec, namespace))
                if method == "PUT":
                    return self._update(rec, namespace, body, now)
                if method == "DELETE":
                    del endpoints[name]
                    return _reply(200, {})
                return _error(405, "Method not allowed")
            if method != "POST":
                return _error(405, "Method not allowed")
            if action == "pause":
                if rec["state"] != "paused":
                    self._enter(rec, "paused", now, target=0, ready=0, message="Endpoint paused")
            elif action == "resume":
                if rec["state"] == "running":
                    return _error(400, "Endpoint is already running")
                if rec["state"] in ("paused", "scaledToZero", "failed", "updateFailed"):
                    target = max(int(rec["body"]["compute"]["scaling"]["minReplica"]), 1)
                    self._enter(rec, "initializing", now, target=target, ready=0, message="Endpoint resuming")
            elif action == "scale-to-zero":
                if rec["state"] == "paused":
                    return _error(400, "Endpoint is paused; resume it before scaling it")
                if rec["state"] != "scaledToZero":
                    self._enter(rec, "scaledToZero", now, target=0, ready=0, message="Endpoint scaled to zero")
            return _reply(200, self._view(rec, namespace))

    # ---- routes ---------------------------------------------------------------------------------------------------
    def _model_info(self, repo: str) -> httpx.Response:
        """The Hub's model info, simulated: the catalog's Hugging Face repositories exist, nothing else does."""
        if self._repos is None:
            rows = parse_models(DATA_DIR / "models.yaml")
            self._repos = {
                r["model_id"]: TASK_BY_CATEGORY.get(r["category"], "") for r in rows if r["provider"] in HUB_PROVIDERS
            }
        found = next((name for name in self._repos if name.lower() == repo.lower()), None)  # the Hub ignores case
        if found is None:
            response = _error(
                404,
                "Repository not found (simulated: the offline stand-in knows only the catalog's Hugging Face models)",
            )
            response.headers["X-Error-Code"] = "RepoNotFound"
            return response
        author = found.split("/", 1)[0]
        return _reply(
            200,
            {
                "_id": f"local-{found}",
                "id": found,
                "modelId": found,
                "author": author,
                "private": False,
                "disabled": False,
                "gated": False,
                "pipeline_tag": self._repos[found] or None,
                "library_name": "transformers",
                "tags": ["simulated"],
                "simulated": True,
            },
        )

    def _create(self, endpoints: dict[str, Any], namespace: str, body: dict[str, Any], now: datetime) -> httpx.Response:
        problem = self._validate_create(body)
        if problem:
            return _error(400, problem)
        name = body["name"]
        if name in endpoints:
            return _error(409, f"Endpoint name {name} already exists in {namespace}")
        stored = json.loads(json.dumps(body))
        stored["compute"]["scaling"].setdefault("scaleToZeroTimeout", None)
        stored["model"].setdefault("revision", None)
        stored["model"].setdefault("task", None)
        rec = {
            "body": stored,
            "state": "pending",
            "since": _iso(now),
            "createdAt": _iso(now),
            "updatedAt": _iso(now),
            "targetReplica": 0,
            "readyReplica": 0,
            "lastRequestAt": None,
            "requests": 0,
            "message": "Endpoint waiting to be scheduled",
        }
        endpoints[name] = rec
        return _reply(200, self._view(rec, namespace))

    def _validate_create(self, body: dict[str, Any]) -> str | None:
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            return "name must be 1-32 lowercase letters, digits or hyphens, starting and ending with a letter or digit"
        if body.get("type") not in ("public", "authenticated", "protected", "private"):
            return "type must be one of public, authenticated, private"
        compute, model, provider = body.get("compute"), body.get("model"), body.get("provider")
        if not isinstance(compute, dict) or not isinstance(model, dict) or not isinstance(provider, dict):
            return "compute, model and provider are required"
        scaling = compute.get("scaling")
        if not isinstance(scaling, dict):
            return "compute.scaling is required"
        lo, hi = scaling.get("minReplica"), scaling.get("maxReplica")
        if not isinstance(lo, int) or not isinstance(hi, int) or lo < 0 or hi < 1 or lo > hi:
            return "compute.scaling needs 0 <= minReplica <= maxReplica and maxReplica >= 1"
        timeout = scaling.get("scaleToZeroTimeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout < 1):
            return "compute.scaling.scaleToZeroTimeout must be a whole number of minutes >= 1"
        for key in ("accelerator", "instanceType", "instanceSize"):
            if not isinstance(compute.get(key), str) or not compute.get(key):
                return f"compute.{key} is required"
        offered = {(c["instanceType"], c["instanceSize"]) for c in self._computes_list()}
        if (compute["instanceType"], compute["instanceSize"]) not in offered:
            return f"Unknown instance {compute['instanceType']} {compute['instanceSize']} in {provider.get('region')}"
        if not isinstance(model.get("repository"), str) or "/" not in model["repository"]:
            return "model.repository must be a Hub repository such as facebook/mms-tts-eng"
        if not isinstance(model.get("framework"), str) or not isinstance(model.get("image"), dict):
            return "model.framework and model.image are required"
        if (provider.get("vendor"), provider.get("region")) != STAND_IN_REGION:
            return f"The local stand-in offers only {STAND_IN_REGION[0]} {STAND_IN_REGION[1]}"
        return None

    def _update(self, rec: dict[str, Any], namespace: str, body: dict[str, Any], now: datetime) -> httpx.Response:
        compute = body.get("compute") or {}
        model = body.get("model") or {}
        stored = rec["body"]
        scaling = {**stored["compute"]["scaling"], **(compute.get("scaling") or {})}
        lo, hi = scaling.get("minReplica"), scaling.get("maxReplica")
        if not isinstance(lo, int) or not isinstance(hi, int) or lo < 0 or hi < 1 or lo > hi:
            return _error(400, "compute.scaling needs 0 <= minReplica <= maxReplica and maxReplica >= 1")
        redeploy = bool(model) or any(k in compute for k in ("accelerator", "instanceType", "instanceSize"))
        stored["compute"].update({k: v for k, v in compute.items() if k != "scaling"})
        stored["compute"]["scaling"] = scaling
        stored["model"].update(model)
        rec["updatedAt"] = _iso(now)
        if rec["state"] in ("running", "initializing", "updating"):
            floor = max(lo, 1)
            target = max(floor, min(int(rec.get("targetReplica") or floor), hi))
            if redeploy:
                self._enter(rec, "updating", now, target=target, ready=rec.get("readyReplica", 0), message="Updating")
            else:
                rec["targetReplica"] = target
                if rec["state"] == "running":
                    rec["readyReplica"] = target
        return _reply(200, self._view(rec, namespace))

    # ---- the state machine ---------------------------------------------------------------------------------------
    @staticmethod
    def _enter(rec: dict[str, Any], state: str, at: datetime, *, target: int, ready: int, message: str) -> None:
        rec["state"] = state
        rec["since"] = rec["updatedAt"] = _iso(at)
        rec["targetReplica"] = target
        rec["readyReplica"] = ready
        rec["message"] = message

    def _advance(self, rec: dict[str, Any], now: datetime) -> None:
        """Apply every transition that the clock says has happened since the last look, at the time it happened."""
        t = self.timings
        scaling = rec["body"]["compute"]["scaling"]
        floor = max(int(scaling["minReplica"]), 1)
        for _ in range(16):  # a handful of transitions at most; the bound only guards against a corrupt file
            state, since = rec["state"], _dt(rec["since"])
            assert since is not None
            if state == "pending" and now >= since + timedelta(seconds=t.pending_seconds):
                at = since + timedelta(seconds=t.pending_seconds)
                self._enter(rec, "initializing", at, target=floor, ready=0, message="Endpoint is initializing")
            elif state == "initializing" and now >= since + timedelta(seconds=t.initializing_seconds):
                at = since + timedelta(seconds=t.initializing_seconds)
                target = int(rec.get("targetReplica") or floor)
                self._enter(rec, "running", at, target=target, ready=target, message="Endpoint is running")
            elif state == "updating" and now >= since + timedelta(seconds=t.updating_seconds):
                at = since + timedelta(seconds=t.updating_seconds)
                target = int(rec.get("targetReplica") or floor)
                self._enter(rec, "running", at, target=target, ready=target, message="Endpoint is running")
            elif state == "running" and int(scaling["minReplica"]) == 0 and scaling.get("scaleToZeroTimeout"):
                last = _dt(rec.get("lastRequestAt"))
                idle_from = max(since, last) if last else since
                at = idle_from + timedelta(minutes=int(scaling["scaleToZeroTimeout"]))
                if now < at:
                    return
                self._enter(rec, "scaledToZero", at, target=0, ready=0, message="Scaled to zero after no traffic")
            else:
                return

    # ---- payloads ---------------------------------------------------------------------------------------------------
    def _view(self, rec: dict[str, Any], namespace: str) -> dict[str, Any]:
        body = rec["body"]
        compute = body["compute"]
        name = body["name"]
        running = rec["state"] == "running"
        return {
            "name": name,
            "type": body["type"],
            "accountId": None,
            "compute": {
                "id": f"{body['provider']['vendor']}-{body['provider']['region']}-{compute['instanceType']}-"
                f"{compute['instanceSize']}",
                "accelerator": compute["accelerator"],
                "instanceType": compute["instanceType"],
                "instanceSize": compute["instanceSize"],
                "scaling": dict(compute["scaling"]),
            },
            "model": {**body["model"], "env": {}},
            "provider": dict(body["provider"]),
            "healthRoute": "/health",
            "status": {
                "createdAt": format_api_time(_dt(rec["createdAt"])),  # type: ignore[arg-type]
                "createdBy": {"id": "local", "name": namespace},
                "updatedAt": format_api_time(_dt(rec["updatedAt"])),  # type: ignore[arg-type]
                "updatedBy": {"id": "local", "name": namespace},
                "private": None,
                "state": rec["state"],
                "message": rec.get("message", ""),
                "readyReplica": int(rec.get("readyReplica", 0)),
                "targetReplica": int(rec.get("targetReplica", 0)),
                # The stand-in serves no model: the `.invalid` domain says so instead of pretending to be HF's.
                "url": f"https://{name}.{namespace}.local-stand-in.invalid" if running else None,
            },
        }

    def _computes_list(self) -> list[dict[str, Any]]:
        if self._computes is None:
            computes: list[dict[str, Any]] = []
            # GPU list prices from the reviewed catalog (its list_hourly_usd is Hugging Face's published price).
            for hw in parse_hardware(DATA_DIR / "hardware.yaml"):
                price = hw["list_hourly_usd"] if hw["list_hourly_usd"] is not None else hw["hourly_usd"]
                computes.append(
                    {
                        "id": f"{STAND_IN_REGION[0]}-{STAND_IN_REGION[1]}-{hw['instance_type']}-x1",
                        "accelerator": "gpu",
                        "instanceType": hw["instance_type"],
                        "instanceSize": "x1",
                        "numAccelerators": 1,
                        "memoryGb": None,  # host memory: not in the catalog, so not invented here
                        "gpuMemoryGb": hw["gpu_memory_gb"],
                        "pricePerHour": float(price),
                        "status": "available",
                    }
                )
            self._computes = computes
        return self._computes

    def _provider(self) -> dict[str, Any]:
        vendor, region = STAND_IN_REGION
        return {
            "vendors": [
                {
                    "name": vendor,
                    "status": "available",
                    "regions": [
                        {
                            "name": region,
                            "label": "US East (N. Virginia)",
                            "status": "available",
                            "computes": self._computes_list(),
                        },
                    ],
                }
            ]
        }

    @staticmethod
    def _record(state: dict[str, Any], namespace: str, name: str) -> dict[str, Any] | None:
        return state["namespaces"].get(namespace, {}).get(name)

    def _existing(self, state: dict[str, Any], namespace: str, name: str, now: datetime) -> dict[str, Any]:
        """The endpoint's record brought up to `now` (for the test hooks: a missing one is a KeyError)."""
        rec = self._record(state, namespace, name)
        if rec is None:
            raise KeyError(f"no endpoint {name!r} in namespace {namespace!r} on the local stand-in")
        self._advance(rec, now)
        return rec
