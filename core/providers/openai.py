"""OpenAI: chat completions (streamed with include_usage), transcriptions, speech and image generation."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds, mime_for, sniff_format
from core.providers.errors import UpstreamError, UpstreamProtocolError
from core.providers.openai_compat import OpenAICompatibleChat
from core.providers.types import Category, GenerationRequest, ProviderResult
from core.providers.usage_figures import count, unreadable
from core.usage import Usage

DEFAULT_VOICE = "alloy"
SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}


class OpenAIProvider(OpenAICompatibleChat):
    name = "openai"
    display_name = "OpenAI"
    key_env = "OPENAI_API_KEY"
    categories = frozenset({Category.CHAT, Category.SPEECH_TO_TEXT, Category.TTS, Category.IMAGE})
    max_tokens_field = "max_completion_tokens"  # `max_tokens` is deprecated on OpenAI's own API
    upstream_states_audio_seconds = True  # whisper-1 answers usage {type: "duration", seconds}

    def speech_to_text(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        audio = request.require_audio()
        filename = request.audio_filename or f"audio.{sniff_format(audio) or 'mp3'}"
        mime = request.audio_mime or mime_for(audio)
        response = self.send(
            "POST",
            self.url("/audio/transcriptions"),
            files={"file": (filename, audio, mime)},
            data={"model": model.model_id, "response_format": "json", **_transcription_hints(request)},
        )
        data = self.parse_json(response)
        if not isinstance(data, dict) or "text" not in data:
            raise UpstreamError(f"{self.display_name} answered without a transcript; try again.", provider=self.name)
        return ProviderResult(
            text=data["text"],
            usage=self._transcription_usage(data.get("usage"), audio),
            request_id=response.headers.get("x-request-id"),
        )

    @staticmethod
    def _transcription_usage(raw: Any, audio: bytes) -> Usage:
        if isinstance(raw, dict) and raw.get("type") == "duration" and raw.get("seconds") is not None:
            return Usage(seconds=Decimal(str(raw["seconds"])))
        if isinstance(raw, dict) and raw.get("type") == "tokens":
            # gpt-4o-transcribe models state tokens. A model priced per second (whisper-1 answered this way) is billed
            # the uploaded audio's measured seconds; when they cannot be measured, billing uses the hold's bound.
            details = raw.get("input_token_details") if isinstance(raw.get("input_token_details"), dict) else {}
            try:
                tokens_in = count(raw, "input_tokens", provider="OpenAI")
                tokens_out = count(raw, "output_tokens", provider="OpenAI")
                audio_tokens = count(details, "audio_tokens", provider="OpenAI")
            except UpstreamProtocolError as exc:
                return unreadable(exc)
            extra: dict[str, Any] = {"input_audio_tokens": audio_tokens} if details else {}
            try:
                seconds = audio_seconds(audio)
                extra["seconds_source"] = "measured from the uploaded audio"
            except AudioFormatError:
                seconds = Decimal(0)
            return Usage(
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                seconds=seconds,
                extra=extra,
            )
        # Older answers state no usage: the billable quantity is the audio's length, measured from the bytes.
        try:
            return Usage(seconds=audio_seconds(audio), extra={"seconds_source": "measured from the uploaded audio"})
        except AudioFormatError:
            raise UpstreamError(
                "OpenAI stated no usage and the audio's length cannot be measured; upload WAV, FLAC or MP3.",
                provider="openai",
            ) from None

    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        text = request.require_text("text to speak")
        fmt = str(request.options.get("format", "mp3"))
        body: dict[str, Any] = {
            "model": model.model_id,
            "input": text,
            "voice": request.voice or DEFAULT_VOICE,
            "response_format": fmt,
        }
        for name in ("speed", "instructions"):  # instructions: the voice's tone (gpt-4o-mini-tts)
            if name in request.options:
                body[name] = request.options[name]
        response = self.send("POST", self.url("/audio/speech"), json_body=body)
        audio = response.content
        if not audio:
            raise UpstreamError(f"{self.display_name} returned no audio; try again.", provider=self.name)
        mime = response.headers.get("content-type", "").split(";")[0] or SPEECH_FORMATS.get(fmt, mime_for(audio))
        # Billed per input character: the text we sent is the usage.
        return ProviderResult(
            data=audio,
            mime=mime,
            usage=Usage(characters=len(text)),
            request_id=response.headers.get("x-request-id"),
            metadata={"voice": body["voice"], "format": fmt},
        )

    def image(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.require_text("a prompt")
        size = request.size or model.price_variants.get("default_size") or "1024x1024"
        body: dict[str, Any] = {
            "model": model.model_id,
            "prompt": prompt,
            "size": size,
            "n": request.n,
            "response_format": "b64_json",
        }
        if request.quality:
            body["quality"] = request.quality
        response = self.send("POST", self.url("/images/generations"), json_body=body)
        data = self.parse_json(response)
        items = data.get("data") if isinstance(data, dict) else None
        if not items:
            raise UpstreamError(f"{self.display_name} returned no image; try again.", provider=self.name)
        try:
            first = base64.b64decode(items[0]["b64_json"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise UpstreamError(
                f"{self.display_name} returned an unreadable image; try again.", provider=self.name
            ) from None
        quality = request.quality or model.price_variants.get("default_quality")
        # DALL-E states no usage: it is billed per image by model, size and quality.
        usage = Usage(images=len(items), image_size=size, image_quality=quality)
        return ProviderResult(
            data=first,
            mime=image_mime(first),
            usage=usage,
            request_id=response.headers.get("x-request-id"),
            metadata={"revised_prompt": items[0].get("revised_prompt")} if items[0].get("revised_prompt") else {},
        )


def _transcription_hints(request: GenerationRequest) -> dict[str, str]:
    """The audio's language (ISO-639-1) and a prompt (spellings, the previous segment), when the caller gave them."""
    return {name: str(request.options[name]) for name in ("language", "prompt") if request.options.get(name)}


def image_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
