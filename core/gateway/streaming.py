"""Server-sent events from the engine's (synchronous) streams, and what happens when the client goes away.

Each chunk is read from the `GenerationStream` in a worker thread. When the client disconnects, Starlette cancels the
response; the stream is then closed (in a thread, shielded from the cancellation), which stops the upstream read
and settles the call for the text received so far, releasing the rest of its hold. A fault after the first chunk
cannot change the status any more: it is sent as an error event in the API's own shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from anyio.to_thread import run_sync

from core.services.generation import GenerationStream

_DONE = object()


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event (`data` as compact JSON, or as it is when a string)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()


def _next(chunks: Iterator[str]) -> object:
    try:
        return next(chunks)
    except StopIteration:
        return _DONE


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
    try:
        piece = await run_sync(_next, stream) if start_with_first else None
        for event in start(stream):
            yield event
        while True:
            if piece is None:
                piece = await run_sync(_next, stream)
            if piece is _DONE:
                break
            yield chunk(piece)  # type: ignore[arg-type]
            piece = None
        for event in finish(stream):
            yield event
    except Exception as exc:
        yield fault(exc)
    finally:
        if not stream.done:
            # The client went away (or the stream failed): stop the upstream and settle what was received.
            with anyio.CancelScope(shield=True):
                await run_sync(stream.close)
