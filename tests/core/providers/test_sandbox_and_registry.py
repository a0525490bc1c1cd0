from __future__ import annotations

from decimal import Decimal

import pytest

from core.config import Secret, Settings
from core.errors import InvalidInputError
from core.providers import (
    AIProviderFactory,
    BadRequestError,
    GenerationRequest,
    ProviderName,
    UnknownProviderError,
)
from core.providers.audio import audio_seconds
from core.providers.openai import OpenAIProvider
from core.providers.sandbox import LABEL, SandboxProvider
from tests.core.providers.fakes import model, wav_bytes

SB = SandboxProvider(client=None)


def sb_model(category: str, unit: str) -> object:
    return model("sandbox", f"sandbox-{category}", category, unit, mirrors="openai/x")


def test_sandbox_chat_streams_deterministically_and_is_labelled() -> None:
    req = GenerationRequest(category="chat", text="Tell me about credits")
    s1 = SB.stream(sb_model("chat", "token"), req)
    chunks = list(s1)
    assert len(chunks) > 5 and "".join(chunks) == s1.result.text
    assert LABEL in s1.result.text and s1.result.simulated
    s2 = SB.stream(sb_model("chat", "token"), req)
    assert "".join(s2) == s1.result.text and s2.result.usage == s1.result.usage
    assert s1.result.usage.input_tokens > 0 and s1.result.usage.output_tokens > 0


def test_sandbox_chat_ends_before_a_stop_sequence_as_a_model_does() -> None:
    full = SB.generate(sb_model("chat", "token"), GenerationRequest(category="chat", text="hi"))
    cut = SB.generate(sb_model("chat", "token"), GenerationRequest(category="chat", text="hi", stop=["wrote", LABEL]))
    assert cut.text == "" and (full.text or "").startswith(LABEL)
    later = SB.generate(sb_model("chat", "token"), GenerationRequest(category="chat", text="hi", stop=("wrote",)))
    assert later.text and (full.text or "").startswith(later.text) and "wrote" not in later.text
    assert later.usage.output_tokens < full.usage.output_tokens
    with pytest.raises(InvalidInputError, match="stop sequence"):
        GenerationRequest(category="chat", text="hi", stop=("",))


def test_sandbox_chat_respects_max_tokens() -> None:
    r = SB.generate(sb_model("chat", "token"), GenerationRequest(category="chat", text="hi", max_tokens=10))
    assert r.usage.output_tokens <= 10


@pytest.mark.parametrize("stream", [False, True])
def test_sandbox_chat_says_why_it_ended_as_a_model_does(stream: bool) -> None:
    """Cut at max_tokens is "length" (the gateway's finish_reason length, stop_reason max_tokens, an incomplete
    response), at a stop sequence "stop_sequence" naming it, else a plain stop."""

    def ask(**fields: object) -> dict[str, object]:
        req = GenerationRequest(category="chat", text="hi", **fields)
        if not stream:
            return SB.generate(sb_model("chat", "token"), req).metadata
        s = SB.stream(sb_model("chat", "token"), req)
        list(s)
        return s.result.metadata

    assert ask()["finish_reason"] == "stop"
    assert ask(max_tokens=10)["finish_reason"] == "length"
    assert ask(max_tokens=4096)["finish_reason"] == "stop"
    ended = ask(stop=("nothing like this", "wrote"))
    assert (ended["finish_reason"], ended["stop_sequence"]) == ("stop_sequence", "wrote")
    assert ask(stop=("wrote",), max_tokens=5)["finish_reason"] == "length"


def test_sandbox_tts_is_a_real_wav_whose_length_follows_the_text() -> None:
    short = SB.generate(sb_model("tts", "character"), GenerationRequest(category="tts", text="Hello there, friend."))
    long = SB.generate(
        sb_model("tts", "character"), GenerationRequest(category="tts", text="Hello there, friend. " * 10)
    )
    assert short.mime == "audio/wav" and short.data[:4] == b"RIFF"
    assert audio_seconds(long.data) > audio_seconds(short.data) * 5
    assert long.usage.characters == len("Hello there, friend. " * 10)
    assert long.usage.seconds == audio_seconds(long.data)


def test_sandbox_transcript_measures_the_audio() -> None:
    r = SB.generate(
        sb_model("speech_to_text", "second"), GenerationRequest(category="speech_to_text", audio=wav_bytes(2))
    )
    assert r.usage.seconds == Decimal("2.000") and "2-second WAV" in r.text


def test_sandbox_image_music_and_voice_clone() -> None:
    img = SB.generate(
        sb_model("image", "image"), GenerationRequest(category="image", text="a red fox", size="1024x1792")
    )
    assert img.data.startswith(b"\x89PNG") and img.usage.images == 1 and img.usage.image_size == "1024x1792"
    song = SB.generate(sb_model("music", "request"), GenerationRequest(category="music", text="lofi beat"))
    assert audio_seconds(song.data) == Decimal("8.000") and song.usage.requests == 1
    clone = SB.generate(
        sb_model("voice_clone", "request"), GenerationRequest(category="voice_clone", audio=wav_bytes(3))
    )
    assert clone.voice_id and clone.voice_id.startswith("sandboxvoice")


def test_category_mismatch_is_refused() -> None:
    with pytest.raises(BadRequestError, match="is a tts model"):
        SB.generate(sb_model("tts", "character"), GenerationRequest(category="chat", text="hi"))
    openai = OpenAIProvider(client=None, api_key="k")
    with pytest.raises(BadRequestError, match="does not offer music"):
        openai.generate(model("openai", "x", "music", "request"), GenerationRequest(category="music", text="x"))


def test_registry_names_and_factory() -> None:
    assert AIProviderFactory.get_available_providers() == [
        "openai",
        "anthropic",
        "together_ai",
        "huggingface",
        "huggingface_endpoint",
        "minimax",
        "sandbox",
    ]
    assert ProviderName.OPENAI == "openai" and ProviderName("sandbox") is ProviderName.SANDBOX
    settings = Settings(
        api_keys={"openai": Secret("sk-real-looking-key")}, base_urls={"openai": "http://127.0.0.1:1/v1"}
    )
    factory = AIProviderFactory(settings)
    p = factory.get_provider("openai")
    assert isinstance(p, OpenAIProvider) and p.base_url == "http://127.0.0.1:1/v1"
    assert factory.get_provider(ProviderName.OPENAI) is p
    assert factory.configured_providers() == ["openai", "huggingface_endpoint", "sandbox"]
    problems = factory.configuration_problems()
    assert "ANTHROPIC_API_KEY" in problems["anthropic"] and "openai" not in problems
    with pytest.raises(UnknownProviderError, match="choose one of"):
        factory.get_provider("acme")
    factory.close()


def test_secret_never_in_repr_of_a_provider_key() -> None:
    p = OpenAIProvider(client=None, api_key="sk-proj-abcdefghijklmnop")
    assert "abcdefghijklmnop" not in repr(p._api_key) and "abcdefghijklmnop" not in str(vars(p))


def test_sandbox_chat_reads_the_text_of_content_blocks() -> None:
    blocks = [{"type": "text", "text": "Tell me about credits", "cache_control": {"type": "ephemeral"}}]
    asked = GenerationRequest(category="chat", messages=({"role": "user", "content": blocks},))
    plain = GenerationRequest(category="chat", text="Tell me about credits")
    reply = SB.generate(sb_model("chat", "token"), asked).text or ""
    assert "“Tell me about credits”" in reply and "cache_control" not in reply
    assert reply == SB.generate(sb_model("chat", "token"), plain).text
