"""What every route needs: the process's services, the caller its API key acts as, the Idempotency-Key, and the
billing headers of an answer (`x-request-id`, `x-credits-charged`, `x-credits-remaining`)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header, Request
from fastapi.security.utils import get_authorization_scheme_param

from core.services import SYSTEM, Principal, Services
from core.services.generation import GenerationResult, GenerationStream

# The two ways to present a key, as the OpenAPI schema states them (`security_schemes`). They are read from the
# headers by `admit` itself rather than as FastAPI dependencies: three dependency levels per request (the two schemes
# and the one choosing between them) were about a tenth of the gateway's CPU per call (measured with cProfile under
# benchmarks/gateway_load.py).
SECURITY_SCHEMES = {
    "HTTPBearer": {"type": "http", "description": "Authorization: Bearer sk-ac-... (OpenAI SDK)", "scheme": "bearer"},
    "APIKeyHeader": {
        "type": "apiKey",
        "description": "x-api-key: sk-ac-... (Anthropic SDK)",
        "in": "header",
        "name": "x-api-key",
    },
}
SECURITY = [{name: []} for name in SECURITY_SCHEMES]


def services_of(request: Request) -> Services:
    return request.app.state.services


def presented_key(request: Request) -> str | None:
    """The API key the request presents: `Authorization: Bearer ...` (OpenAI SDK), else `x-api-key` (Anthropic SDK),
    read as FastAPI's HTTPBearer and APIKeyHeader read them."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.headers.get("x-api-key") or None


def admit(request: Request) -> Principal:
    """The principal the request's API key acts as (401, 429 otherwise: see services.keys.admit); called in the
    route's own worker thread (one thread hop per request)."""
    return services_of(request).keys.admit(SYSTEM, presented_key(request))


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="the same key again returns the first request's answer and charge instead of a second call",
    ),
]


def request_id(request: Request) -> str:
    return request.state.request_id


def answer_id(request: Request, who: Principal, key: str | None) -> str:
    """What an answer's own id is built from (`chatcmpl-`, `resp_`, `msg_` and the hex after `req_`): the request id,
    or, with an Idempotency-Key, a digest of the API key and that key, so a replay answers the first request's id
    (the same answer, as the README promises) while `x-request-id` still names each HTTP request."""
    if key is None:
        return request_id(request)
    return "req_" + hashlib.sha256(f"{who.api_key_id}:{key}".encode()).hexdigest()[:32]


def billing_headers(request: Request, result: GenerationResult) -> dict[str, str]:
    headers = {"x-request-id": request_id(request)}
    if result.charge_pending:  # the database was unavailable: the charge is posted from the spool when it is back
        headers["x-credits-pending"] = "true"
    else:
        headers["x-credits-charged"] = str(result.credits_charged)
        headers["x-credits-remaining"] = str(result.balance_after)
    if result.replayed:
        headers["idempotent-replayed"] = "true"
    return headers


def stream_headers(request: Request, stream: GenerationStream) -> dict[str, str]:
    """A streamed answer's headers (its charge comes in its last event): the request id, and `idempotent-replayed`
    when it replays an earlier request's answer, as a plain answer's `billing_headers` say."""
    headers = {"x-request-id": request_id(request)}
    if stream.replayed:
        headers["idempotent-replayed"] = "true"
    return headers
