"""Property: for any usage a provider can report within the request's limits, the credits charged are exactly the
price of that usage (catalog USD -> whole credits -> markup), and no accepted hold ever takes a balance below zero."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.billing.errors import InsufficientCreditsError
from core.billing.ledger_check import check_ledger
from core.billing.pricing import price_usage
from core.catalog.lookup import get_model
from core.db import Database
from core.money import apply_markup, usd_to_credits
from core.providers import GenerationRequest
from core.providers.estimate import max_tokens_for_text
from core.usage import Usage
from tests.core.providers.fakes import json_response
from tests.core.test_generate import Env, funded_user

EMAILS = (f"p{i}@example.com" for i in itertools.count())


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, str, int, int, int, int, int, int]:
    model = draw(st.sampled_from(["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5"]))
    prompt = draw(st.text(min_size=1, max_size=200).filter(lambda t: t.strip()))
    max_tokens = draw(st.integers(1, 4000))
    bound_in = max_tokens_for_text(prompt, 1)
    input_tokens = draw(st.integers(1, bound_in))
    cached = draw(st.integers(0, input_tokens))
    output = draw(st.integers(0, max_tokens))
    credits = draw(st.integers(0, 60))
    markup = draw(st.sampled_from([0, 35, 100, 250]))
    return model, prompt, max_tokens, input_tokens, cached, output, credits, markup


def reply(model: str, input_tokens: int, cached: int, output: int):  # type: ignore[no-untyped-def]
    if model.startswith("claude"):
        usage = {
            "input_tokens": input_tokens - cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": output,
        }
        body = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "stop_reason": "end_turn"}
        return json_response(200, {**body, "content": [{"type": "text", "text": "ok"}], "usage": usage})
    usage = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output,
        "total_tokens": input_tokens + output,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    return json_response(200, {"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage})


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls())
def test_charged_credits_are_the_price_of_the_reported_usage(sqlite_runtime: Database, call: tuple) -> None:
    model_id, prompt, max_tokens, input_tokens, cached, output, credits, markup = call
    env = Env(sqlite_runtime, [reply(model_id, input_tokens, cached, output)])
    user = funded_user(sqlite_runtime, credits=credits, markup=str(markup), email=next(EMAILS))
    request = GenerationRequest(category="chat", text=prompt, max_tokens=max_tokens)
    try:
        r = env.generate(user, model_id, request)
    except InsufficientCreditsError:
        assert env.upstream.requests == [] and env.balance(user) == credits  # refused before any call
        return
    with sqlite_runtime.session() as s:
        model = get_model(s, model_id)
    usage = Usage(input_tokens=input_tokens, output_tokens=output, cached_tokens=cached)
    expected = apply_markup(usd_to_credits(price_usage(model, usage)), Decimal(markup))
    assert r.credits_charged == expected and not r.usage.estimated
    assert r.balance_after == credits - expected >= 0
    assert "usage_disputed" not in r.metadata
    assert check_ledger(sqlite_runtime.session_factory) == []
