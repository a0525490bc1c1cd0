"""Calls are billed for what they delivered, on both databases: an empty stream is a failed call that charges
nothing, a stream cut off before its end marker is billed for what arrived and flagged incomplete, and a hold lives as
long as its call (extended while a stream runs, up to MAX_CALL_SECONDS; a call that outlived it is still billed)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from core.billing.ledger_check import check_ledger
from core.db import Database
from core.db.models import utcnow
from core.providers import GenerationRequest, UpstreamError
from tests.core.providers.fakes import json_response, sse_body
from tests.core.providers.test_anthropic import stream_events
from tests.core.test_generate import CHAT_OK, KEYS, Env, funded_user
from tests.support.loopback import TOOL_CALLS_STREAMED, TOOL_STREAM_EVENTS  # an answer that only calls functions

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "delta": {"content": "Paris"}, "finish_reason": None}],
    "usage": None,
}
USAGE_CHUNK = {
    **CHUNK,
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "prompt_tokens_details": {}},
}


def sse(content: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def test_an_empty_stream_is_a_failed_call_that_charges_nothing(runtime: Database) -> None:
    env = Env(runtime, [sse(b"")])  # HTTP 200, then the connection closes with no event
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    with pytest.raises(UpstreamError, match="before any output"):
        list(stream)
    [row] = env.usage_rows()
    [hold] = env.holds()
    # before: a success row and a 2-credit debit for nothing
    assert row.status == "failed" and row.cost_credits == 0 and hold.status == "released"
    assert env.balance(user) == 1000 and env.debits(user) == []
    assert check_ledger(runtime.session_factory) == []


def test_a_stream_cut_off_before_done_is_billed_for_what_arrived_and_flagged(runtime: Database) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK)]))])  # no `data: [DONE]`
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Paris"
    r = stream.result
    assert (r.usage.input_tokens, r.usage.output_tokens) == (12, 3) and r.credits_charged == 2
    [row] = env.usage_rows()
    assert row.status == "success" and row.meta["incomplete"] is True
    assert row.meta["stream_error"] == "the stream ended without its end marker"


def test_a_complete_stream_is_not_flagged(runtime: Database) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK), (None, "[DONE]")]))])
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Paris"
    [row] = env.usage_rows()
    assert "incomplete" not in row.meta and "stream_error" not in row.meta


# ---- holds live as long as their call ------------------------------------------------------------------------------
class SlowStream(httpx.SyncByteStream):
    """An upstream that sends one SSE event every `pause` seconds."""

    def __init__(self, events: list[bytes], pause: float) -> None:
        self.events, self.pause = events, pause

    def __iter__(self):  # type: ignore[no-untyped-def]
        for event in self.events:
            time.sleep(self.pause)
            yield event


def slow_reply(chunks: int, pause: float) -> httpx.Response:
    events = [sse_body([(None, CHUNK)]) for _ in range(chunks)] + [sse_body([(None, USAGE_CHUNK), (None, "[DONE]")])]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=SlowStream(events, pause))


def test_a_call_that_outlives_its_hold_is_delivered_and_billed(runtime: Database) -> None:
    def late(request: httpx.Request) -> httpx.Response:
        env.billing.expire_holds(now=utcnow() + timedelta(hours=1))  # the call takes longer than HOLD_TTL_SECONDS
        return json_response(200, CHAT_OK)

    env = Env(runtime, [late])
    user = funded_user(runtime)
    r = env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="Capital of France?"))
    # before: the settle was refused, a failed row written and the answer lost
    assert r.text == "Paris." and r.credits_charged == 2 and env.balance(user) == 998
    [row] = env.usage_rows()
    assert row.status == "success" and row.meta["hold_expired"] is True
    assert check_ledger(runtime.session_factory) == []


def test_a_stream_keeps_its_hold_alive_while_it_runs(runtime: Database) -> None:
    env = Env(runtime, [slow_reply(chunks=3, pause=0.6)], hold_ttl_seconds=1)
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Paris" * 3
    [hold] = env.holds()
    assert hold.status == "settled" and hold.expires_at > hold.created_at + timedelta(seconds=1)  # it was extended
    [row] = env.usage_rows()
    assert row.status == "success" and "hold_expired" not in row.meta and row.cost_credits == 2


def test_a_stream_is_stopped_at_the_call_limit_and_billed_for_what_it_delivered(runtime: Database) -> None:
    env = Env(runtime, [slow_reply(chunks=6, pause=0.6)], max_call_seconds=1)
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    text = "".join(stream)
    assert text and len(text) < len("Paris" * 6) and stream.result.credits_charged > 0
    [row] = env.usage_rows()
    assert row.meta["incomplete"] is True and "MAX_CALL_SECONDS=1" in row.meta["stream_error"]


def test_a_key_echoed_inside_a_stream_never_reaches_the_database(runtime: Database) -> None:
    key = KEYS["openai"].get()
    echo = {
        **CHUNK,
        "id": f"chatcmpl-{key}",
        "choices": [{"index": 0, "delta": {"content": "Par"}, "finish_reason": key}],
    }
    error = {"error": {"message": f"Internal error for key {key}", "type": "server_error"}}
    env = Env(runtime, [sse(sse_body([(None, echo), (None, error)]))])
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Par"
    [row] = env.usage_rows()
    stored = json.dumps({"request_id": row.request_id, "error": row.error, "metadata": row.meta})
    assert key not in stored and "Internal error for key" in stored  # before: stored in full
    with runtime.engine.connect() as conn:
        ledger = json.dumps([list(map(str, r)) for r in conn.execute(text("SELECT * FROM credit_transactions"))])
    assert key not in ledger


# ---- a chat offered tools hands its calls on piece by piece: what was handed on is what is billed -----------------
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_a_reader_that_stops_mid_call_is_billed_for_the_pieces_it_received(runtime: Database) -> None:
    env = Env(runtime, [sse(sse_body([(None, c) for c in TOOL_STREAM_EVENTS] + [(None, "[DONE]")]))])
    user = funded_user(runtime)
    ask = GenerationRequest(category="chat", text="Weather in Edinburgh?", tools=TOOLS)
    stream = env.stream(user, "gpt-4o-mini", ask)
    pieces = [next(stream) for _ in range(6)]  # no text at all: the first call's name and some of its arguments
    assert all(not isinstance(p, str) for p in pieces)
    stream.close()
    [row] = env.usage_rows()
    [hold] = env.holds()
    # before, pieces of calls were not counted: a reader that left mid-call was billed nothing, the hold released
    assert row.status == "success" and row.meta["incomplete"] is True and row.output_tokens > 0
    assert hold.status == "settled" and env.debits(user) and env.balance(user) < 1000
    assert check_ledger(runtime.session_factory) == []


def test_a_replayed_streamed_tool_answer_hands_its_calls_on_again(runtime: Database) -> None:
    env = Env(runtime, [sse(sse_body([(None, c) for c in TOOL_STREAM_EVENTS] + [(None, "[DONE]")]))])
    user = funded_user(runtime)
    ask = GenerationRequest(category="chat", text="Weather in Edinburgh?", tools=TOOLS)
    first = list(env.stream(user, "gpt-4o-mini", ask, idempotency_key="tools-replay"))
    again = list(env.stream(user, "gpt-4o-mini", ask, idempotency_key="tools-replay"))  # no upstream call left
    whole = [(d.id, d.name, d.arguments) for d in again]
    assert whole == TOOL_CALLS_STREAMED and len(first) > len(again)  # each call whole this time


# ---- Claude states the prompt's counts before its first text: a reader that leaves is billed those, not a guess ------
def test_a_reader_that_leaves_a_claude_stream_is_billed_the_prompt_counts_it_stated(runtime: Database) -> None:
    events = stream_events([30])
    events[0][1]["message"]["usage"] = {  # a long prompt written to the cache: what the reader was shown
        "input_tokens": 10,
        "cache_creation_input_tokens": 50_000,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    env = Env(runtime, [sse(sse_body(events))])
    user = funded_user(runtime, credits=100_000)
    stream = env.stream(user, "claude-sonnet-4-5", GenerationRequest(category="chat", text="Hi " * 10))
    assert next(stream) == "Hello"
    stream.close()
    [row] = env.usage_rows()
    # before: the prompt guessed from its text (a few tokens) at the plain input rate, the cache write unbilled
    assert (row.input_tokens, row.cache_write_tokens) == (50_010, 50_000)
    assert row.output_tokens >= 1 and row.meta["incomplete"] is True and row.meta["usage_estimated"]
    assert check_ledger(runtime.session_factory) == []
