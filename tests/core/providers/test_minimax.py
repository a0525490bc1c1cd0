from __future__ import annotations

from decimal import Decimal

import pytest

from core.billing.pricing import price_usage
from core.config import Settings
from core.providers import (
    AuthError,
    BadRequestError,
    GenerationRequest,
    QuotaExceededError,
    RateLimitError,
    UpstreamError,
)
from core.providers.minimax import MiniMaxProvider
from tests.core.providers.fakes import json_response, make, model, mp3_bytes, wav_bytes

SPEECH = model("minimax", "speech-02-hd", "tts", "character", per_character_usd=Decimal("0.0001"))
MUSIC = model("minimax", "music-2.0", "music", "request", per_request_usd=Decimal("0.035"))
CLONE = model("minimax", "voice-clone", "voice_clone", "request", per_request_usd=Decimal("1.50"))
AUDIO = mp3_bytes(20)


def t2a_reply(audio: bytes = AUDIO, usage_characters: int | None = 26) -> dict:
    extra = {
        "audio_length": 522,
        "audio_sample_rate": 32000,
        "audio_size": len(audio),
        "bitrate": 128000,
        "word_count": 5,
        "invisible_character_ratio": 0,
        "audio_format": "mp3",
        "audio_channel": 1,
    }
    if usage_characters is not None:
        extra["usage_characters"] = usage_characters
    return {
        "data": {"audio": audio.hex(), "status": 2, "ced": ""},
        "extra_info": extra,
        "trace_id": "01b8bf9bb7433cc75c18eee6cfa8fe21",
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }


def error_reply(code: int, msg: str) -> dict:
    return {
        "data": None,
        "trace_id": "04ece790375f3ca2edbb44e8c4c200bf",
        "base_resp": {"status_code": code, "status_msg": msg},
    }


def test_t2a_request_hex_audio_and_usage_characters() -> None:
    p, up, _ = make(MiniMaxProvider, [json_response(200, t2a_reply())])
    r = p.generate(
        SPEECH, GenerationRequest(category="tts", text="Hello, this is MiniMax TTS", voice="English_Graceful_Lady")
    )
    req = up.last
    assert str(req.url) == "https://api.minimax.io/v1/t2a_v2"
    assert req.headers["authorization"] == "Bearer test-key-123456"
    assert up.body() == {
        "model": "speech-02-hd",
        "text": "Hello, this is MiniMax TTS",
        "stream": False,
        "output_format": "hex",
        "voice_setting": {"voice_id": "English_Graceful_Lady", "speed": 1, "vol": 1, "pitch": 0},
        "audio_setting": {"sample_rate": 32000, "bitrate": 128000, "format": "mp3", "channel": 1},
    }
    assert r.data == AUDIO and r.mime == "audio/mpeg" and r.request_id == "01b8bf9bb7433cc75c18eee6cfa8fe21"
    assert r.usage.characters == 26 and r.usage.seconds == Decimal("0.522") and not r.usage.estimated
    assert price_usage(SPEECH, r.usage) == Decimal("0.0026")


def test_group_id_is_sent_only_when_configured() -> None:
    p, up, _ = make(
        MiniMaxProvider, [json_response(200, t2a_reply())], settings=Settings(minimax_group_id="1782658868262748467")
    )
    p.generate(SPEECH, GenerationRequest(category="tts", text="hi"))
    assert up.last.url.params["GroupId"] == "1782658868262748467"
    p2, up2, _ = make(MiniMaxProvider, [json_response(200, t2a_reply())])
    p2.generate(SPEECH, GenerationRequest(category="tts", text="hi"))
    assert "GroupId" not in up2.last.url.params


def test_missing_usage_characters_falls_back_to_the_text_and_is_flagged() -> None:
    p, _, _ = make(MiniMaxProvider, [json_response(200, t2a_reply(usage_characters=None))])
    r = p.generate(SPEECH, GenerationRequest(category="tts", text="12345"))
    assert r.usage.characters == 5 and r.usage.estimated


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        (
            1004,
            "login fail: Please carry the API secret key in the 'Authorization' field of the request header",
            AuthError,
        ),
        (1002, "rate limit exceeded(RPM)", RateLimitError),
        (1008, "insufficient balance", QuotaExceededError),
        (2013, "invalid params, voice_id not exist", BadRequestError),
        (2044, "no permission to access this model", AuthError),
        (1000, "unknown error", UpstreamError),
    ],
)
def test_http_200_errors_are_typed_and_carry_minimax_message(code: int, msg: str, error: type) -> None:
    p, up, sleeps = make(MiniMaxProvider, [json_response(200, error_reply(code, msg))])
    with pytest.raises(error) as err:
        p.generate(SPEECH, GenerationRequest(category="tts", text="hi"))
    assert msg in str(err.value) and str(code) in str(err.value)
    assert len(up.requests) == 1 and sleeps == []


def test_invalid_hex_is_an_upstream_error() -> None:
    reply = t2a_reply()
    reply["data"]["audio"] = "zz-not-hex"
    p, _, _ = make(MiniMaxProvider, [json_response(200, reply)])
    with pytest.raises(UpstreamError, match="not valid hex"):
        p.generate(SPEECH, GenerationRequest(category="tts", text="hi"))


def test_text_over_the_limit_is_refused_before_the_call() -> None:
    p, up, _ = make(MiniMaxProvider, [])
    with pytest.raises(BadRequestError, match="10,000"):
        p.generate(SPEECH, GenerationRequest(category="tts", text="x" * 10_001))
    assert up.requests == []


def test_music_generation() -> None:
    song = mp3_bytes(50)
    reply = {
        "data": {"audio": song.hex(), "status": 2},
        "extra_info": {"music_duration": 25364, "music_sample_rate": 44100},
        "trace_id": "t1",
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }
    p, up, _ = make(MiniMaxProvider, [json_response(200, reply)])
    r = p.generate(
        MUSIC,
        GenerationRequest(category="music", text="Indie folk, melancholic", lyrics="[Verse]\nStreetlights flicker"),
    )
    assert str(up.last.url) == "https://api.minimax.io/v1/music_generation"
    assert up.body() == {
        "model": "music-2.0",
        "prompt": "Indie folk, melancholic",
        "lyrics": "[Verse]\nStreetlights flicker",
        "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
    }
    assert r.data == song and r.usage.seconds == Decimal("25.364")
    assert price_usage(MUSIC, r.usage) == Decimal("0.035")


def test_voice_clone_uploads_then_clones() -> None:
    sample = wav_bytes(12)
    upload = {
        "file": {
            "file_id": 273497373208705,
            "bytes": len(sample),
            "created_at": 1733000000,
            "filename": "sample.wav",
            "purpose": "voice_clone",
        },
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }
    clone = {
        "input_sensitive": False,
        "input_sensitive_type": 0,
        "demo_audio": "https://cdn.example/demo.mp3",
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }
    p, up, _ = make(MiniMaxProvider, [json_response(200, upload), json_response(200, clone)])
    r = p.generate(
        CLONE,
        GenerationRequest(
            category="voice_clone",
            audio=sample,
            audio_filename="sample.wav",
            voice="MyVoice0001",
            text="Hello from my new voice",
        ),
    )
    first, second = up.requests
    assert str(first.url) == "https://api.minimax.io/v1/files/upload"
    assert b'name="purpose"\r\n\r\nvoice_clone' in first.content and sample in first.content
    assert str(second.url) == "https://api.minimax.io/v1/voice_clone"
    assert up.body(1) == {
        "file_id": 273497373208705,
        "voice_id": "MyVoice0001",
        "text": "Hello from my new voice",
        "model": "speech-02-hd",
    }
    assert r.voice_id == "MyVoice0001" and r.metadata["demo_audio"] == "https://cdn.example/demo.mp3"
    assert price_usage(CLONE, r.usage) == Decimal("1.50")


def test_voice_clone_error_on_the_clone_step() -> None:
    upload = {"file": {"file_id": 1}, "base_resp": {"status_code": 0, "status_msg": "success"}}
    p, _, _ = make(
        MiniMaxProvider, [json_response(200, upload), json_response(200, error_reply(2013, "voice_id duplicate"))]
    )
    with pytest.raises(BadRequestError, match="voice_id duplicate"):
        p.generate(CLONE, GenerationRequest(category="voice_clone", audio=wav_bytes(12), voice="MyVoice0001"))


def test_real_http_401_still_maps() -> None:
    p, _, _ = make(
        MiniMaxProvider, [json_response(401, {"base_resp": {"status_code": 1004, "status_msg": "authorized failed"}})]
    )
    with pytest.raises(AuthError, match="authorized failed"):
        p.generate(SPEECH, GenerationRequest(category="tts", text="hi"))
