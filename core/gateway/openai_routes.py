"""OpenAI-compatible routes: chat completions (plain and streamed, honouring stream_options.include_usage), responses
(the Responses API, for text; plain and streamed), speech, transcriptions (multipart), image generations and the
models the key may call. Every chat model of every provider is reachable through chat completions and responses (the
engine translates to Anthropic's shape and back); every text-to-speech and speech-to-text model through the audio
routes. Each call is billed through `services.generation` to the key's owner."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from core.gateway import anthropic_format, openai_format, responses_format
from core.gateway.deps import IdempotencyKey, admit, answer_id, billing_headers, request_id, services_of, stream_headers
from core.gateway.errors import is_anthropic, problem_of, refuse_field
from core.gateway.json_route import JsonRoute
from core.gateway.schemas import ChatCompletionRequest, ImageRequest, ResponsesRequest, SpeechRequest
from core.gateway.streaming import relay, sse
from core.gateway.threads import in_thread
from core.services.generation import GenerationRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], route_class=JsonRoute)
ModelName = Annotated[str, Form(min_length=1, max_length=200)]


@router.post("/chat/completions", summary="Create a chat completion (any chat model of the catalog)")
@in_thread
def chat_completions(body: ChatCompletionRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    services = services_of(request)
    gen = openai_format.chat_request(body)
    rid, aid = request_id(request), answer_id(request, who, key)
    if not body.stream:
        result = services.generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
        return JSONResponse(openai_format.chat_completion(result, aid), headers=billing_headers(request, result))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = openai_format.ChunkWriter(aid, body.model, include_usage)
    stream = services.generation.stream(who, who.user_id, body.model, gen, idempotency_key=key)

    def fault(exc: BaseException) -> bytes:
        message, kind, _code = stream_fault(exc, rid)
        return sse({"error": {"message": message, "type": kind, "code": None}})

    events = relay(
        stream,
        start=lambda _stream: [sse(writer.chunk({"role": "assistant", "content": ""}))],
        chunk=lambda item: sse(writer.piece(item)),
        finish=lambda s: [*(sse(c) for c in writer.final(s.result)), sse("[DONE]")],
        fault=fault,
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=stream_headers(request, stream))


def stream_fault(exc: BaseException, rid: str) -> tuple[str, str, str | None]:
    """The message, OpenAI error type and code of a fault after a stream's start (sent as its last event)."""
    p = problem_of(exc)
    if p is None:
        return f"The stream failed on the gateway's side (request {rid}).", "server_error", "internal_error"
    return p.message, p.openai_type, p.code


@router.post("/responses", summary="Create a response: OpenAI's Responses API, text (any chat model of the catalog)")
@in_thread
def responses(body: ResponsesRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    services = services_of(request)
    gen = responses_format.generation_request(body)
    rid, aid = request_id(request), answer_id(request, who, key)
    if not body.stream:
        result = services.generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
        answer = responses_format.response(aid, body, result.model_id, result)
        return JSONResponse(answer, headers=billing_headers(request, result))
    writer = responses_format.EventWriter(aid, body)
    stream = services.generation.stream(who, who.user_id, body.model, gen, idempotency_key=key)

    def fault(exc: BaseException) -> bytes:
        message, _kind, code = stream_fault(exc, rid)
        return sse(*reversed(writer.error(message, code)))

    events = relay(
        stream,
        start=lambda _stream: [sse(d, e) for e, d in writer.start()],
        chunk=lambda item: b"".join(sse(d, e) for e, d in writer.piece(item)),
        finish=lambda s: [sse(d, e) for e, d in writer.finish(s.result)],
        fault=fault,
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=stream_headers(request, stream))


@router.post(
    "/audio/speech",
    summary="Text to speech (any text-to-speech model: OpenAI, Hugging Face, MiniMax, bark)",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}, "audio/wav": {}, "audio/flac": {}}}},
)
@in_thread
def speech(body: SpeechRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    options: dict[str, Any] = {"format": body.response_format}
    if body.speed is not None:
        options["speed"] = body.speed
    if body.instructions:
        options["instructions"] = body.instructions
    gen = GenerationRequest(category="tts", text=body.input, voice=body.voice, options=options)
    result = services_of(request).generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
    return Response(result.data or b"", media_type=result.mime, headers=billing_headers(request, result))


@router.post("/audio/transcriptions", summary="Speech to text (any speech-to-text model; multipart upload)")
@in_thread
def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio: WAV, FLAC, MP3, ... (at most 25 MB)")],
    model: ModelName,
    response_format: Annotated[Literal["json", "text", "verbose_json"], Form()] = "json",
    language: Annotated[str | None, Form(max_length=20)] = None,
    prompt: Annotated[str | None, Form(max_length=10_000)] = None,
    temperature: Annotated[float | None, Form()] = None,
    stream: Annotated[bool | None, Form()] = None,
    timestamp_granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    key: IdempotencyKey = None,
) -> Response:
    who = admit(request)
    # they change the answer and are not passed on (every speech-to-text model answers the same way): refused
    if temperature:
        refuse_field("temperature", "`temperature` other than 0 is not supported by this gateway; leave it out")
    if stream:
        refuse_field("stream", "a streamed transcription is not supported by this gateway; leave `stream` out")
    if timestamp_granularities:
        refuse_field(
            "timestamp_granularities",
            "timestamps are not supported by this gateway; `verbose_json` answers the text, duration and language",
        )
    audio = file.file.read()
    hints = {name: value for name, value in (("language", language), ("prompt", prompt)) if value}
    gen = GenerationRequest(
        category="speech_to_text",
        audio=audio,
        audio_filename=file.filename or "audio",
        audio_mime=file.content_type,
        options=hints,
    )
    result = services_of(request).generation.generate(who, who.user_id, model, gen, idempotency_key=key)
    body = openai_format.transcription(result, response_format, language)
    headers = billing_headers(request, result)
    if isinstance(body, str):
        return PlainTextResponse(body, headers=headers)
    return JSONResponse(body, headers=headers)


@router.post("/images/generations", summary="Generate an image (any image model)")
@in_thread
def images(body: ImageRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    gen = GenerationRequest(category="image", text=body.prompt, size=body.size, quality=body.quality, n=body.n or 1)
    result = services_of(request).generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
    return JSONResponse(openai_format.image(result, body.response_format), headers=billing_headers(request, result))


@router.get(
    "/models",
    summary="The models this key may call (Anthropic's shape, a page at a time, when anthropic-version is sent)",
)
@in_thread
def models(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="Anthropic's shape: models per page (20)")] = None,
    after_id: Annotated[str | None, Query(max_length=200, description="Anthropic's shape: the page after")] = None,
    before_id: Annotated[str | None, Query(max_length=200, description="Anthropic's shape: the page before")] = None,
) -> Response:
    who = admit(request)
    entries = services_of(request).keys.models(who)
    headers = {"x-request-id": request_id(request)}
    if is_anthropic(request):
        page = anthropic_format.models(entries, limit=limit, after_id=after_id, before_id=before_id)
        return JSONResponse(page, headers=headers)
    return JSONResponse(openai_format.models(entries), headers=headers)


@router.get("/models/{model_id:path}", summary="One model this key may call (Anthropic's shape with anthropic-version)")
@in_thread
def model(model_id: str, request: Request) -> Response:
    who = admit(request)
    entry = services_of(request).keys.model(who, model_id)
    shape = anthropic_format.model if is_anthropic(request) else openai_format.model
    return JSONResponse(shape(entry), headers={"x-request-id": request_id(request)})
