"""A loopback HTTP server that answers like OpenAI (chat, streamed chat, speech, transcriptions), for end-to-end
tests of the command line and for the gateway benchmark. It records every request it receives."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_COMPLETION = {
    "id": "chatcmpl-loopback",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello from the loopback."}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "system_fingerprint": "fp_loopback",
}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


STREAM_EVENTS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hello "}),
    _chunk({"content": "from the "}),
    _chunk({"content": "loopback."}),
    _chunk({}, "stop"),
    {**_chunk({}), "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}},
]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackState:
    requests: list[Recorded] = field(default_factory=list)
    status_override: int | None = None  # reply this status with an OpenAI error body to every request
    record: bool = True


def _handler(state: LoopbackState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1  # headers and body leave in one write (flushed after each request), as real servers do

        def setup(self) -> None:
            super().setup()
            # No Nagle: a small reply is not held back waiting for the client's delayed ACK (a 40 ms stall).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-request-id", "req_loopback")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if state.record:
                state.requests.append(
                    Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            if state.status_override:
                err = {"error": {"message": "Incorrect API key provided: sk-fake.", "type": "invalid_request_error"}}
                self._send(state.status_override, json.dumps(err).encode(), "application/json")
                return
            if self.path.endswith("/chat/completions"):
                payload = json.loads(body)
                if payload.get("stream"):
                    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in STREAM_EVENTS) + "data: [DONE]\n\n"
                    self._send(200, sse.encode(), "text/event-stream")
                else:
                    self._send(200, json.dumps(CHAT_COMPLETION).encode(), "application/json")
            elif self.path.endswith("/audio/speech"):
                self._send(200, b"\xff\xfb\x90\x00" + bytes(413), "audio/mpeg")
            elif self.path.endswith("/audio/transcriptions"):
                reply = {"text": "Hello there.", "usage": {"type": "duration", "seconds": 42}}
                self._send(200, json.dumps(reply).encode(), "application/json")
            else:
                self._send(404, b'{"error": {"message": "Unknown path"}}', "application/json")

    return Handler


@contextmanager
def loopback_openai() -> Iterator[tuple[str, LoopbackState]]:
    """Yields (base URL ending in /v1, state) for a server on 127.0.0.1 on a free port; stopped on exit."""
    state = LoopbackState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="loopback-openai", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _serve_forever(port_out: Any) -> None:  # runs in the child process
    state = LoopbackState(record=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


@contextmanager
def loopback_openai_process() -> Iterator[str]:
    """The same server in its own process (no GIL shared with the caller), for benchmarks. Yields the base URL."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    ports = ctx.Queue()
    proc = ctx.Process(target=_serve_forever, args=(ports,), name="loopback-openai", daemon=True)
    proc.start()
    try:
        port = ports.get(timeout=30)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.join(5)
