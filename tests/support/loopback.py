"""A loopback HTTP server that answers like OpenAI (chat, streamed chat, speech, transcriptions, images) and like
Anthropic (messages, plain and streamed, and token counts), for end-to-end tests of the command line and the gateway
and for the gateway benchmarks. It records every request it receives; a slow stream (`slow_stream_words`) lets a test
hang up mid-stream and see the upstream read stop (`streams_cut`)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
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


def _tool_call_chunks() -> list[dict[str, Any]]:
    """A streamed answer that calls two functions, as gpt-4o-2024-08-06 streamed it (the `openai` SDK's recorded
    stream for parallel tool calls, tests/lib/chat/test_completions_streaming.py): each call's first fragment names
    its id and function, then its arguments come in pieces under its index; finish_reason tool_calls, then usage."""
    calls = [
        (
            "call_lQnnsesjFMWMQ5IeWPHzR4th",
            "GetWeatherArgs",
            ['{"ci', 'ty": ', '"Edinb', "urgh", '", "c', "ountry", '": "', 'UK", ', '"units', '": "', 'c"}'],
        ),
        (
            "call_2xjOUgaCdiwAcl9ZBL9LyMUU",
            "get_stock_price",
            ['{"ti', 'cker"', ': "AAP', 'L", ', '"exch', 'ange":', ' "NA', 'SDAQ"', "}"],
        ),
    ]
    chunks = [_chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, pieces) in enumerate(calls):
        first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        chunks.append(_chunk({"tool_calls": [first]}))
        chunks += [_chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces]
    usage = {"prompt_tokens": 149, "completion_tokens": 60, "total_tokens": 209}
    return [*chunks, _chunk({}, "tool_calls"), {**_chunk({}), "choices": [], "usage": usage}]


TOOL_STREAM_EVENTS = _tool_call_chunks()
TOOL_CALLS_STREAMED = [  # what TOOL_STREAM_EVENTS' fragments add up to
    ("call_lQnnsesjFMWMQ5IeWPHzR4th", "GetWeatherArgs", '{"city": "Edinburgh", "country": "UK", "units": "c"}'),
    ("call_2xjOUgaCdiwAcl9ZBL9LyMUU", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
]


def _finished(answer: dict[str, Any], reason: str) -> dict[str, Any]:
    """A completion or chunk with `reason` in place of its finish reason (if it has one)."""
    choices = [{**c, "finish_reason": reason} if c.get("finish_reason") else c for c in answer["choices"]]
    return {**answer, "choices": choices}


MESSAGE = {
    "id": "msg_loopback",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "Hello from the Anthropic loopback."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 20, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}
TOKEN_COUNT = {"input_tokens": 14}  # Anthropic's answer to POST /v1/messages/count_tokens


def _stopped(payload: dict[str, Any]) -> dict[str, Any]:
    """How Anthropic ends a message: at the first of the request's `stop_sequences` when it sends some (as if the
    model had produced it), else at the end of its turn."""
    stops = payload.get("stop_sequences") or []
    return {"stop_reason": "stop_sequence", "stop_sequence": stops[0]} if stops else {"stop_reason": "end_turn"}


def _anthropic_events(words: list[str], stopped: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {**MESSAGE, "content": [], "stop_reason": None, "usage": {**MESSAGE["usage"], "output_tokens": 1}}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        *(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            )
            for w in words
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None, **stopped},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _anthropic_tool_events() -> list[tuple[str, dict[str, Any]]]:
    """Claude's streamed answer that says a few words, then calls a tool, as Anthropic's streaming documentation shows
    it ("Streaming request with tool use", docs.anthropic.com/en/docs/build-with-claude/streaming): a text block, then
    a `tool_use` block whose input comes as `input_json_delta` pieces, stop_reason tool_use."""
    start = {**MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 472, "output_tokens": 2}}
    words = ["Okay", ",", " let", "'s", " check", " the", " weather", " for", " San", " Francisco", ",", " CA", ":"]
    pieces = ["", '{"location":', ' "San', " Francisc", "o,", ' CA"', ", ", '"unit": "fah', 'renheit"}']
    tool = {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}

    def delta(index: int, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": body}

    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        *(delta(0, {"type": "text_delta", "text": w}) for w in words),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": tool}),
        *(delta(1, {"type": "input_json_delta", "partial_json": p}) for p in pieces),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


ANTHROPIC_TOOL_EVENTS = _anthropic_tool_events()

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


_COUNTING = threading.Condition()


@dataclass
class LoopbackState:
    requests: list[Recorded] = field(default_factory=list)
    status_override: int | None = None  # reply this status with an OpenAI error body to every request
    record: bool = True
    slow_stream_words: int = 0  # > 0: streamed chat sends this many words, one every `word_delay` seconds
    word_delay: float = 0.02
    reply_delay: float = 0.0  # seconds to wait before answering a chat completion (plain)
    finish_reason: str = "stop"  # the finish reason of OpenAI chat answers ("length": stopped at max_tokens)
    empty_stream: bool = False  # streamed chat ends at once, without text (a fault the reader meets after its start)
    streams_done: int = 0  # streams sent to the end
    streams_cut: int = 0  # streams whose reader hung up before the end
    waiting: int = 0  # plain chat completions being delayed now (reply_delay)
    most_waiting: int = 0  # the most of them at once
    # > 0: a delayed chat completion is answered as soon as this many wait together (else after reply_delay)
    answer_when_waiting: int = 0


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
                if payload.get("stream") and state.slow_stream_words:
                    self._slow_stream(calls=bool(payload.get("tools")))
                elif payload.get("stream"):
                    events = [] if state.empty_stream else [_finished(e, state.finish_reason) for e in STREAM_EVENTS]
                    if payload.get("tools") and not state.empty_stream:
                        events = TOOL_STREAM_EVENTS
                    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                    self._send(200, sse.encode(), "text/event-stream")
                    state.streams_done += 1
                else:
                    with _COUNTING:
                        state.waiting += 1
                        state.most_waiting = max(state.most_waiting, state.waiting)
                        _COUNTING.notify_all()
                        if state.answer_when_waiting:
                            _COUNTING.wait_for(
                                lambda: state.most_waiting >= state.answer_when_waiting, state.reply_delay
                            )
                    if not state.answer_when_waiting:
                        time.sleep(state.reply_delay)
                    with _COUNTING:
                        state.waiting -= 1
                    reply = _finished(CHAT_COMPLETION, state.finish_reason)
                    self._send(200, json.dumps(reply).encode(), "application/json")
            elif self.path.endswith("/v1/messages/count_tokens"):
                self._send(200, json.dumps(TOKEN_COUNT).encode(), "application/json")
            elif self.path.endswith("/v1/messages"):
                payload = json.loads(body)
                if payload.get("stream"):
                    words = ["Hello ", "from ", "the ", "Anthropic ", "loopback."]
                    events = (
                        ANTHROPIC_TOOL_EVENTS if payload.get("tools") else _anthropic_events(words, _stopped(payload))
                    )
                    sse = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events)
                    self._send(200, sse.encode(), "text/event-stream", {"request-id": "req_anthropic_loopback"})
                else:
                    reply = {**MESSAGE, **_stopped(payload)}
                    self._send(200, json.dumps(reply).encode(), "application/json")
            elif self.path.endswith("/images/generations"):
                reply = {"created": 1741569952, "data": [{"b64_json": base64.b64encode(PNG_1PX).decode()}]}
                self._send(200, json.dumps(reply).encode(), "application/json")
            elif self.path.endswith("/audio/speech"):
                self._send(200, b"\xff\xfb\x90\x00" + bytes(413), "audio/mpeg")
            elif self.path.endswith("/audio/transcriptions"):
                reply = {"text": "Hello there.", "usage": {"type": "duration", "seconds": 42}}
                self._send(200, json.dumps(reply).encode(), "application/json")
            else:
                self._send(404, b'{"error": {"message": "Unknown path"}}', "application/json")

        def _slow_stream(self, calls: bool = False) -> None:
            """Chunked SSE, one word at a time (then, with `calls`, a function call, its arguments in two pieces); a
            reader that hangs up is counted in `streams_cut`."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [_chunk({"role": "assistant", "content": ""})]
            events += [_chunk({"content": f"word{i} "}) for i in range(state.slow_stream_words)]
            if calls:
                first = {"index": 0, "id": "call_slow", "type": "function", "function": {"name": "get_weather"}}
                first["function"]["arguments"] = '{"city": '
                events += [
                    _chunk({"tool_calls": [first]}),
                    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
                ]
            events += [_chunk({}, "tool_calls" if calls else "stop"), STREAM_EVENTS[-1]]
            try:
                for event in events:
                    data = f"data: {json.dumps(event)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    time.sleep(state.word_delay)
                done = b"data: [DONE]\n\n"
                self.wfile.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
                self.wfile.flush()
                state.streams_done += 1
            except OSError:
                state.streams_cut += 1
                self.close_connection = True

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 64 clients connecting at once would overflow the default backlog of 5

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is expected here (the disconnect tests do it on purpose): nothing to print."""


@contextmanager
def loopback_openai() -> Iterator[tuple[str, LoopbackState]]:
    """Yields (base URL ending in /v1, state) for a server on 127.0.0.1 on a free port; stopped on exit."""
    state = LoopbackState()
    server = _Server(("127.0.0.1", 0), _handler(state))
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
    server = _Server(("127.0.0.1", 0), _handler(state))
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
