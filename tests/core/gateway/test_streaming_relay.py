"""The relay between an engine stream (read in one worker thread, or as a call on the event loop when the gateway runs
its calls there) and the SSE body: every chunk in order, the finish events once the stream's result is set, a fault
event on a failure, a bounded read-ahead, and a stream stopped (the upstream read ended, the call settled) when the
client goes away. Every test runs both ways."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Generator

import pytest

from core import event_loop
from core.gateway import streaming
from core.gateway.streaming import relay
from core.services.generation import GenerationStream
from tests.support.aio import run


@pytest.fixture(autouse=True, params=["pumped by a thread", "pumped on the event loop"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    on_loop = request.param == "pumped on the event loop"
    monkeypatch.setattr(streaming, "ROUTES_ON_LOOP", contextvars.ContextVar("routes_on_loop", default=on_loop))
    return request.param


class Upstream:
    """Chunks as an engine stream yields them; records how far it was read and whether it was closed."""

    def __init__(self, pieces: list[str], *, fail_after: int | None = None, gate: threading.Event | None = None):
        self.pieces, self.fail_after, self.gate = pieces, fail_after, gate
        self.read = 0
        self.on_loop: list[bool] = []  # where each chunk was read
        self.closed = threading.Event()

    def chunks(self) -> Generator[str, None, str]:
        try:
            for i, piece in enumerate(self.pieces):
                if self.fail_after is not None and i == self.fail_after:
                    raise ConnectionError("the upstream hung up")
                if self.gate is not None and i > 0:
                    for _ in range(1000):  # as an upstream read waits: on the loop, the loop serves others meanwhile
                        if self.gate.is_set():
                            break
                        event_loop.sleep(0.005)
                self.on_loop.append(event_loop.on_loop())
                self.read += 1
                yield piece
        except GeneratorExit:
            self.closed.set()
            raise
        return "result"


def _relay(stream: GenerationStream) -> object:
    return relay(
        stream,
        start=lambda s: [b"start"],
        chunk=lambda text: text.encode(),
        finish=lambda s: [f"end:{s.result}".encode()],
        fault=lambda exc: f"fault:{exc}".encode(),
    )


async def _collect(stream: GenerationStream) -> list[bytes]:
    return [event async for event in _relay(stream)]  # type: ignore[attr-defined]


def test_every_chunk_in_order_then_the_finish_events(where: str) -> None:
    up = Upstream([f"w{i} " for i in range(200)])
    out = run(_collect(GenerationStream(up.chunks())))
    assert up.on_loop == [where == "pumped on the event loop"] * 200
    # the start goes out on its own; then chunks read together go out together (one body message per batch)
    assert out[0] == b"start"
    assert b"".join(out[1:]) == b"".join(f"w{i} ".encode() for i in range(200)) + b"end:result"
    assert not up.closed.is_set()


def test_a_failure_mid_stream_is_sent_as_the_fault_event_after_what_was_delivered() -> None:
    up = Upstream(["a", "b", "c"], fail_after=2)
    out = run(_collect(GenerationStream(up.chunks())))
    assert out[0] == b"start" and out[-1] == b"fault:the upstream hung up"
    assert b"".join(out[1:-1]) == b"ab"


def test_the_pump_reads_a_bounded_number_of_chunks_ahead_of_a_slow_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "READ_AHEAD", 4)
    up = Upstream([f"w{i}" for i in range(100)])

    async def main() -> None:
        events = _relay(GenerationStream(up.chunks()))
        assert await events.__anext__() == b"start"  # type: ignore[attr-defined]
        assert (await events.__anext__()).startswith(b"w0")  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # the client reads nothing more for a while
        assert up.read <= 4 + 4 + 1  # the batch being sent, the read-ahead, and the chunk in hand
        await events.aclose()  # type: ignore[attr-defined]

    run(main())
    assert up.closed.is_set() and up.read < 100


def test_a_client_that_goes_away_stops_the_stream_and_it_is_closed_before_the_relay_ends() -> None:
    gate = threading.Event()  # the upstream sends its first chunk, then waits
    up = Upstream(["first", "second", "third"], gate=gate)

    async def main() -> None:
        got: list[bytes] = []

        async def client() -> None:
            async for event in _relay(GenerationStream(up.chunks())):  # type: ignore[attr-defined]
                got.append(event)

        task = asyncio.create_task(client())
        while len(got) < 2:
            await asyncio.sleep(0.01)
        task.cancel()  # the client hangs up while the pump waits for the upstream's next chunk
        await asyncio.sleep(0.05)
        assert not task.done()  # the relay waits for the pump to stop the stream ...
        gate.set()  # ... which it does once its read returns
        with pytest.raises(asyncio.CancelledError):
            await task
        assert got == [b"start", b"first"]

    run(main())
    assert up.closed.is_set() and up.read == 2


def test_start_with_first_sends_the_start_events_once_the_first_piece_is_read() -> None:
    """Anthropic's message_start carries what the upstream stated ahead of its text: the start events wait for it."""
    seen: list[int] = []
    up = Upstream(["a", "b"])

    async def main(stream: GenerationStream) -> list[bytes]:
        def start(s: GenerationStream) -> list[bytes]:
            seen.append(up.read)
            return [b"start"]

        events = relay(
            stream,
            start=start,
            chunk=str.encode,
            finish=lambda s: [b"end"],
            fault=lambda e: b"fault",
            start_with_first=True,
        )
        return [e async for e in events]

    out = run(main(GenerationStream(up.chunks())))
    assert out[0].startswith(b"start") and b"".join(out) == b"startabend"
    assert seen and seen[0] >= 1  # the first piece had been read when the start events were made
    failing = Upstream(["a"], fail_after=0)
    assert run(main(GenerationStream(failing.chunks()))) == [b"fault"]  # no start for a stream that never began
