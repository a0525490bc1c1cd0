"""The retry policy and the error mapping every provider shares (exercised through OpenAI's wire format)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from core.errors import CoreError
from core.providers import (
    AuthError,
    BadRequestError,
    GenerationRequest,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    UpstreamError,
)
from core.providers.openai import OpenAIProvider
from core.providers.retry import retry_after_seconds
from tests.core.providers.fakes import breaking_response, json_response, make, model

GPT = model("openai", "gpt-4o-mini", "chat", "token")
ASK = GenerationRequest(category="chat", text="Say hi")
OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def test_429_waits_what_retry_after_says_then_succeeds() -> None:
    p, up, sleeps = make(
        OpenAIProvider, [json_response(429, RATE_LIMITED, {"retry-after": "2"}), json_response(200, OK)]
    )
    result = p.generate(GPT, ASK)
    assert result.text == "Hi!"
    assert len(up.requests) == 2
    assert len(sleeps) == 1 and 2 <= sleeps[0] <= 2.2  # the hint, plus at most 10% jitter


def test_429_with_openai_reset_headers() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1.5s",
        "x-ratelimit-remaining-tokens": "9000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    p, _, sleeps = make(OpenAIProvider, [json_response(429, RATE_LIMITED, headers), json_response(200, OK)])
    p.generate(GPT, ASK)
    assert 1.5 <= sleeps[0] <= 1.65  # the exhausted limit's reset, not the tokens one


def test_429_asking_for_too_long_a_wait_raises_at_once_with_the_upstream_message() -> None:
    p, up, sleeps = make(OpenAIProvider, [json_response(429, RATE_LIMITED, {"retry-after": "120"})])
    with pytest.raises(RateLimitError) as err:
        p.generate(GPT, ASK)
    assert len(up.requests) == 1 and sleeps == []
    assert err.value.retry_after == 120
    assert "Rate limit reached for gpt-4o-mini" in str(err.value) and "120 s" in str(err.value)
    assert isinstance(err.value, CoreError)


@pytest.mark.parametrize("status", [502, 503, 504, 529])
def test_retryable_statuses_retry_with_exponential_backoff_at_most_three_tries(status: int) -> None:
    body = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    p, up, sleeps = make(OpenAIProvider, [json_response(status, body)] * 3)
    with pytest.raises(UpstreamError) as err:
        p.generate(GPT, ASK)
    assert len(up.requests) == 3
    assert len(sleeps) == 2
    policy = RetryPolicy()
    assert policy.base_delay <= sleeps[0] <= policy.base_delay * (1 + policy.jitter)
    assert 2 * policy.base_delay <= sleeps[1] <= 2 * policy.base_delay * (1 + policy.jitter)
    assert "The server is overloaded" in str(err.value) and err.value.status_code == status


def test_connection_reset_is_retried() -> None:
    p, up, sleeps = make(
        OpenAIProvider, [httpx.ReadError("[Errno 104] Connection reset by peer"), json_response(200, OK)]
    )
    assert p.generate(GPT, ASK).text == "Hi!"
    assert len(up.requests) == 2 and len(sleeps) == 1


def test_unreachable_host_gives_up_after_three_tries_without_naming_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p, up, _ = make(OpenAIProvider, [httpx.ConnectError("Could not connect to 10.0.0.7:8905: refused")] * 3)
    with pytest.raises(UpstreamError, match="Could not reach OpenAI after 3 tries") as err:
        p.generate(GPT, ASK)
    assert len(up.requests) == 3
    assert "10.0.0.7" not in str(err.value)  # it reaches the gateway's callers; the address is for the log
    assert "10.0.0.7:8905" in caplog.text


def test_read_timeout_is_not_retried() -> None:
    p, up, sleeps = make(OpenAIProvider, [httpx.ReadTimeout("timed out")])
    with pytest.raises(ProviderTimeout):
        p.generate(GPT, ASK)
    assert len(up.requests) == 1 and sleeps == []


def test_a_response_that_breaks_after_it_started_is_never_retried() -> None:
    p, up, sleeps = make(OpenAIProvider, [breaking_response([b'{"id": "chatcmpl-1", "choi'])])
    with pytest.raises(UpstreamError, match="broke while reading"):
        p.generate(GPT, ASK)
    assert len(up.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("status", "error", "body"),
    [
        (
            401,
            AuthError,
            {"error": {"message": "Incorrect API key provided: sk-test.", "type": "invalid_request_error"}},
        ),
        (400, BadRequestError, {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}),
        (
            402,
            QuotaExceededError,
            {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}},
        ),
        (500, UpstreamError, {"error": {"message": "The server had an error", "type": "server_error"}}),
    ],
)
def test_non_retryable_errors_carry_the_upstream_message(status: int, error: type, body: dict) -> None:
    p, up, sleeps = make(OpenAIProvider, [json_response(status, body)])
    with pytest.raises(error) as err:
        p.generate(GPT, ASK)
    assert body["error"]["message"] in str(err.value)
    assert err.value.upstream_message == body["error"]["message"]
    assert len(up.requests) == 1 and sleeps == []


def test_401_names_the_key_variable() -> None:
    p, _, _ = make(OpenAIProvider, [json_response(401, {"error": {"message": "Incorrect API key provided"}})])
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        p.generate(GPT, ASK)


def test_malformed_json_is_an_upstream_error() -> None:
    p, _, _ = make(OpenAIProvider, [httpx.Response(200, content=b"<html>Bad gateway</html>")])
    with pytest.raises(UpstreamError, match="malformed"):
        p.generate(GPT, ASK)


def test_html_error_page_message_is_kept() -> None:
    p, _, _ = make(OpenAIProvider, [httpx.Response(500, content=b"<html>upstream connect error</html>")])
    with pytest.raises(UpstreamError, match="upstream connect error"):
        p.generate(GPT, ASK)


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(httpx.Headers({"retry-after": "7"})) == 7
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(httpx.Headers({"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}), now) == 30
    assert retry_after_seconds(httpx.Headers({"ratelimit": '"api";r=0;t=55'})) == 55
    assert retry_after_seconds(httpx.Headers({"ratelimit": "limit=100, remaining=0, reset=12"})) == 12
    assert (
        retry_after_seconds(httpx.Headers({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}))
        == 360
    )
    assert (
        retry_after_seconds(httpx.Headers({"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "1s"}))
        is None
    )
    assert retry_after_seconds(httpx.Headers({})) is None


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=4, jitter=0)
    rng = random.Random(1)
    assert [policy.backoff(a, rng) for a in (1, 2, 3, 4, 5)] == [1, 2, 4, 4, 4]


def test_missing_key_is_a_config_error_before_any_request() -> None:
    p, up, _ = make(OpenAIProvider, [], api_key=None)
    with pytest.raises(CoreError, match="OPENAI_API_KEY"):
        p.generate(GPT, ASK)
    assert up.requests == []
