"""The gateway's FastAPI application: one `Services` per worker process (with its alert timer), the routes, the error
envelopes, a request id on every answer and bounded bodies. `create_app()` is what `python -m core serve` runs
(uvicorn's factory)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import gateway_routes
from core.gateway import anthropic_routes, minimax_routes, openai_routes
from core.gateway.deps import SECURITY, SECURITY_SCHEMES
from core.gateway.errors import engine_error, http_error, unexpected_error, validation_error
from core.gateway.json_route import JsonRoute, Lane
from core.gateway.limits import JSON_LIMIT, BodyLimit
from core.gateway.threads import ROUTES_ON_LOOP, THREADS
from core.services import Services
from core.services.errors import CoreError

# Seconds a worker reuses an API key, a catalog entry and a payer's account it read (GATEWAY_CACHE_SECONDS; 0 reads
# them on every call): three reads fewer per call. A key revoked elsewhere (the API keys page, another worker) is
# refused within this time; a markup changed is charged at once (read under the account's lock when settling).
CACHE_SECONDS = 5.0

DESCRIPTION = """OpenAI- and Anthropic-compatible API over the company's AI catalog, billed as prepaid credits.
Authenticate with a key from the API keys page or `python -m core keys create`: `Authorization: Bearer sk-ac-...`
(OpenAI SDK) or `x-api-key: sk-ac-...` (Anthropic SDK). Every call holds the most it can cost before the upstream call
and settles what it used; answers carry `x-request-id`, `x-credits-charged` and `x-credits-remaining`."""


def create_app(services: Services | None = None) -> FastAPI:
    """The application; it builds its own `Services` (from the environment) unless given one, and closes what it
    built when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the routes run in threads.pool(); as many of anyio's threads serve what still runs there (closing a stream
        # whose client left, spooled uploads)
        anyio.to_thread.current_default_thread_limiter().total_tokens = int(os.environ.get("GATEWAY_THREADS", THREADS))
        owned = services is None
        app.state.services = Services() if owned else services
        # where the routes run (GATEWAY_ROUTES; core/gateway/threads.py)
        app.routes_on_loop = app.state.services.calls_run_on_loop(mode)
        # charges an earlier process kept while the database was down (core/billing/spool.py): posted in the background
        app.state.services.resume_spool()
        if owned:  # a given Services (tests) keeps reading on every call
            ttl = float(os.environ.get("GATEWAY_CACHE_SECONDS", CACHE_SECONDS))
            app.state.services.keys.lookup_ttl = ttl
            app.state.services.generation.catalog_ttl = ttl
            app.state.services.generation.user_ttl = ttl
        # budget alerts evaluate every ALERTS_EVERY_SECONDS in each worker, off the request path; stopped below. Not the
        # spend anomalies: they sync and open the DuckDB analytics copy, which workers never do (the app's timer does)
        alert_timer = app.state.services.auto_alerts
        alert_timer.start()
        try:
            yield
        finally:
            alert_timer.stop()
            if owned:
                app.state.services.close()

    mode = gateway_routes()
    app = Gateway(title="AI credits gateway", description=DESCRIPTION, version="1", lifespan=lifespan)
    if services is not None:
        app.state.services = services
    app.include_router(openai_routes.router)
    app.include_router(anthropic_routes.router)
    app.include_router(minimax_routes.router)
    app.add_exception_handler(CoreError, engine_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)

    app.add_middleware(BodyLimit)
    app.add_middleware(RequestIds)
    app.open_lanes(openai_routes.router, anthropic_routes.router)
    app.openapi = lambda: _openapi_with_keys(app)  # type: ignore[method-assign]
    return app


def _openapi_with_keys(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the two ways to present a key (deps.SECURITY_SCHEMES) on every /v1 route: `admit`
    reads them from the headers, so FastAPI does not see them as dependencies."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = SECURITY
    return app.openapi_schema  # type: ignore[return-value]


class Gateway(FastAPI):
    """FastAPI, with a front door for the calls most traffic is: a well-formed JSON POST to a chat route
    (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`; `open_lanes`) goes straight to its route, past the
    middleware stack and the router: seven nested ASGI calls each way, the route matching and FastAPI's generic
    parameter reading, all on the event loop every call waits for. Measured under benchmarks/proxy_floor.py's load (16
    clients, a 100 ms upstream, one SQLite worker), three alternating runs each way: about 6% less CPU a call (8% at
    one client) and a median added p50 of 13.3 ms against 18.0 ms, in a slow hour.

    The door does what those layers do for such a call: the request id (`RequestIds`), the body's bound
    (`limits.JSON_LIMIT`, by its Content-Length), the route's validation (FastAPI's own functions, `json_route.Lane`)
    and the exception handlers (`add_exception_handler`). Anything else (another route or method, another content
    type, no Content-Length, a body that does not parse or validate, an invalid header, OpenTelemetry switched on)
    goes the whole way, the body it read handed on, and is answered as it always was."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.lanes: dict[str, Lane] = {}
        self.routes_on_loop = False  # decided as the application starts (`routes_on_loop`)

    def open_lanes(self, *routers: APIRouter) -> None:
        """The door's routes: the POST routes of `routers` that have a short way (`JsonRoute.lane`). The routers are
        included with no prefix or dependencies of their own, so a route's own path and dependant are what FastAPI
        serves."""
        self.lanes = {}
        for router in routers:
            for route in router.routes:
                if isinstance(route, JsonRoute) and route.methods == {"POST"} and route.path in LANE_PATHS:
                    lane = route.lane()
                    if lane is not None:
                        self.lanes[route.path] = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.routes_on_loop:
            ROUTES_ON_LOOP.set(True)  # this request's task only
        lane = self.lanes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if lane is None or self.root_path or "fastapi.telemetry" in scope or self._native_telemetry.enabled():
            await super().__call__(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if headers.get("content-type") != "application/json" or not (length and length.isascii() and length.isdigit()):
            await super().__call__(scope, receive, send)
            return
        if int(length) > JSON_LIMIT:
            await super().__call__(scope, receive, send)  # BodyLimit refuses it
            return
        body = await _read_body(receive)
        if body is None:  # the client left
            return
        values = await lane.arguments(body, headers)
        if values is None:
            await super().__call__(scope, _replay(body, receive), send)
            return
        scope["app"] = self
        rid = "req_" + uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        request = Request(scope, receive)
        try:
            response = await lane.answer(values, request)
        except Exception as exc:  # as FastAPI's exception handlers answer it (unexpected ones are logged there)
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, _with_request_id(scope, send, rid))

    def _handler_for(self, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        for kind in type(exc).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None:
                return handler  # type: ignore[return-value]
        return None


# the routes the front door serves: chat, the traffic a gateway mostly carries
LANE_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive`, with the body already read handed out first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _request_id_names(scope: Scope) -> tuple[str, ...]:
    # OpenAI's SDK reads `x-request-id`, Anthropic's `request-id` (`message._request_id`, `APIError.request_id`).
    anthropic = scope["path"].startswith("/v1/messages") or any(k == b"anthropic-version" for k, _ in scope["headers"])
    return ("x-request-id", "request-id") if anthropic else ("x-request-id",)


def _with_request_id(scope: Scope, send: Send, rid: str) -> Send:
    """`send`, adding the request id's headers to the answer's start where the route did not set them."""
    names = _request_id_names(scope)

    async def with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name in names:
                if name not in headers:
                    headers.append(name, rid)
        await send(message)

    return with_id


class RequestIds:
    """A request id for every request (`request.state.request_id`), sent back as `x-request-id` (and `request-id` on
    Anthropic's route). Plain ASGI, not
    Starlette's BaseHTTPMiddleware, which would keep a streamed response running after its client hung up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = "req_" + uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        await self.app(scope, receive, _with_request_id(scope, send, rid))
