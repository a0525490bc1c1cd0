"""A lean loopback upstream for the gateway benchmarks: OpenAI's chat completions, plain and streamed, with the same
bodies as the test suite's loopback (`tests.support.loopback`), served by one asyncio process with httptools.

Why not the test suite's loopback: that one is `http.server` with a thread per connection, which is right for tests
(it records requests, can fail, can stream slowly) but spent ~0.75 ms of CPU per request here, on the same two cores
as the gateway it is there to measure: with 64 clients that was an eighth of the machine. A provider's servers are
not on the gateway's machine; this one costs ~0.1 ms per request, so what the benchmark measures is the gateway.
Both sides of the comparison (the upstream called directly, and through the gateway) use it.

It answers at once unless told otherwise: `set_upstream_delay(base_url, ms)` makes every answer wait `ms` first, as a
provider's servers do (a real chat completion takes hundreds of milliseconds), for the runs that measure what the
gateway adds below saturation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import socket
from collections.abc import Iterator
from typing import Any

import httptools

from tests.support.loopback import CHAT_COMPLETION, STREAM_EVENTS

_PLAIN = json.dumps(CHAT_COMPLETION).encode()
_STREAM = ("".join(f"data: {json.dumps(e)}\n\n" for e in STREAM_EVENTS) + "data: [DONE]\n\n").encode()


def _reply(status: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        "x-request-id: req_loopback\r\n\r\n"
    )
    return head.encode() + body


_DELAY = [0.0]  # seconds each answer waits (set through POST /control/delay?ms=N)

_REPLIES = {
    "plain": _reply("200 OK", _PLAIN, "application/json"),
    "stream": _reply("200 OK", _STREAM, "text/event-stream"),
    "missing": _reply("404 Not Found", b'{"error": {"message": "Unknown path"}}', "application/json"),
    "ok": _reply("200 OK", b"{}", "application/json"),
    "bad": _reply("400 Bad Request", b'{"error": {"message": "The body is not JSON."}}', "application/json"),
}


class _Protocol(asyncio.Protocol):
    """One kept-alive connection: each complete request is answered at once."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        if url.startswith(b"/control/delay?ms="):
            _DELAY[0] = float(url.split(b"=", 1)[1]) / 1000
            self.transport.write(_REPLIES["ok"])
            return
        if not url.rstrip(b"/").endswith(b"/chat/completions"):
            self.transport.write(_REPLIES["missing"])
            return
        try:
            payload: Any = json.loads(body)
        except ValueError:
            self.transport.write(_REPLIES["bad"])
            return
        reply = _REPLIES["stream" if payload.get("stream") else "plain"]
        if _DELAY[0]:
            asyncio.get_running_loop().call_later(_DELAY[0], self._write, reply)
        else:
            self.transport.write(reply)

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


def _serve(sock: socket.socket) -> None:  # runs in the child process
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Protocol, sock=sock, backlog=512)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def set_upstream_delay(base_url: str, ms: float) -> None:
    """Make the upstream at `base_url` (as yielded by `lean_upstream_process`) wait `ms` before each answer."""
    host, port = base_url.removeprefix("http://").split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"POST /control/delay?ms={ms} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\n\r\n".encode())
        if not conn.recv(1024).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("the benchmark upstream refused its delay")


@contextlib.contextmanager
def lean_upstream_process() -> Iterator[str]:
    """The upstream in its own process on a free loopback port; yields its base URL (ending in /v1)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), name="lean-upstream", daemon=True)
    proc.start()
    sock.close()  # the child has its own copy
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.join(5)
