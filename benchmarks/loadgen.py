"""A lean HTTP/1.1 load generator for the gateway benchmarks: one kept-alive connection per simulated client on
asyncio streams, responses parsed by httptools (uvicorn's own parser, already a runtime dependency).

Why not httpx: the clients share the two cores with the gateway and the upstream, so whatever the load generator
spends is taken from what it measures. httpx's AsyncClient cost ~1.6 ms of CPU per request here (its request and
response models, h11, the pool), about a third of the gateway's own; this costs ~0.1 ms, as `wrk` or `hey` would.
It sends exactly what an SDK sends (a JSON body with Content-Length, keep-alive) and reads the whole answer, chunked
(streams) or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass
class Reply:
    status: int
    body: bytes
    seconds: float  # request written -> last byte read
    ttft: float | None  # request written -> first SSE event carrying text (streams)


class _Parsed:
    """httptools callbacks for one response."""

    def __init__(self, started: float, watch_text: bool) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = False
        self.started = started
        self.watch_text = watch_text
        self.chunks: list[bytes] = []
        self.done = False
        self.ttft: float | None = None
        self._tail = b""

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if self.watch_text and self.ttft is None:
            text = self._tail + body
            lines = text.split(b"\n")
            self._tail = lines.pop()
            if any(line.startswith(b"data: {") and _has_text(line[6:]) for line in lines):
                self.ttft = time.perf_counter() - self.started

    def on_headers_complete(self) -> None:
        # asked here: once the message is complete, llhttp's should_keep_alive() answers False (which closed and
        # reopened every connection after one request, as no SDK does)
        self.keep_alive = bool(self.parser and self.parser.should_keep_alive())

    def on_message_complete(self) -> None:
        self.done = True


def _has_text(data: bytes) -> bool:
    event = json.loads(data)
    if "choices" in event:  # OpenAI chunk
        choices = event.get("choices") or [{}]
        return bool((choices[0].get("delta") or {}).get("content"))
    return event.get("type") == "content_block_delta"  # Anthropic event


class Connection:
    """One kept-alive HTTP/1.1 connection to `base` (http://host:port), sending one request at a time."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.reopened = 0  # connections the server asked to close (counted: they cost both sides a handshake)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str], *, stream: bool = False
    ) -> Reply:
        """POST `body` as JSON to `path` (after the base URL's own path); the whole answer is read."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(payload)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is opened again, once
            if self._writer is None:
                await self._open()
            try:
                return await self._exchange(request, stream)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, request: bytes, stream: bool) -> Reply:
        assert self._reader is not None and self._writer is not None
        started = time.perf_counter()
        self._writer.write(request)
        parsed = _Parsed(started, stream)
        parser = parsed.parser = httptools.HttpResponseParser(parsed)
        while not parsed.done:
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        seconds = time.perf_counter() - started
        if not parsed.keep_alive:
            self.reopened += 1
            await self.close()
        return Reply(parser.get_status_code(), b"".join(parsed.chunks), seconds, parsed.ttft)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
