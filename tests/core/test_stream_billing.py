"""Streams are billed for what they delivered, on both databases: an empty stream is a failed call that charges
nothing, a stream cut off before its end marker is billed for what arrived and flagged incomplete."""

from __future__ import annotations

import httpx
import pytest

from core.billing.ledger_check import check_ledger
from core.generate import generate_stream
from core.providers import GenerationRequest, UpstreamError
from core.runtime import Runtime
from tests.core.providers.fakes import sse_body
from tests.core.test_generate import Env, funded_user

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


def test_an_empty_stream_is_a_failed_call_that_charges_nothing(runtime: Runtime) -> None:
    env = Env(runtime, [sse(b"")])  # HTTP 200, then the connection closes with no event
    user = funded_user(runtime)
    stream = generate_stream(env.services, user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    with pytest.raises(UpstreamError, match="before any output"):
        list(stream)
    [row] = env.usage_rows()
    [hold] = env.holds()
    # before: a success row and a 2-credit debit for nothing
    assert row.status == "failed" and row.cost_credits == 0 and hold.status == "released"
    assert env.balance(user) == 1000 and env.debits(user) == []
    assert check_ledger(runtime.session_factory) == []


def test_a_stream_cut_off_before_done_is_billed_for_what_arrived_and_flagged(runtime: Runtime) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK)]))])  # no `data: [DONE]`
    user = funded_user(runtime)
    stream = generate_stream(env.services, user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Paris"
    r = stream.result
    assert (r.usage.input_tokens, r.usage.output_tokens) == (12, 3) and r.credits_charged == 2
    [row] = env.usage_rows()
    assert row.status == "success" and row.meta["incomplete"] is True
    assert row.meta["stream_error"] == "the stream ended without its end marker"


def test_a_complete_stream_is_not_flagged(runtime: Runtime) -> None:
    env = Env(runtime, [sse(sse_body([(None, CHUNK), (None, USAGE_CHUNK), (None, "[DONE]")]))])
    user = funded_user(runtime)
    stream = generate_stream(env.services, user, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi"))
    assert "".join(stream) == "Paris"
    [row] = env.usage_rows()
    assert "incomplete" not in row.meta and "stream_error" not in row.meta
