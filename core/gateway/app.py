"""The gateway's FastAPI application: one `Services` per worker process (with its alert timer), the routes, the error
envelopes, a request id on every answer and bounded bodies. `create_app()` is what `python -m core serve` runs
(uvicorn's factory)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.gateway import anthropic_routes, minimax_routes, openai_routes
from core.gateway.deps import SECURITY, SECURITY_SCHEMES
from core.gateway.errors import engine_error, http_error, unexpected_error, validation_error
from core.gateway.limits import BodyLimit
from core.gateway.threads import THREADS
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

    app = FastAPI(title="AI credits gateway", description=DESCRIPTION, version="1", lifespan=lifespan)
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
        # OpenAI's SDK reads `x-request-id`, Anthropic's `request-id` (`message._request_id`, `APIError.request_id`).
        anthropic = scope["path"].startswith("/v1/messages") or any(
            k == b"anthropic-version" for k, _ in scope["headers"]
        )
        names = ("x-request-id", "request-id") if anthropic else ("x-request-id",)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name in names:
                    if name not in headers:
                        headers.append(name, rid)
            await send(message)

        await self.app(scope, receive, with_id)
