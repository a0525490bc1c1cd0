"""Server-sent events, as OpenAI, Anthropic and Hugging Face stream them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from core.providers.errors import UpstreamError


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


class JsonEvents:
    """A streaming response read as (event name, JSON payload) pairs, closed when the iteration ends.

    A stream that breaks ends the iteration quietly and `broken` says why: a timeout, a dropped connection, a payload
    that is not JSON, a reason the reader gave `stop()` (an error event), or a stream that simply ended without its
    end marker: `done`, a data line that ends the stream normally (OpenAI's `[DONE]`), or the reader's own `stop()` on
    the event that ends it (Anthropic's `message_stop`, TGI's last event). Whoever reads decides what a break means:
    `raise_if_empty` and `mark` below. Use it in a `with` block, so the response is closed however the reading ends
    (a caller may stop reading mid-stream).
    """

    def __init__(self, response: httpx.Response, *, done: str | None = None) -> None:
        self.response = response
        self.done = done
        self.broken: str | None = None
        self.ended = False  # the end marker arrived
        self._stopped = False

    def __enter__(self) -> JsonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.response.close()

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        try:
            for event in iter_sse(self.response.iter_lines()):
                if self.done is not None and event.data.strip() == self.done:
                    self.ended = True
                    return
                try:
                    payload = json.loads(event.data)
                except json.JSONDecodeError:
                    self.broken = f"malformed event {event.data[:80]!r}"
                    return
                yield event.event, payload
                if self._stopped:
                    return
            if not self.ended:
                self.broken = self.broken or "the stream ended without its end marker"
        except httpx.TimeoutException as exc:
            self.broken = f"timeout ({type(exc).__name__})"
        except httpx.TransportError as exc:
            self.broken = f"connection broke ({type(exc).__name__})"
        finally:
            self.response.close()

    def stop(self, broken: str | None = None) -> None:
        """End the stream after the current event: normally, or as broken for the reason given."""
        self._stopped = True
        self.broken = broken or self.broken
        self.ended = self.ended or broken is None

    def raise_if_empty(self, text: str, *, display_name: str, provider: str, usage_stated: bool = False) -> None:
        """No output is an error (nothing delivered, nothing charged): a stream that broke before any text, or one
        that ended without text and without the upstream stating any usage (e.g. HTTP 200, then closed at once)."""
        if text:
            return
        if self.broken:
            raise UpstreamError(
                f"{display_name}'s stream broke before any output ({self.broken}); try again.", provider=provider
            )
        if not usage_stated:
            raise UpstreamError(
                f"{display_name}'s stream ended without any output or usage; nothing was charged, try again.",
                provider=provider,
            )

    def mark(self, metadata: dict[str, Any]) -> None:
        """Flag a result cut short by a break (it is still billed: the upstream produced those tokens)."""
        if self.broken:
            metadata["stream_error"] = self.broken
            metadata["incomplete"] = True
