"""Server-sent events, as OpenAI, Anthropic and Hugging Face stream them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str  # "message" unless the stream names it (Anthropic does: message_start, content_block_delta, ...)
    data: str


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Parse SSE lines (without their line endings) into events; `data:` lines of one event are joined with \\n."""
    event = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield SSEEvent(event or "message", "\n".join(data))
