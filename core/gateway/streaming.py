"""Server-sent events from the engine's (synchronous) streams, and what happens when the client goes away.

A stream's chunks are read by one pump for the whole stream (`_Pump`), which hands them to the response in batches:
whatever arrived together (an upstream often sends several events in one packet) wakes the response once. The pump is
a worker thread, or, when the gateway runs its calls on the event loop (core/gateway/threads.py), a call on the loop
itself (core.event_loop), whose upstream reads hand the loop back. Reading each chunk in its own worker-thread call
cost two thread hand-offs per chunk, most of a short stream's CPU. The pump reads at most `READ_AHEAD` chunks ahead of
what the client has been sent, and stops when the client goes away.

When the client disconnects, Starlette cancels the response; the pump is then told to stop, and it closes the stream
(the relay waits for it, shielded from the cancellation), which stops the upstream read and settles the call for the
text received so far, releasing the rest of its hold. A fault after the first chunk cannot change the status any more:
it is sent as an error event in the API's own shape.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from core import event_loop
from core.gateway.threads import ROUTES_ON_LOOP
from core.services.generation import GenerationStream

READ_AHEAD = 16  # chunks read from the upstream but not yet handed to the client, at most
# One thread per running stream, made when needed; streams beyond this many at once wait for a thread (not refused).
PUMP_THREADS = 1024
_pumps = ThreadPoolExecutor(max_workers=PUMP_THREADS, thread_name_prefix="stream-pump")


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event (`data` as compact JSON, or as it is when a string)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()


class _End:
    """The last item a pump hands over: the stream ended (`error` None) or failed."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Pump:
    """Reads a stream to its end in one worker thread or, `on_loop`, as a call on the event loop (whose waits for room
    then hand the loop back instead of blocking it), handing its chunks to the event loop in batches."""

    def __init__(self, stream: GenerationStream, loop: asyncio.AbstractEventLoop, *, on_loop: bool = False) -> None:
        self._stream = stream
        self._loop = loop
        self._on_loop = on_loop
        self._cond = threading.Condition()
        self._items: deque[str | _End] = deque()
        self._stopping = False
        self._waiting = False  # the loop waits for `_ready`
        self._ready = asyncio.Event()
        self._room = asyncio.Event()  # on the loop: set when the client was sent what was read ahead, or on stop

    def run(self) -> None:  # in the worker thread, or on the loop
        end = _End()
        try:
            for piece in self._stream:
                with self._cond:
                    if self._stopping:
                        break
                    self._hand_over(piece)
                self._wait_for_room()
                if self._stopping:
                    break
        except BaseException as exc:  # handed to the loop, which sends the API's error event
            end = _End(exc)
        finally:
            if self._stopping and not self._stream.done:
                self._stream.close()  # stops the upstream read, settles what was received
            with self._cond:
                self._hand_over(end)

    def _wait_for_room(self) -> None:
        """While `READ_AHEAD` chunks wait for the client (and the pump is not stopping): on the loop, hand it back;
        in the worker thread, wait on the condition."""
        if self._on_loop:
            while len(self._items) >= READ_AHEAD and not self._stopping:
                self._room.clear()
                event_loop.wait(self._room.wait())
            return
        with self._cond:
            while len(self._items) >= READ_AHEAD and not self._stopping:
                self._cond.wait()

    def _hand_over(self, item: str | _End) -> None:  # with self._cond held
        self._items.append(item)
        if self._waiting:
            self._waiting = False
            if self._on_loop:
                self._ready.set()
            else:
                self._loop.call_soon_threadsafe(self._ready.set)

    async def batches(self) -> AsyncIterator[list[str | _End]]:
        while True:
            with self._cond:
                batch = list(self._items)
                self._items.clear()
                if batch:
                    self._cond.notify()  # room again for a pump waiting on READ_AHEAD
                    self._room.set()
                else:
                    self._waiting = True
                    self._ready.clear()
            if batch:
                yield batch
            else:
                await self._ready.wait()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._room.set()


async def relay(
    stream: GenerationStream,
    *,
    start: Callable[[GenerationStream], list[bytes]],
    chunk: Callable[[str], bytes],
    finish: Callable[[GenerationStream], list[bytes]],
    fault: Callable[[BaseException], bytes],
    start_with_first: bool = False,
) -> AsyncIterator[bytes]:
    """The SSE body of a stream: `start(stream)`'s events, one `chunk(text)` per piece, then `finish(stream)`'s
    events (the stream's `.result` is set by then); on an error after the start, `fault(exc)`'s event.

    `start_with_first`: read the first piece (or the end) before the start events, so that what the upstream states
    ahead of its text (`stream.stated_input`: Anthropic's prompt counts) can go into them."""
    loop = asyncio.get_running_loop()
    on_loop = ROUTES_ON_LOOP.get()
    pump = _Pump(stream, loop, on_loop=on_loop)
    running: asyncio.Future[None] | None = None
    try:
        if not start_with_first:
            for event in start(stream):
                yield event
        running = asyncio.ensure_future(event_loop.run(pump.run)) if on_loop else loop.run_in_executor(_pumps, pump.run)
        async for batch in pump.batches():
            # A batch goes out as one body message: each message costs a pass through every middleware's `send` and
            # uvicorn's, which was most of a streamed call's event-loop CPU when events went one by one.
            out: list[bytes] = []
            if start_with_first:
                start_with_first = False
                if not (isinstance(batch[0], _End) and batch[0].error is not None):
                    out.extend(start(stream))
            for item in batch:
                if isinstance(item, _End):
                    if item.error is not None:
                        if out:
                            yield b"".join(out)
                        raise item.error
                    out.extend(finish(stream))
                    yield b"".join(out)
                    return
                out.append(chunk(item))
            if out:
                yield b"".join(out)
    except Exception as exc:
        yield fault(exc)
    finally:
        if running is None:
            if not stream.done:  # never pumped (the client left during the start): settle off the response's task
                with anyio.CancelScope(shield=True):
                    if on_loop:
                        await event_loop.run(stream.close)
                    else:
                        await anyio.to_thread.run_sync(stream.close)
        elif not running.done():
            # The client went away (or sending failed): the pump stops the upstream and settles what was received.
            pump.stop()
            with anyio.CancelScope(shield=True):
                await running
