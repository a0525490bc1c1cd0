"""What every route needs: the process's services, the caller its API key acts as, the Idempotency-Key, and the
billing headers of an answer (`x-request-id`, `x-credits-charged`, `x-credits-remaining`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from core.services import SYSTEM, Principal, Services
from core.services.generation import GenerationResult

bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer sk-ac-... (OpenAI SDK)")
api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False, description="x-api-key: sk-ac-... (Anthropic SDK)")


def services_of(request: Request) -> Services:
    return request.app.state.services


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> str | None:
    """The API key the request presents (checked by `admit`, in the route's own worker thread: one thread hop per
    request instead of two)."""
    return bearer.credentials if bearer is not None else api_key


ApiKey = Annotated[str | None, Depends(presented_key)]


def admit(request: Request, secret: str | None) -> Principal:
    """The principal the request's API key acts as (401, 429 otherwise: see services.keys.admit)."""
    return services_of(request).keys.admit(SYSTEM, secret)


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


def billing_headers(request: Request, result: GenerationResult) -> dict[str, str]:
    headers = {
        "x-request-id": request_id(request),
        "x-credits-charged": str(result.credits_charged),
        "x-credits-remaining": str(result.balance_after),
    }
    if result.replayed:
        headers["idempotent-replayed"] = "true"
    return headers
