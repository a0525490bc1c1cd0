from __future__ import annotations

from decimal import Decimal

from core.billing.pricing import price_usage
from core.providers import GenerationRequest
from core.providers.together_ai import TogetherAIProvider
from tests.core.providers.fakes import json_response, make, model, sse_response

LLAMA = model(
    "together_ai",
    "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "chat",
    "token",
    input_per_1m_usd=Decimal("0.88"),
    output_per_1m_usd=Decimal("0.88"),
)
REPLY = {
    "id": "8e5d3b1c6f0a4e2b",
    "object": "chat.completion",
    "created": 1733000000,
    "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "prompt": [],
    "choices": [
        {
            "index": 0,
            "finish_reason": "eos",
            "logprobs": None,
            "seed": 1,
            "message": {"role": "assistant", "content": "Hello!", "tool_calls": []},
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50},
}


def test_chat_is_openai_compatible_with_per_token_usage() -> None:
    p, up, _ = make(TogetherAIProvider, [json_response(200, REPLY)])
    r = p.generate(LLAMA, GenerationRequest(category="chat", text="Hi", max_tokens=64))
    assert str(up.last.url) == "https://api.together.xyz/v1/chat/completions"
    assert up.last.headers["authorization"] == "Bearer test-key-123456"
    assert up.body()["max_tokens"] == 64 and up.body()["model"] == LLAMA.model_id
    assert (r.usage.input_tokens, r.usage.output_tokens) == (40, 10)
    assert price_usage(LLAMA, r.usage) == Decimal("0.000044000")


def test_stream_usage_on_the_last_choice_chunk() -> None:
    # Together puts usage on the chunk carrying finish_reason
    events = [
        (None, {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
        (
            None,
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "eos"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
            },
        ),
        (None, "[DONE]"),
    ]
    p, _, _ = make(TogetherAIProvider, [sse_response(events)])
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="Hi"))
    assert list(s) == ["Hi"]
    assert (s.result.usage.input_tokens, s.result.usage.output_tokens, s.result.usage.estimated) == (7, 2, False)
