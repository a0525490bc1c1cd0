"""The Anthropic-compatible routes: POST /v1/messages, plain and streamed, for the catalog's Anthropic models (the
official `anthropic` SDK works against it unchanged), billed like every other call; and POST
/v1/messages/count_tokens (`client.messages.count_tokens`), free as Anthropic's is. Both with Anthropic's error
envelope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from core.gateway import anthropic_format
from core.gateway.deps import IdempotencyKey, admit, answer_id, billing_headers, request_id, services_of, stream_headers
from core.gateway.errors import problem_of
from core.gateway.json_route import JsonRoute
from core.gateway.schemas import CountTokensRequest, MessagesRequest, TokenCount
from core.gateway.streaming import relay, sse
from core.gateway.threads import in_thread
from core.services.errors import InvalidInputError

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"], route_class=JsonRoute)


@router.post("/messages", summary="Create a message (Anthropic models)")
@in_thread
def messages(body: MessagesRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    services = services_of(request)
    model = services.models.get(who, body.model)
    if model.provider not in ("anthropic", "sandbox"):
        raise InvalidInputError(
            f"{body.model} is served by {model.provider}, not Anthropic; /v1/messages serves Anthropic models (use "
            "/v1/chat/completions for every chat model)."
        )
    gen = anthropic_format.messages_request(body)
    rid, aid = request_id(request), answer_id(request, who, key)
    if not body.stream:
        result = services.generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
        return JSONResponse(anthropic_format.message(result, aid), headers=billing_headers(request, result))
    writer = anthropic_format.MessageStream(aid, body.model)
    stream = services.generation.stream(who, who.user_id, body.model, gen, idempotency_key=key)

    def fault(exc: BaseException) -> bytes:
        p = problem_of(exc)
        error = {"type": p.anthropic_type if p else "api_error", "message": p.message if p else f"request {rid} failed"}
        return sse({"type": "error", "error": error}, "error")

    events = relay(
        stream,
        start=lambda s: [sse(d, e) for e, d in writer.start(s.stated_input)],
        chunk=lambda item: b"".join(sse(d, e) for e, d in writer.piece(item)),
        finish=lambda s: [sse(d, e) for e, d in writer.end(s.result)],
        fault=fault,
        start_with_first=True,  # message_start carries the prompt's count, which Anthropic states before its text
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=stream_headers(request, stream))


@router.post(
    "/messages/count_tokens",
    summary="Count a message's input tokens (an estimate, as Anthropic's is; free)",
    response_model=TokenCount,
    description="The input tokens a `POST /v1/messages` with this prompt would send: Anthropic's own count for its "
    "models, the gateway's estimate (the upper bound its credit hold reserves for) for every other chat model. Like "
    "Anthropic's, the figure is an estimate. Nothing is held, charged or logged; it counts against the key's requests "
    "per minute.",
)
@in_thread
def count_tokens(body: CountTokensRequest, request: Request) -> JSONResponse:
    who = admit(request)
    tokens = services_of(request).generation.count_tokens(who, body.model, anthropic_format.prompt_request(body))
    return JSONResponse({"input_tokens": tokens}, headers={"x-request-id": request_id(request)})
