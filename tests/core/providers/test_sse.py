"""Server-sent events: parsing, and reading a stream of JSON events that may break."""

from __future__ import annotations

import httpx
import pytest

from core.providers.errors import UpstreamError
from core.providers.sse import JsonEvents, iter_sse


class Body(httpx.SyncByteStream):
    """A response body that sends `lines` and then, optionally, fails like a dropped connection."""

    def __init__(self, lines: list[str], fail: Exception | None = None) -> None:
        self.lines, self.fail, self.closed = lines, fail, False

    def __iter__(self):
        for line in self.lines:
            yield (line + "\n").encode()
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        self.closed = True


def response(lines: list[str], fail: Exception | None = None) -> tuple[httpx.Response, Body]:
    body = Body(lines, fail)
    return httpx.Response(200, stream=body, request=httpx.Request("POST", "https://x.test")), body


def test_events_are_joined_named_and_comments_skipped() -> None:
    lines = [": keep-alive", "event: message_start", 'data: {"a":', "data: 1}", "", "data: [DONE]", ""]
    events = list(iter_sse(lines))
    assert [(e.event, e.data) for e in events] == [("message_start", '{"a":\n1}'), ("message", "[DONE]")]


def test_json_events_end_at_the_done_line_and_close_the_response() -> None:
    resp, body = response(['data: {"n": 1}', "", "data: [DONE]", "", 'data: {"n": 2}', ""])
    with JsonEvents(resp, done="[DONE]") as events:
        got = [p["n"] for _name, p in events]
    assert got == [1] and events.broken is None and body.closed


@pytest.mark.parametrize(
    ("lines", "fail", "reason"),
    [
        (['data: {"n": 1}', "", "data: {nope", ""], None, "malformed event"),
        (['data: {"n": 1}', ""], httpx.ReadTimeout("slow"), "timeout (ReadTimeout)"),
        (['data: {"n": 1}', ""], httpx.RemoteProtocolError("gone"), "connection broke (RemoteProtocolError)"),
    ],
)
def test_a_break_ends_the_events_and_says_why(lines: list[str], fail: Exception | None, reason: str) -> None:
    resp, body = response(lines, fail)
    with JsonEvents(resp) as events:
        got = [p["n"] for _name, p in events]
    assert got == [1] and events.broken is not None and events.broken.startswith(reason) and body.closed
    metadata: dict = {}
    events.mark(metadata)
    assert metadata == {"stream_error": events.broken, "incomplete": True}
    events.raise_if_empty("some text", display_name="X", provider="x")  # text arrived: a cut-short result
    with pytest.raises(UpstreamError, match="X's stream broke before any output"):
        events.raise_if_empty("", display_name="X", provider="x")


def test_stop_ends_after_the_current_event_and_a_reader_leaving_early_closes() -> None:
    resp, _ = response(['data: {"n": 1}', "", 'data: {"n": 2}', ""])
    seen = []
    with JsonEvents(resp) as events:
        for _name, p in events:
            seen.append(p["n"])
            events.stop("error event")
    assert seen == [1] and events.broken == "error event"

    resp, body = response(['data: {"n": 1}', "", 'data: {"n": 2}', ""])
    with JsonEvents(resp) as events:
        for _name, _p in events:
            break
    assert body.closed
