"""An upstream usage report whose figures are not counts is a typed protocol error, billed at the request's limit
and flagged: never a call priced at $0 because a figure read as zero."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.billing.pricing import price_usage
from core.billing.reconcile import reconcile_usage
from core.providers import GenerationRequest, UpstreamProtocolError
from core.providers.anthropic import anthropic_usage
from core.providers.together_ai import TogetherAIProvider
from core.providers.usage_figures import count
from core.usage import UNREADABLE
from tests.core.providers.fakes import json_response, make
from tests.core.providers.test_together_ai import LLAMA, REPLY


@pytest.mark.parametrize("value", ["abc", -5, 1.5, True, [], {"n": 1}, "1e3", 2**70])
def test_a_figure_that_is_not_a_count_is_a_protocol_error(value: object) -> None:
    with pytest.raises(UpstreamProtocolError, match="prompt_tokens"):
        count({"prompt_tokens": value}, "prompt_tokens", provider="X")


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (0, 0), (12, 12), (12.0, 12), ("12", 12)])
def test_counts_are_read(value: object, expected: int) -> None:
    assert count({"n": value}, "n", provider="X") == expected


@pytest.mark.parametrize(
    "usage", [{"prompt_tokens": "abc", "completion_tokens": 10}, {"prompt_tokens": 40, "completion_tokens": -3}]
)
def test_unreadable_chat_usage_is_billed_at_the_limit_and_flagged(usage: dict[str, object]) -> None:
    p, _, _ = make(TogetherAIProvider, [json_response(200, {**REPLY, "usage": usage})])
    request = GenerationRequest(category="chat", text="Hi", max_tokens=64)
    result = p.generate(LLAMA, request)
    assert result.text == "Hello!" and result.usage.estimated
    assert "not a count" in result.usage.extra[UNREADABLE]
    bound = p.estimate_max_usage(LLAMA, request)
    checked = reconcile_usage(LLAMA, result.usage, bound)
    assert checked.usage.output_tokens == 64 and checked.usage.input_tokens == bound.input_tokens
    assert price_usage(LLAMA, checked.usage) > Decimal(0)
    assert "not a count" in checked.metadata()["usage_estimated"]


def test_anthropic_negative_tokens_are_unreadable_not_a_value_error() -> None:
    usage = anthropic_usage({"input_tokens": 10, "output_tokens": -1})
    assert usage is not None and usage.estimated and "output_tokens" in usage.extra[UNREADABLE]
