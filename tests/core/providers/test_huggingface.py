from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from core.billing.pricing import price_usage
from core.config import Settings
from core.errors import ConfigError as CoreConfigError
from core.errors import InvalidInputError as CoreInvalidInputError
from core.providers import AuthError, GenerationRequest, ProviderConfigError, QuotaExceededError, UpstreamError
from core.providers.huggingface import HuggingFaceProvider
from tests.core.providers.fakes import (
    breaking_response,
    flac_bytes,
    json_response,
    make,
    model,
    mp3_bytes,
    sse_body,
    sse_response,
    streamed_flac_bytes,
    wav_bytes,
)

MMS = model(
    "huggingface",
    "facebook/mms-tts-eng",
    "tts",
    "second",
    per_second_usd=Decimal("0.0001"),
    deployment_type="inference_api",
)
BARK = model(
    "huggingface", "suno/bark", "tts", "request", per_request_usd=Decimal("0.01"), deployment_type="inference_api"
)
WHISPER = model(
    "huggingface",
    "openai/whisper-large-v3",
    "speech_to_text",
    "second",
    per_second_usd=Decimal("0.0001"),
    deployment_type="inference_api",
)
LLAMA = model(
    "huggingface",
    "meta-llama/Llama-3.1-8B-Instruct",
    "chat",
    "token",
    input_per_1m_usd=Decimal("0.02"),
    output_per_1m_usd=Decimal("0.05"),
    deployment_type="inference_api",
)
CHAT = {
    "id": "chatcmpl-9f8e",
    "object": "chat.completion",
    "created": 1733000000,
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
}
RETIRED = {
    "error": "https://api-inference.huggingface.co is no longer supported. Please use https://router.huggingface.co/hf-inference instead."  # noqa: E501
}
LOADING = {"error": "Model facebook/mms-tts-eng is currently loading", "estimated_time": 20.0}


def test_chat_through_the_router_with_bill_to() -> None:
    p, up, _ = make(HuggingFaceProvider, [json_response(200, CHAT)], settings=Settings(hf_bill_to="acme-org"))
    r = p.generate(LLAMA, GenerationRequest(category="chat", text="Hi"))
    req = up.last
    assert str(req.url) == "https://router.huggingface.co/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer test-key-123456"
    assert req.headers["x-hf-bill-to"] == "acme-org"
    assert up.body()["model"] == "meta-llama/Llama-3.1-8B-Instruct" and up.body()["max_tokens"] == 1024
    assert (r.usage.input_tokens, r.usage.output_tokens) == (20, 5)


def test_no_bill_to_header_unless_configured() -> None:
    p, up, _ = make(HuggingFaceProvider, [json_response(200, CHAT)])
    p.generate(LLAMA, GenerationRequest(category="chat", text="Hi"))
    assert "x-hf-bill-to" not in up.last.headers


def test_tts_bills_the_seconds_measured_from_the_returned_flac() -> None:
    audio = flac_bytes(16_000 * 4, rate=16_000)  # 4.000 s
    p, up, _ = make(HuggingFaceProvider, [httpx.Response(200, content=audio, headers={"content-type": "audio/flac"})])
    r = p.generate(MMS, GenerationRequest(category="tts", text="Hello world"))
    req = up.last
    assert str(req.url) == "https://router.huggingface.co/hf-inference/models/facebook/mms-tts-eng"
    assert up.body() == {"inputs": "Hello world"} and req.headers["accept"] == "audio/*"
    assert r.data == audio and r.mime == "audio/flac"
    assert r.usage.seconds == Decimal("4.000") and not r.usage.estimated
    assert price_usage(MMS, r.usage) == Decimal("0.0004")


def test_tts_bills_a_streamed_flac_by_its_decoded_length_not_the_estimate() -> None:
    # What hf-inference returns for facebook/mms-tts-eng: a 16 kHz FLAC whose header states total_samples = 0.
    audio = streamed_flac_bytes("1.045")
    p, _, _ = make(HuggingFaceProvider, [httpx.Response(200, content=audio, headers={"content-type": "audio/flac"})])
    r = p.generate(MMS, GenerationRequest(category="tts", text="Hello world"))
    assert r.usage.seconds == Decimal("1.045") and not r.usage.estimated and not r.metadata
    assert price_usage(MMS, r.usage) == Decimal("0.0001045")  # the 4 s estimate billed $0.0004: 3.8x too much


def test_tts_measures_mp3_and_wav_too() -> None:
    p, _, _ = make(
        HuggingFaceProvider,
        [
            httpx.Response(200, content=mp3_bytes(100), headers={"content-type": "audio/mpeg"}),
            httpx.Response(200, content=wav_bytes(1.5), headers={"content-type": "audio/wav"}),
        ],
    )
    assert abs(p.generate(MMS, GenerationRequest(category="tts", text="a")).usage.seconds - Decimal("2.612")) < Decimal(
        "0.01"
    )
    assert p.generate(MMS, GenerationRequest(category="tts", text="b")).usage.seconds == Decimal("1.500")


def test_per_request_model_bills_one_request() -> None:
    p, _, _ = make(
        HuggingFaceProvider, [httpx.Response(200, content=wav_bytes(2.0), headers={"content-type": "audio/wav"})]
    )
    r = p.generate(BARK, GenerationRequest(category="tts", text="Hello"))
    assert price_usage(BARK, r.usage) == Decimal("0.01")


def test_speech_recognition_sends_raw_audio_and_bills_input_seconds() -> None:
    audio = wav_bytes(3.0)
    p, up, _ = make(HuggingFaceProvider, [json_response(200, {"text": " Hello world."})])
    r = p.generate(WHISPER, GenerationRequest(category="speech_to_text", audio=audio))
    req = up.last
    assert str(req.url) == "https://router.huggingface.co/hf-inference/models/openai/whisper-large-v3"
    assert req.headers["content-type"] == "audio/wav" and req.content == audio
    assert r.text == "Hello world." and r.usage.seconds == Decimal("3.000")


def test_text_generation_task() -> None:
    p, up, _ = make(
        HuggingFaceProvider,
        [json_response(200, [{"generated_text": " Paris."}], {"x-prompt-tokens": "6", "x-generated-tokens": "3"})],
    )
    r = p.generate(
        LLAMA,
        GenerationRequest(category="chat", text="The capital of France is", task="text-generation", max_tokens=20),
    )
    assert str(up.last.url) == "https://router.huggingface.co/hf-inference/models/meta-llama/Llama-3.1-8B-Instruct"
    assert up.body() == {
        "inputs": "The capital of France is",
        "parameters": {"max_new_tokens": 20, "return_full_text": False, "details": True},
    }
    assert r.text == " Paris." and (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (6, 3, False)


def test_stop_sequences_are_sent_as_tgi_and_openai_name_them() -> None:
    p, up, _ = make(
        HuggingFaceProvider,
        [
            json_response(200, [{"generated_text": " Paris"}], {"x-prompt-tokens": "6", "x-generated-tokens": "2"}),
            json_response(200, {"choices": [{"message": {"content": "Paris"}, "finish_reason": "stop"}]}),
        ],
    )
    asked = GenerationRequest(category="chat", text="Capital?", task="text-generation", stop=(".", "\n"))
    p.generate(LLAMA, asked)
    assert up.body()["parameters"]["stop"] == [".", "\n"]
    p.generate(LLAMA, GenerationRequest(category="chat", text="Capital?", stop=["."]))
    assert up.body()["stop"] == ["."]


def test_text_generation_without_headers_bills_the_details_it_asked_for() -> None:
    # TGI's one-shot answer with details (its OpenAPI `Details`): exact generated tokens, and the prompt's tokens
    # only when they are returned (`prefill`); here they are not, so the prompt alone is estimated.
    reply = [
        {
            "generated_text": " Paris.",
            "details": {"finish_reason": "eos_token", "generated_tokens": 3, "seed": None, "prefill": [], "tokens": []},
        }
    ]
    p, _, _ = make(HuggingFaceProvider, [json_response(200, reply)])
    r = p.generate(LLAMA, GenerationRequest(category="chat", text="The capital of France is", task="text-generation"))
    assert r.usage.output_tokens == 3 and r.usage.estimated and r.metadata["finish_reason"] == "eos_token"


def tgi_events(*tokens: str, generated: int | None = None, input_length: int | None = 7) -> list[tuple[None, dict]]:
    """TGI's stream with details: one event per token, the last with generated_text and details (StreamDetails:
    finish_reason, generated_tokens, seed, input_length)."""
    events = [
        (None, {"index": i, "token": {"id": i, "text": t, "logprob": -0.1, "special": False}, "generated_text": None})
        for i, t in enumerate(tokens, 1)
    ]
    events.append(
        (
            None,
            {
                "index": len(tokens) + 1,
                "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
                "generated_text": "".join(tokens),
                "details": {
                    "finish_reason": "eos_token",
                    "generated_tokens": generated or len(tokens) + 1,
                    "seed": None,
                    **({"input_length": input_length} if input_length is not None else {}),
                },
            },
        )
    )
    return events


def test_text_generation_task_streams_its_tokens() -> None:
    p, up, _ = make(HuggingFaceProvider, [sse_response(tgi_events(" Par", "is", "."))])
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="The capital of France is", task="text-generation"))
    assert list(s) == [" Par", "is", "."]  # the special end token is not shown
    assert up.body()["stream"] is True and up.last.headers["accept"] == "text/event-stream"
    assert up.body()["parameters"]["details"] is True
    r = s.result
    assert r.text == " Paris." and r.metadata["finish_reason"] == "eos_token"
    # exact: TGI's input_length and generated_tokens (before, the prompt was estimated and the call flagged)
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (7, 4, False)
    assert "incomplete" not in r.metadata and "usage_estimated" not in r.metadata


def test_a_tgi_stream_without_input_length_estimates_only_the_prompt() -> None:
    p, _, _ = make(HuggingFaceProvider, [sse_response(tgi_events(" Par", "is", input_length=None))])
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="The capital of France is", task="text-generation"))
    "".join(s)
    assert s.result.usage.output_tokens == 3 and s.result.usage.estimated


def test_a_text_generation_stream_that_breaks_keeps_what_arrived() -> None:
    first = sse_body(tgi_events(" Par")[:1])
    p, _, _ = make(HuggingFaceProvider, [breaking_response([first])])
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="Capital?", task="text-generation"))
    assert list(s) == [" Par"]
    assert s.result.metadata["incomplete"] is True and "connection broke" in s.result.metadata["stream_error"]

    p, _, _ = make(
        HuggingFaceProvider, [sse_response([(None, {"error": "Input validation error", "error_type": "validation"})])]
    )
    s = p.stream(LLAMA, GenerationRequest(category="chat", text="Capital?", task="text-generation"))
    with pytest.raises(UpstreamError, match="Input validation error"):
        list(s)


def test_retired_api_inference_url_is_a_config_error_before_any_call() -> None:
    p, up, _ = make(HuggingFaceProvider, [], base_url="https://api-inference.huggingface.co/models")
    with pytest.raises(ProviderConfigError, match=r"router\.huggingface\.co") as err:
        p.generate(MMS, GenerationRequest(category="tts", text="hi"))
    assert isinstance(err.value, CoreConfigError)
    assert up.requests == []


def test_410_gone_is_a_config_error_with_the_upstream_message() -> None:
    p, _, sleeps = make(HuggingFaceProvider, [json_response(410, RETIRED)])
    with pytest.raises(ProviderConfigError, match="no longer supported") as err:
        p.generate(MMS, GenerationRequest(category="tts", text="hi"))
    assert err.value.status_code == 410 and sleeps == []


def test_503_model_loading_is_retried_after_the_estimated_time() -> None:
    audio = flac_bytes(16_000, rate=16_000)
    p, up, sleeps = make(
        HuggingFaceProvider,
        [json_response(503, LOADING), httpx.Response(200, content=audio, headers={"content-type": "audio/flac"})],
    )
    r = p.generate(MMS, GenerationRequest(category="tts", text="hi"))
    assert r.usage.seconds == Decimal("1.000")
    assert len(up.requests) == 2 and 20 <= sleeps[0] <= 21


def test_503_loading_three_times_says_the_model_is_loading() -> None:
    p, _, _ = make(
        HuggingFaceProvider, [json_response(503, {"error": "Model is currently loading", "estimated_time": 1.0})] * 3
    )
    with pytest.raises(UpstreamError, match="still loading"):
        p.generate(MMS, GenerationRequest(category="tts", text="hi"))


def test_403_token_without_inference_permission() -> None:
    p, _, _ = make(
        HuggingFaceProvider,
        [
            json_response(
                403,
                {
                    "error": "This authentication method does not have sufficient permissions to call Inference Providers on behalf of user x"  # noqa: E501
                },
            )
        ],
    )
    with pytest.raises(AuthError, match="Inference Providers"):
        p.generate(LLAMA, GenerationRequest(category="chat", text="Hi"))


def test_402_credits_exhausted() -> None:
    p, _, _ = make(
        HuggingFaceProvider,
        [json_response(402, {"error": "You have exceeded your monthly included credits for Inference Providers."})],
    )
    with pytest.raises(QuotaExceededError, match="monthly included credits"):
        p.generate(LLAMA, GenerationRequest(category="chat", text="Hi"))


def test_429_ietf_ratelimit_header_is_honoured() -> None:
    headers = {"ratelimit": '"api";r=0;t=3', "ratelimit-policy": '"fixed window";"api";q=1000;w=300'}
    p, _, sleeps = make(
        HuggingFaceProvider, [json_response(429, {"error": "Too Many Requests"}, headers), json_response(200, CHAT)]
    )
    p.generate(LLAMA, GenerationRequest(category="chat", text="Hi"))
    assert 3 <= sleeps[0] <= 3.3


def test_unmeasurable_stt_audio_is_refused_before_the_call() -> None:
    p, up, _ = make(HuggingFaceProvider, [])
    with pytest.raises(Exception, match="Cannot measure"):
        p.generate(WHISPER, GenerationRequest(category="speech_to_text", audio=b"not audio at all"))
    assert up.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]),
        ("response_format", {"type": "json_object"}),
    ],
)
def test_the_text_generation_task_refuses_tools_and_json_output_before_any_call(field: str, value: object) -> None:
    p, up, _ = make(HuggingFaceProvider, [])
    asked = GenerationRequest(category="chat", text="Capital?", task="text-generation", **{field: value})
    with pytest.raises(CoreInvalidInputError, match=r"takes text only|JSON"):
        p.generate(LLAMA, asked)  # before, dropped: the raw task POST has neither field
    assert up.requests == []
