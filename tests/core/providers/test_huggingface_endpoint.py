from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from core.billing.pricing import price_usage
from core.providers import GenerationRequest, ProviderConfigError, UpstreamError
from core.providers.huggingface_endpoint import HuggingFaceEndpointProvider
from tests.core.providers.fakes import json_response, make, model, sse_response, wav_bytes

URL = "https://llama-demo-xyz.us-east-1.aws.endpoints.huggingface.cloud"
LLAMA = model(
    "huggingface_endpoint",
    "meta-llama/Llama-3.1-8B-Instruct",
    "chat",
    "uptime",
    deployment_type="dedicated",
    hf_endpoint_url=URL,
)
TGI_HEADERS = {
    "x-compute-type": "1-nvidia-l4",
    "x-compute-time": "0.734",
    "x-compute-characters": "11",
    "x-total-time": "734",
    "x-queue-time": "0",
    "x-inference-time": "734",
    "x-prompt-tokens": "12",
    "x-generated-tokens": "7",
}


def test_chat_on_the_endpoint_url_with_body_usage_and_zero_incremental_cost() -> None:
    body = {
        "id": "",
        "object": "chat.completion",
        "created": 1733000000,
        "model": "tgi",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
    p, up, _ = make(HuggingFaceEndpointProvider, [json_response(200, body, TGI_HEADERS)])
    r = p.generate(LLAMA, GenerationRequest(category="chat", text="Hello"))
    assert str(up.last.url) == URL + "/v1/chat/completions"
    assert up.last.headers["authorization"] == "Bearer test-key-123456"
    assert "x-scale-up-timeout" not in up.last.headers
    assert (r.usage.input_tokens, r.usage.output_tokens) == (12, 7)
    assert price_usage(LLAMA, r.usage) == Decimal(0)  # billed by uptime, not per request


def test_usage_from_tgi_headers_when_the_body_has_none() -> None:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}]}
    p, _, _ = make(HuggingFaceEndpointProvider, [json_response(200, body, TGI_HEADERS)])
    r = p.generate(LLAMA, GenerationRequest(category="chat", text="Hello"))
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.seconds) == (12, 7, Decimal("0.734"))
    assert r.usage.extra["compute_type"] == "1-nvidia-l4" and not r.usage.estimated


def test_raw_task_call_with_scale_up_timeout_and_request_url() -> None:
    other = "https://other-endpoint.endpoints.huggingface.cloud"
    p, up, _ = make(HuggingFaceEndpointProvider, [json_response(200, [{"generated_text": "Paris"}], TGI_HEADERS)])
    r = p.generate(
        LLAMA,
        GenerationRequest(
            category="chat",
            text="Capital of France?",
            task="text-generation",
            endpoint_url=other,
            scale_up_timeout=600,
            max_tokens=16,
        ),
    )
    assert str(up.last.url) == other
    assert up.last.headers["x-scale-up-timeout"] == "600"
    assert up.body() == {
        "inputs": "Capital of France?",
        "parameters": {"max_new_tokens": 16, "return_full_text": False, "details": True},
    }
    assert r.text == "Paris" and r.usage.output_tokens == 7


def test_raw_task_streams_with_tgi_headers_for_usage() -> None:
    from tests.core.providers.test_huggingface import tgi_events

    p, up, _ = make(HuggingFaceEndpointProvider, [sse_response(tgi_events("Par", "is"), TGI_HEADERS)])
    s = p.stream(
        LLAMA, GenerationRequest(category="chat", text="Capital?", task="text-generation", scale_up_timeout=60)
    )
    assert list(s) == ["Par", "is"]
    assert up.body()["stream"] is True and up.last.headers["x-scale-up-timeout"] == "60"
    assert s.result.text == "Paris" and s.result.usage.output_tokens == 7 and not s.result.usage.estimated


def test_streamed_chat_sends_scale_up_timeout() -> None:
    events = [
        (None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
        (
            None,
            {
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        ),
        (None, "[DONE]"),
    ]
    p, up, _ = make(HuggingFaceEndpointProvider, [sse_response(events)])
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="Hello", scale_up_timeout=300))
    assert list(s) == ["Hi"] and s.result.usage.output_tokens == 1
    assert up.last.headers["x-scale-up-timeout"] == "300"


def test_scaled_to_zero_503_says_what_to_do() -> None:
    p, up, _ = make(HuggingFaceEndpointProvider, [httpx.Response(503, text="Service Unavailable")] * 3)
    with pytest.raises(UpstreamError, match="scale-up timeout"):
        p.generate(LLAMA, GenerationRequest(category="chat", text="Hello"))
    assert len(up.requests) == 3


def test_missing_endpoint_url_is_a_config_error() -> None:
    no_url = model("huggingface_endpoint", "x/y", "chat", "uptime", deployment_type="dedicated")
    p, up, _ = make(HuggingFaceEndpointProvider, [])
    with pytest.raises(ProviderConfigError, match="Endpoints page"):
        p.generate(no_url, GenerationRequest(category="chat", text="Hello"))
    assert up.requests == []


def test_public_endpoint_without_a_token_sends_no_authorization() -> None:
    tts = model(
        "huggingface_endpoint",
        "facebook/mms-tts-eng",
        "tts",
        "uptime",
        deployment_type="dedicated",
        hf_endpoint_url=URL,
    )
    p, up, _ = make(
        HuggingFaceEndpointProvider,
        [httpx.Response(200, content=wav_bytes(2), headers={"content-type": "audio/wav"})],
        api_key=None,
    )
    r = p.generate(tts, GenerationRequest(category="tts", text="Hello"))
    assert "authorization" not in up.last.headers
    assert str(up.last.url) == URL and up.body() == {"inputs": "Hello"}
    assert r.usage.seconds == Decimal("2.000")


@pytest.mark.parametrize(("top_p", "sent"), [(0.5, 0.5), (1.0, None), (0.0, None), (None, None)])
def test_a_raw_task_sends_top_p_as_tgi_takes_it(top_p: float | None, sent: float | None) -> None:
    """TGI refuses top_p 0 and 1 (it takes 0 < top_p < 1): 1 cuts nothing and 0 is TGI's own greedy default."""
    p, up, _ = make(HuggingFaceEndpointProvider, [json_response(200, [{"generated_text": "Paris"}], TGI_HEADERS)])
    req = GenerationRequest(category="chat", text="Capital?", task="text-generation", max_tokens=8, top_p=top_p)
    p.generate(LLAMA, req)
    assert up.body()["parameters"].get("top_p") == sent


def test_top_p_outside_zero_to_one_is_refused() -> None:
    from core.errors import InvalidInputError

    for bad in (1.5, -0.1):
        with pytest.raises(InvalidInputError, match="top_p"):
            GenerationRequest(category="chat", text="Hi", top_p=bad)
