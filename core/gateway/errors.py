"""Errors as the official SDKs expect them: the status code each SDK turns into its own typed exception, and the
error envelope of the API the route imitates (OpenAI's `{"error": {message, type, param, code}}` on /v1/...,
Anthropic's `{"type": "error", "error": {type, message}}` on /v1/messages). Never a stack trace: anything unexpected
is logged with its request id and answered 500 with that id.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.gateway.deps import presented_key
from core.gateway.threads import in_thread
from core.services import SYSTEM
from core.services import errors as e

log = logging.getLogger("core.gateway")


@dataclass(frozen=True)
class Problem:
    status: int
    openai_type: str
    code: str | None
    anthropic_type: str
    message: str
    retry_after: float | None = None
    param: str | None = None  # the request field at fault (OpenAI's `param`)
    final: bool = False  # the same request would fail the same way: the SDKs are told not to retry it


# (error class, status, OpenAI type, OpenAI code, Anthropic type): the first matching class wins.
_MAP: tuple[tuple[type[BaseException], int, str, str | None, str], ...] = (
    (e.UnauthenticatedError, 401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    (e.PermissionDeniedError, 403, "permission_error", "permission_denied", "permission_error"),
    (e.RateLimitedError, 429, "requests", "rate_limit_exceeded", "rate_limit_error"),
    (e.InsufficientCreditsError, 402, "insufficient_quota", "insufficient_quota", "billing_error"),
    (e.KeyLimitError, 402, "insufficient_quota", "insufficient_quota", "billing_error"),
    # a hard budget covering the call (the user's, a team's, the key's) is used up: refused before any upstream call
    (e.BudgetExceededError, 402, "insufficient_quota", "insufficient_quota", "billing_error"),
    # the dedicated endpoint's owner is overdrawn: waking it from zero would charge its uptime past their zero
    (e.OwnerOverdrawnError, 402, "insufficient_quota", "insufficient_quota", "billing_error"),
    (e.IdempotencyConflictError, 409, "invalid_request_error", "idempotency_conflict", "invalid_request_error"),
    (e.HoldStateError, 409, "invalid_request_error", "conflict", "invalid_request_error"),
    (e.UnknownModelError, 404, "invalid_request_error", "model_not_found", "not_found_error"),
    (e.UnpricedModelError, 400, "invalid_request_error", "model_not_priced", "invalid_request_error"),
    # the upstream's faults, in the terms of the caller (who can do nothing about our provider keys)
    (e.ProviderConfigError, 503, "server_error", "provider_not_configured", "api_error"),
    (e.AuthError, 502, "server_error", "upstream_auth_failed", "api_error"),
    (e.RateLimitError, 429, "requests", "upstream_rate_limited", "rate_limit_error"),
    (e.QuotaExceededError, 503, "server_error", "upstream_quota_exhausted", "api_error"),
    (e.BadRequestError, 400, "invalid_request_error", "upstream_refused", "invalid_request_error"),
    (e.ProviderTimeout, 504, "server_error", "upstream_timeout", "api_error"),
    (e.UpstreamError, 502, "server_error", "upstream_error", "api_error"),
    (e.ProviderError, 502, "server_error", "upstream_error", "api_error"),
    # a dedicated endpoint's own API (waking one from zero): its faults, as the upstream's
    (e.EndpointTimeoutError, 504, "server_error", "upstream_timeout", "api_error"),
    (e.EndpointUnavailableError, 503, "server_error", "upstream_unavailable", "api_error"),
    (e.NotFoundError, 404, "invalid_request_error", "not_found", "not_found_error"),
    (e.InvalidInputError, 400, "invalid_request_error", "invalid_request", "invalid_request_error"),
    (e.ConfigError, 503, "server_error", "not_configured", "api_error"),
    (e.EndpointError, 502, "server_error", "upstream_error", "api_error"),
)

_BY_STATUS = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    405: ("invalid_request_error", "invalid_request_error"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "invalid_request_error"),
    429: ("requests", "rate_limit_error"),
}


# Faults that a retry of the same request cannot mend (a provider without its key, our key refused upstream, our
# upstream quota spent, an Idempotency-Key spent on another request or on a failed one): both SDKs retry every 5xx
# and 409 unless `x-should-retry: false`. A rate limiter whose Redis did not answer (a ConfigError too) may answer
# on the next try, and so may an Idempotency-Key whose first request is still running.
_FINAL = (e.ProviderConfigError, e.AuthError, e.QuotaExceededError, e.IdempotencyKeySpentError)


def problem_of(exc: BaseException) -> Problem | None:
    """The answer for an engine error, or None for an unexpected one."""
    for cls, status, openai_type, code, anthropic_type in _MAP:
        if isinstance(exc, cls):
            retry = getattr(exc, "retry_after", None)
            final = isinstance(exc, _FINAL)
            param = getattr(exc, "param", None)  # the field at fault, when the engine knows it
            return Problem(status, openai_type, code, anthropic_type, str(exc), retry, param=param, final=final)
    return None


def is_anthropic(request: Request) -> bool:
    """The request imitates Anthropic's API: its messages route, or the models routes asked by Anthropic's SDK (which
    sends anthropic-version on every request)."""
    path = request.url.path
    return path.startswith("/v1/messages") or (path.startswith("/v1/models") and "anthropic-version" in request.headers)


def render(request: Request, p: Problem) -> JSONResponse:
    """The problem in the envelope of the API the request's route imitates, with Retry-After when known."""
    if is_anthropic(request):
        body: dict[str, object] = {
            "type": "error",
            "error": {"type": p.anthropic_type, "message": p.message},
            "request_id": request_id(request),
        }
    else:
        body = {"error": {"message": p.message, "type": p.openai_type, "param": p.param, "code": p.code}}
    headers = {"x-request-id": request_id(request)}
    if p.final:
        headers["x-should-retry"] = "false"
    if p.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(p.retry_after)))
        headers["retry-after-ms"] = str(max(1, math.ceil(p.retry_after * 1000)))
    return JSONResponse(body, status_code=p.status, headers=headers)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


async def engine_error(request: Request, exc: Exception) -> JSONResponse:
    found = problem_of(exc)
    if found is None:
        return await unexpected_error(request, exc)
    if found.param == "messages" and request.url.path == "/v1/responses":  # the engine's messages are its `input`
        found = replace(found, param="input")
    return render(request, found)


def refuse_field(field: str, sentence: str) -> NoReturn:
    """Refuse the request for one of its fields, as a body that fails validation is (400 naming `field`): for fields
    checked in a route rather than by a schema (a multipart form's)."""
    raise RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": f"Value error, {sentence}"}])


def invalid(message: str, param: str | None = None) -> Problem:
    """A malformed request's 400 (OpenAI's invalid_request_error, Anthropic's too)."""
    return Problem(400, "invalid_request_error", "invalid_request", "invalid_request_error", message, param=param)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = await _key_refused(request)
    if refused is not None:  # the key first, as OpenAI and Anthropic answer: no key, no word about the body
        return refused
    errors = [err for err in exc.errors() if not _other_branch(err)] or exc.errors()
    if errors and errors[0].get("type") == "json_invalid":  # its location is a character offset, not a field
        where = errors[0].get("loc", ("body", "?"))[-1]
        why = str((errors[0].get("ctx") or {}).get("error") or "not JSON")
        message = f"Invalid request: the body is not valid JSON ({why} at character {where}); send one JSON object."
        return render(request, invalid(message))
    whole_body = (errors[0].get("type"), tuple(errors[0].get("loc", ()))) if errors else (None, ())
    kind = request.headers.get("content-type") or "none"
    # FastAPI reads a body as JSON only when it is said to be JSON
    if whole_body == ("model_attributes_type", ("body",)) and "json" not in kind.lower():
        message = (
            f"Invalid request: the body must be JSON sent with `Content-Type: application/json` (this one said"
            f" {kind!r})."
        )
        return render(request, invalid(message))
    if whole_body == ("missing", ("body",)):
        return render(request, invalid("Invalid request: the body is empty; send one JSON object."))
    refusals = [err for err in errors if str(err.get("msg", "")).startswith("Value error, ")]
    parts = []
    for err in (refusals or errors)[:3]:  # a sentence of ours says more than the union's other branches
        where = ".".join(str(x) for x in _field_path(err))
        what = str(err.get("msg", "invalid")).removeprefix("Value error, ").rstrip(".")
        parts.append(f"{where}: {what}" if where else what)
    message = "Invalid request: " + "; ".join(parts) + "."
    path = _field_path((refusals or errors or [{}])[0])
    param = str(path[0]) if path else None
    return render(request, invalid(message, param))


async def _key_refused(request: Request) -> JSONResponse | None:
    """The 401 for a request whose key would be refused (none, unknown, revoked, expired), else None. Counts nothing
    against the key's limits; a database that cannot answer leaves the body's own error to be told."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return None
    try:
        await in_thread(services.keys.authenticate)(SYSTEM, presented_key(request))
    except e.UnauthenticatedError as exc:
        return render(request, problem_of(exc))  # type: ignore[arg-type]
    except e.CoreError:
        return None
    return None


def _other_branch(err: Any) -> bool:
    """An error from the branch of a `str | list` field the value was plainly not meant for (a list is not a string):
    the other branch's error says what is wrong."""
    return (err.get("type") == "string_type" and isinstance(err.get("input"), list)) or (
        err.get("type") == "list_type" and isinstance(err.get("input"), str)
    )


# The `type` values the request schemas' discriminated unions pick a branch by: pydantic puts the branch's tag in an
# error's location after the list index (messages.0.content.0.image_url.image_url.detail), where it reads as a field.
_UNION_TAGS = frozenset(
    {"text", "image_url", "image", "tool_use", "tool_result", "input_text", "output_text", "input_image", "message"}
    | {"function_call", "function_call_output", "base64", "url"}
)


def _field_path(err: Any) -> list[Any]:
    """Where in the body an error is: its location without `body` and pydantic's union branch names and tags."""
    loc = [x for x in err.get("loc", ()) if x != "body" and not (isinstance(x, str) and ("[" in x or "-" in x))]
    return [
        x for i, x in enumerate(loc) if not (0 < i < len(loc) - 1 and isinstance(loc[i - 1], int) and x in _UNION_TAGS)
    ]


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    openai_type, anthropic_type = _BY_STATUS.get(exc.status_code, ("invalid_request_error", "invalid_request_error"))
    message = str(exc.detail) if exc.detail else "Request refused."
    code = None
    if exc.status_code == 404:
        message = f"Unknown route {request.method} {request.url.path}; /docs lists the routes."
    elif exc.status_code == 400:  # FastAPI's "There was an error parsing the body": not UTF-8, nested too deep, ...
        code = "invalid_request"
        if message == "There was an error parsing the body":
            message = "Invalid request: the body could not be parsed; send one JSON object in UTF-8."
    return render(request, Problem(exc.status_code, openai_type, code, anthropic_type, message))


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or stayed busy (any driver's OperationalError, SQLAlchemy's, or the engine's
    DatabaseError): a passing state, not a fault of the request."""
    return isinstance(exc, e.DatabaseError) or any(c.__name__ == "OperationalError" for c in type(exc).__mro__)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id(request)
    if database_unavailable(exc):
        # before the upstream was called (a call that reached it is settled or kept in the settlement spool)
        log.warning("request %s: the database is unavailable (%s)", rid, type(exc).__name__)
        message = (
            f"The gateway's database is unavailable (request {rid}); nothing was charged for this request. "
            "Try again in a few seconds."
        )
        return render(request, Problem(503, "server_error", "database_unavailable", "api_error", message, 5.0))
    log.error("request %s failed: %s", rid, type(exc).__name__, exc_info=exc)
    message = (
        f"The gateway failed on its side (request {rid}); try again, and give an admin the request id if it repeats."
    )
    return render(request, Problem(500, "server_error", "internal_error", "api_error", message))
