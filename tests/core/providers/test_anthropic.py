from __future__ import annotations

from decimal import Decimal

import pytest

from core.billing.pricing import price_usage
from core.providers import BadRequestError, GenerationRequest, RateLimitError, UpstreamError
from core.providers.anthropic import AnthropicProvider
from tests.core.providers.fakes import breaking_response, json_response, make, model, sse_body, sse_response

SONNET = model(
    "anthropic",
    "claude-sonnet-4-5",
    "chat",
    "token",
    input_per_1m_usd=Decimal("3"),
    cached_input_per_1m_usd=Decimal("0.30"),
    output_per_1m_usd=Decimal("15"),
    price_variants={"cache_write_per_1m_usd": "3.75", "cache_write_1h_per_1m_usd": "6"},
)
MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hi! My name is Claude."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 2000,
        "output_tokens": 503,
    },
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_messages_request_and_cache_tokens_priced_separately() -> None:
    p, up, _ = make(AnthropicProvider, [json_response(200, MESSAGE, {"request-id": "req_018EeWyXxfu5pfWkrYcMdjWG"})])
    r = p.generate(SONNET, GenerationRequest(category="chat", text="Hello", system="You are Claude."))
    req = up.last
    assert str(req.url) == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == "test-key-123456"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert up.body() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
        "system": "You are Claude.",
    }
    assert r.text == "Hi! My name is Claude." and r.request_id == "req_018EeWyXxfu5pfWkrYcMdjWG"
    u = r.usage
    assert (u.input_tokens, u.cache_write_tokens, u.cached_tokens, u.output_tokens) == (3050, 1000, 2000, 503)
    # 50 x $3 + 1000 x $3.75 + 2000 x $0.30 + 503 x $15, per 1M
    assert price_usage(SONNET, u) == Decimal("0.012045000")


# A Messages API reply with a 1-hour cache breakpoint (`cache_control: {"type": "ephemeral", "ttl": "1h"}`): the
# `cache_creation` object splits the written tokens by how long they are kept (API reference, Usage object).
MESSAGE_1H = {
    **MESSAGE,
    "usage": {
        "input_tokens": 21,
        "cache_creation_input_tokens": 188086,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 188086},
        "output_tokens": 393,
        "service_tier": "standard",
    },
}


def test_one_hour_cache_writes_are_priced_at_their_own_rate() -> None:
    p, _, _ = make(AnthropicProvider, [json_response(200, MESSAGE_1H)])
    u = p.generate(SONNET, GenerationRequest(category="chat", text="Hello")).usage
    assert (u.input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (188107, 188086, 188086)
    # 21 x $3 + 188,086 x $6 (1-hour writes) + 393 x $15, per 1M; billed at the 5-minute rate it was $0.7112805
    assert price_usage(SONNET, u) == Decimal("1.134474000")


def test_a_model_without_a_one_hour_rate_is_refused_not_billed_at_the_five_minute_rate() -> None:
    from dataclasses import replace

    from core.billing.errors import UnpricedModelError

    five_minute_only = replace(SONNET, price_variants={"cache_write_per_1m_usd": "3.75"})
    p, _, _ = make(AnthropicProvider, [json_response(200, MESSAGE_1H)])
    u = p.generate(five_minute_only, GenerationRequest(category="chat", text="Hello")).usage
    with pytest.raises(UnpricedModelError, match="1-hour cache-write"):
        price_usage(five_minute_only, u)


def stream_events(deltas: list[int]) -> list[tuple[str, dict]]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5-20250929",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 100,
                "output_tokens": 1,
            },
        },
    }
    events: list[tuple[str, dict]] = [
        ("message_start", start),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    for out in deltas:
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            )
        )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def test_stream_bills_input_from_message_start_and_output_from_the_last_message_delta() -> None:
    p, up, _ = make(AnthropicProvider, [sse_response(stream_events([10, 15]))])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    assert list(stream) == ["Hello", "!"]
    assert up.body()["stream"] is True
    u = stream.result.usage
    assert u.input_tokens == 125 and u.cached_tokens == 100
    assert u.output_tokens == 15  # cumulative: the last one, never 10 + 15
    assert not u.estimated and stream.result.metadata["finish_reason"] == "end_turn"


def test_stream_states_the_prompt_counts_of_message_start_before_its_first_text() -> None:
    """What the gateway's own message_start carries: the upstream's counts, known by the first chunk; no output yet."""
    p, _, _ = make(AnthropicProvider, [sse_response(stream_events([10, 15]))])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    assert stream.stated_input is None  # nothing read yet
    assert next(stream) == "Hello"
    stated = stream.stated_input
    assert stated is not None and not stated.estimated and stated.output_tokens == 0
    "".join(stream)
    billed = stream.result.usage
    assert (stated.input_tokens, stated.cached_tokens, stated.cache_write_tokens) == (
        billed.input_tokens,
        billed.cached_tokens,
        billed.cache_write_tokens,
    )


def test_a_message_start_without_usage_states_nothing() -> None:
    events = stream_events([15])
    del events[0][1]["message"]["usage"]
    p, _, _ = make(AnthropicProvider, [sse_response(events)])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    "".join(stream)
    assert stream.stated_input is None and stream.result.usage.estimated  # billed on an estimate, never stated


def test_stream_takes_the_cumulative_usage_of_the_last_message_delta() -> None:
    # Since 2025 message_delta may restate input and cache counts (cumulative, with server tools or context
    # management); the SDK's accumulator takes every figure it states, so do we.
    events = stream_events([])
    start = events[0][1]["message"]["usage"]
    start.update(
        {
            "input_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        }
    )
    final = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 2400,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1500,
            "output_tokens": 812,
            "server_tool_use": {"web_search_requests": 1},
        },
    }
    events[-1:-1] = [("message_delta", {**final, "usage": {"output_tokens": 40}}), ("message_delta", final)]
    p, _, _ = make(AnthropicProvider, [sse_response(events)])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    "".join(stream)
    u = stream.result.usage
    assert (u.input_tokens, u.cached_tokens, u.output_tokens) == (3900, 1500, 812) and not u.estimated


def test_stream_broken_before_message_delta_estimates_output() -> None:
    raw = sse_body(stream_events([])[:5])
    p, _, _ = make(AnthropicProvider, [breaking_response([raw])])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    assert "".join(stream) == "Hello!"
    u = stream.result.usage
    assert u.input_tokens == 125 and u.estimated is True and u.output_tokens >= 1
    assert stream.result.metadata["incomplete"] is True


def test_stream_error_event_before_output_raises_with_the_upstream_message() -> None:
    events = [("message_start", stream_events([])[0][1]), ("error", OVERLOADED)]
    p, _, _ = make(AnthropicProvider, [sse_response(events)])
    stream = p.stream(SONNET, GenerationRequest(category="chat", text="Hello"))
    with pytest.raises(UpstreamError, match="Overloaded"):
        list(stream)


def test_529_overloaded_is_retried() -> None:
    p, up, sleeps = make(AnthropicProvider, [json_response(529, OVERLOADED), json_response(200, MESSAGE)])
    assert p.generate(SONNET, GenerationRequest(category="chat", text="Hello")).text.startswith("Hi!")
    assert len(up.requests) == 2 and len(sleeps) == 1


def test_429_message_from_anthropic_error_shape() -> None:
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit",
        },
    }
    p, _, _ = make(AnthropicProvider, [json_response(429, body, {"retry-after": "45"})])
    with pytest.raises(RateLimitError, match="rate_limit_error: Number of request tokens"):
        p.generate(SONNET, GenerationRequest(category="chat", text="Hello"))


COUNT_ASK = GenerationRequest(
    category="chat",
    system="You are Claude.",
    messages=({"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}),
)


def test_count_tokens_asks_anthropic_for_the_prompt_alone() -> None:
    """The count is Anthropic's own: the prompt as a message sends it, without max_tokens or sampling settings."""
    p, up, _ = make(AnthropicProvider, [json_response(200, {"input_tokens": 21})])
    assert p.count_input_tokens(SONNET, COUNT_ASK) == 21
    req = up.last
    assert (req.method, str(req.url)) == ("POST", "https://api.anthropic.com/v1/messages/count_tokens")
    assert req.headers["x-api-key"] == "test-key-123456" and req.headers["anthropic-version"] == "2023-06-01"
    assert up.body() == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}],
        "system": "You are Claude.",
    }


def test_count_tokens_retries_overload_and_raises_typed_errors() -> None:
    p, up, sleeps = make(AnthropicProvider, [json_response(529, OVERLOADED), json_response(200, {"input_tokens": 9})])
    assert p.count_input_tokens(SONNET, COUNT_ASK) == 9
    assert len(up.requests) == 2 and len(sleeps) == 1
    refused = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    p, _, _ = make(AnthropicProvider, [json_response(400, refused)])
    with pytest.raises(BadRequestError, match="prompt is too long"):
        p.count_input_tokens(SONNET, COUNT_ASK)
    for odd in ({"tokens": 3}, {"input_tokens": "many"}, {"input_tokens": -1}, [1]):
        p, _, _ = make(AnthropicProvider, [json_response(200, odd)])
        with pytest.raises(UpstreamError, match="without input_tokens"):
            p.count_input_tokens(SONNET, COUNT_ASK)
