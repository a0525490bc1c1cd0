"""Routes of their own for what OpenAI's API has no shape for: music generation and voice cloning (MiniMax's models,
and the sandbox's stand-ins). Billed like every other call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from core.gateway.deps import IdempotencyKey, admit, billing_headers, services_of
from core.gateway.json_route import JsonRoute
from core.gateway.schemas import MusicRequest
from core.gateway.threads import in_thread
from core.services.generation import GenerationRequest

router = APIRouter(prefix="/v1", tags=["Music and voices"], route_class=JsonRoute)


@router.post(
    "/music/generations",
    summary="Generate music from a prompt and optional lyrics (e.g. MiniMax music-2.0)",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}, "audio/wav": {}}}},
)
@in_thread
def music(body: MusicRequest, request: Request, key: IdempotencyKey = None) -> Response:
    who = admit(request)
    gen = GenerationRequest(category="music", text=body.prompt, lyrics=body.lyrics)
    result = services_of(request).generation.generate(who, who.user_id, body.model, gen, idempotency_key=key)
    return Response(result.data or b"", media_type=result.mime, headers=billing_headers(request, result))


@router.post("/voices/clone", summary="Clone a voice from a sample (e.g. MiniMax voice-clone); multipart upload")
@in_thread
def clone_voice(
    request: Request,
    file: Annotated[UploadFile, File(description="a voice sample of at least 10 seconds (at most 25 MB)")],
    model: Annotated[str, Form(min_length=1, max_length=200)],
    voice_id: Annotated[str, Form(min_length=1, max_length=200, description="the id the new voice gets")],
    text: Annotated[str | None, Form(max_length=1_000, description="a sentence to preview the voice with")] = None,
    key: IdempotencyKey = None,
) -> Response:
    who = admit(request)
    sample = file.file.read()
    gen = GenerationRequest(
        category="voice_clone",
        audio=sample,
        audio_filename=file.filename or "sample",
        audio_mime=file.content_type,
        voice=voice_id,
        text=text,
    )
    result = services_of(request).generation.generate(who, who.user_id, model, gen, idempotency_key=key)
    body = {"voice_id": result.voice_id, "model": result.model_id, "note": result.text}
    return JSONResponse(body, headers=billing_headers(request, result))
