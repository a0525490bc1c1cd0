"""Bounded request bodies: OpenAI's 25 MB for uploaded audio, 16 MB for a JSON request. A body over its bound is
refused with 413 before the route runs (by its Content-Length, or while it is being read), so nothing is written."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024 * 1024
UPLOAD_ROUTES = ("/v1/audio/transcriptions", "/v1/voices/clone")
UPLOAD_LIMIT = 25 * MB + 64 * 1024  # the file plus the multipart envelope and form fields
JSON_LIMIT = 16 * MB


class _TooLarge(Exception):
    pass


def limit_for(path: str) -> int:
    return UPLOAD_LIMIT if path in UPLOAD_ROUTES else JSON_LIMIT


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = limit_for(path)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(scope, send, limit)
            return
        seen = 0
        started = False
        too_large = False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if too_large:  # the route answered the interrupted read its own way (FastAPI: 400 "error parsing the
                if not started:  # body", for a body sent without a Content-Length): the 413 instead
                    started = True
                    await _refuse(scope, send, limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _refuse(scope, send, limit)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    message = f"The request body is larger than this route accepts ({limit // MB} MB); send a smaller one."
    body: dict[str, object]
    if scope["path"].startswith("/v1/messages"):  # with its request id, as every Anthropic error of the gateway
        rid = scope.get("state", {}).get("request_id")
        body = {"type": "error", "error": {"type": "request_too_large", "message": message}, "request_id": rid}
    else:
        body = {
            "error": {"message": message, "type": "invalid_request_error", "param": None, "code": "request_too_large"}
        }
    data = json.dumps(body, separators=(",", ":")).encode()  # as the other answers are written
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
