from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import pytest

from core.billing.pricing import price_usage
from core.providers import GenerationRequest, UpstreamError
from core.providers.openai import OpenAIProvider
from tests.core.providers.fakes import (
    breaking_response,
    json_response,
    make,
    model,
    sse_body,
    sse_response,
    wav_bytes,
)

GPT = model(
    "openai",
    "gpt-4o",
    "chat",
    "token",
    input_per_1m_usd=Decimal("2.50"),
    cached_input_per_1m_usd=Decimal("1.25"),
    output_per_1m_usd=Decimal("10.00"),
)
COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> dict:
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


USAGE_CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-2024-08-06",
    "choices": [],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}


def test_chat_sends_the_openai_request_and_reads_cached_tokens() -> None:
    p, up, _ = make(OpenAIProvider, [json_response(200, COMPLETION, {"x-request-id": "req_abc"})])
    result = p.generate(
        GPT, GenerationRequest(category="chat", text="Capital of France?", system="Be brief.", max_tokens=50)
    )
    req = up.last
    assert req.method == "POST" and str(req.url) == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer test-key-123456"
    assert json.loads(req.content) == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        "max_completion_tokens": 50,
    }
    assert result.text == "Paris." and result.request_id == "req_abc"
    u = result.usage
    assert (u.input_tokens, u.cached_tokens, u.output_tokens, u.estimated) == (2006, 1920, 300, False)
    # 86 uncached x $2.50 + 1920 cached x $1.25 + 300 out x $10, per 1M tokens
    assert price_usage(GPT, u) == Decimal("0.005615000")


def test_base_url_override() -> None:
    p, up, _ = make(OpenAIProvider, [json_response(200, COMPLETION)], base_url="http://127.0.0.1:9/v1/")
    p.generate(GPT, GenerationRequest(category="chat", text="hi"))
    assert str(up.last.url) == "http://127.0.0.1:9/v1/chat/completions"


def test_stream_sends_include_usage_and_reads_the_final_usage_chunk() -> None:
    events = [
        (None, chunk("", role="assistant")),
        (None, chunk("Hel")),
        (None, chunk("lo")),
        (None, chunk(finish="stop")),
        (None, USAGE_CHUNK),
        (None, "[DONE]"),
    ]
    p, up, _ = make(OpenAIProvider, [sse_response(events)])
    stream = p.stream(GPT, GenerationRequest(category="chat", text="hi"))
    assert list(stream) == ["Hel", "lo"]
    body = up.body()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert up.last.headers["accept"] == "text/event-stream"
    r = stream.result
    assert r.text == "Hello" and r.metadata["finish_reason"] == "stop"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (12, 3, False)


def test_stream_broken_before_the_usage_chunk_is_estimated_and_flagged() -> None:
    raw = sse_body([(None, chunk("The answer ")), (None, chunk("is 42"))])
    p, up, _ = make(OpenAIProvider, [breaking_response([raw])])
    stream = p.stream(GPT, GenerationRequest(category="chat", text="What is the answer to everything?"))
    assert "".join(stream) == "The answer is 42"
    r = stream.result
    assert r.usage.estimated is True
    assert r.usage.output_tokens == 4  # 16 characters ~ 4 tokens
    assert r.usage.input_tokens > 0
    assert r.metadata["incomplete"] is True and "connection broke" in r.metadata["stream_error"]
    assert len(up.requests) == 1  # never retried once the stream started


def test_stream_ending_without_usage_chunk_is_estimated() -> None:
    p, _, _ = make(OpenAIProvider, [sse_response([(None, chunk("ok")), (None, "[DONE]")])])
    stream = p.stream(GPT, GenerationRequest(category="chat", text="hi"))
    assert list(stream) == ["ok"]
    assert stream.result.usage.estimated is True
    assert "incomplete" not in stream.result.metadata


def test_stream_broken_before_any_output_raises() -> None:
    p, _, _ = make(OpenAIProvider, [breaking_response([b": keep-alive\n\n"])])
    stream = p.stream(GPT, GenerationRequest(category="chat", text="hi"))
    with pytest.raises(UpstreamError, match="before any output"):
        list(stream)


def test_stream_error_event_mid_stream() -> None:
    events = [(None, chunk("Par")), (None, {"error": {"message": "The server had an error while processing"}})]
    p, _, _ = make(OpenAIProvider, [sse_response(events)])
    stream = p.stream(GPT, GenerationRequest(category="chat", text="hi"))
    assert list(stream) == ["Par"]
    assert "server had an error" in stream.result.metadata["stream_error"]


WHISPER = model("openai", "whisper-1", "speech_to_text", "second", per_second_usd=Decimal("0.0001"))


def test_transcription_is_multipart_and_billed_by_stated_seconds() -> None:
    audio = wav_bytes(0.5)
    reply = {"text": "Hello there.", "usage": {"type": "duration", "seconds": 9}}
    p, up, _ = make(OpenAIProvider, [json_response(200, reply)])
    r = p.generate(WHISPER, GenerationRequest(category="speech_to_text", audio=audio, audio_filename="hello.wav"))
    req = up.last
    assert str(req.url) == "https://api.openai.com/v1/audio/transcriptions"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = req.content
    assert b'name="model"\r\n\r\nwhisper-1' in body
    assert b'name="file"; filename="hello.wav"' in body and audio in body
    assert r.text == "Hello there." and r.usage.seconds == Decimal(9)  # the stated seconds win over our measure
    assert price_usage(WHISPER, r.usage) == Decimal("0.000900000")


def test_transcription_with_token_usage() -> None:
    reply = {
        "text": "Hi",
        "usage": {
            "type": "tokens",
            "input_tokens": 14,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 14},
            "output_tokens": 45,
            "total_tokens": 59,
        },
    }
    p, _, _ = make(OpenAIProvider, [json_response(200, reply)])
    r = p.generate(WHISPER, GenerationRequest(category="speech_to_text", audio=wav_bytes(0.2)))
    assert (r.usage.input_tokens, r.usage.output_tokens) == (14, 45)


def test_transcription_without_usage_measures_the_audio() -> None:
    p, _, _ = make(OpenAIProvider, [json_response(200, {"text": "Hi"})])
    r = p.generate(WHISPER, GenerationRequest(category="speech_to_text", audio=wav_bytes(1.25)))
    assert r.usage.seconds == Decimal("1.250")


TTS = model("openai", "tts-1", "tts", "character", per_character_usd=Decimal("0.000015"))


def test_speech_returns_audio_and_bills_input_characters() -> None:
    mp3 = b"\xff\xfb\x90\x00" + bytes(413)
    p, up, _ = make(OpenAIProvider, [httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"})])
    text = "Today is a wonderful day to build something people love!"
    r = p.generate(TTS, GenerationRequest(category="tts", text=text, voice="nova"))
    assert str(up.last.url) == "https://api.openai.com/v1/audio/speech"
    assert up.body() == {"model": "tts-1", "input": text, "voice": "nova", "response_format": "mp3"}
    assert r.data == mp3 and r.mime == "audio/mpeg"
    assert r.usage.characters == len(text)


DALLE = model(
    "openai",
    "dall-e-3",
    "image",
    "image",
    price_variants={
        "default_size": "1024x1024",
        "default_quality": "standard",
        "images": {"standard/1024x1024": "0.04", "hd/1024x1792": "0.12"},
    },
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)


def test_image_is_billed_per_image_by_size_and_quality() -> None:
    reply = {"created": 1713833628, "data": [{"b64_json": base64.b64encode(PNG).decode(), "revised_prompt": "A cat."}]}
    p, up, _ = make(OpenAIProvider, [json_response(200, reply)])
    r = p.generate(DALLE, GenerationRequest(category="image", text="a cat", size="1024x1792", quality="hd"))
    assert str(up.last.url) == "https://api.openai.com/v1/images/generations"
    assert up.body() == {
        "model": "dall-e-3",
        "prompt": "a cat",
        "size": "1024x1792",
        "n": 1,
        "response_format": "b64_json",
        "quality": "hd",
    }
    assert r.data == PNG and r.mime == "image/png"
    assert (r.usage.images, r.usage.image_size, r.usage.image_quality) == (1, "1024x1792", "hd")
    assert price_usage(DALLE, r.usage) == Decimal("0.12")


def test_image_defaults_to_the_catalog_size_and_quality() -> None:
    reply = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}
    p, up, _ = make(OpenAIProvider, [json_response(200, reply)])
    r = p.generate(DALLE, GenerationRequest(category="image", text="a dog"))
    assert up.body()["size"] == "1024x1024" and "quality" not in up.body()
    assert price_usage(DALLE, r.usage) == Decimal("0.04")
