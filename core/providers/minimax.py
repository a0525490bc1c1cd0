"""MiniMax: t2a_v2 text-to-speech, music generation and voice cloning.

MiniMax reports most errors with HTTP 200 and `base_resp.status_code != 0`; they are mapped to the same typed errors
as HTTP failures. Audio comes hex-encoded. Text-to-speech is billed by `extra_info.usage_characters`, in which MiniMax
counts a CJK character as 2: the hold counts the same way (every East Asian wide or fullwidth character as 2), so it
is an upper bound of what MiniMax bills for Chinese, Japanese or Korean text too.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

import httpx

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds, mime_for, sniff_format
from core.providers.base import BaseProvider
from core.providers.errors import (
    AuthError,
    BadRequestError,
    ProviderError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    UpstreamError,
    UpstreamProtocolError,
)
from core.providers.types import Category, GenerationRequest, ProviderResult
from core.providers.usage_figures import count, unreadable
from core.usage import Usage

DEFAULT_VOICE = "male-qn-qingse"
MAX_TTS_CHARS = 10_000
AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "pcm": "audio/L16"}

# base_resp.status_code -> (error type, what the user can do)
STATUS_ERRORS: dict[int, tuple[type[ProviderError], str]] = {
    1000: (UpstreamError, "MiniMax had an unknown error; try again"),
    1001: (ProviderTimeout, "MiniMax timed out; try again"),
    1002: (RateLimitError, "MiniMax is rate limiting us; try again in a moment"),
    1004: (
        AuthError,
        "MiniMax refused the API key; check MINIMAX_API_KEY (and MINIMAX_GROUP_ID if your account needs it)",
    ),
    1008: (QuotaExceededError, "our MiniMax account has insufficient balance; an admin must top it up"),
    1013: (UpstreamError, "MiniMax had an internal error; try again"),
    1026: (BadRequestError, "MiniMax flagged the input as sensitive; change the text"),
    1027: (BadRequestError, "MiniMax flagged the output as sensitive; change the text"),
    1039: (RateLimitError, "MiniMax's token rate limit was reached; try again in a moment"),
    1042: (BadRequestError, "the text has too many invalid characters"),
    2013: (BadRequestError, "MiniMax refused the input as invalid; check the text, voice and settings"),
    2038: (AuthError, "the MiniMax account must complete verification before this call"),
    2044: (AuthError, "the MiniMax key has no permission for this model or feature"),
}


class MiniMaxProvider(BaseProvider):
    name = "minimax"
    display_name = "MiniMax"
    key_env = "MINIMAX_API_KEY"
    categories = frozenset({Category.TTS, Category.MUSIC, Category.VOICE_CLONE})

    @property
    def params(self) -> dict[str, str]:
        # Older accounts need ?GroupId=...; newer keys work without it (unconfirmed), so it is optional.
        return {"GroupId": self.settings.minimax_group_id} if self.settings.minimax_group_id else {}

    def checked(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body, or the typed error its base_resp states (MiniMax errors arrive with HTTP 200)."""
        data = self.parse_json(response)
        if not isinstance(data, dict):
            raise UpstreamError("MiniMax returned an unexpected answer; try again.", provider=self.name)
        base = data.get("base_resp") or {}
        code = int(base.get("status_code") or 0)
        if code != 0:
            msg = str(base.get("status_msg") or "")
            kind, advice = STATUS_ERRORS.get(
                code, (BadRequestError if 2000 <= code < 3000 else UpstreamError, "MiniMax refused the call")
            )
            raise kind(
                f"{advice} (MiniMax {code}: {msg}).",
                provider=self.name,
                status_code=response.status_code,
                upstream_message=f"{code}: {msg}",
            )
        return data

    @staticmethod
    def decode_audio(hex_audio: Any) -> bytes:
        if not isinstance(hex_audio, str) or not hex_audio:
            raise UpstreamError("MiniMax returned no audio; try again.", provider="minimax")
        try:
            return bytes.fromhex(hex_audio)
        except ValueError:
            raise UpstreamError(
                "MiniMax returned audio that is not valid hex; try again.", provider="minimax"
            ) from None

    @staticmethod
    def billed_characters(text: str) -> int:
        """MiniMax's count: CJK characters (East Asian wide or fullwidth) count 2, every other character 1."""
        return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)

    def validate(self, model: ModelPrice, request: GenerationRequest) -> None:
        super().validate(model, request)
        category = Category(request.category)
        if category == Category.TTS and len(request.text or "") > MAX_TTS_CHARS:
            raise BadRequestError(
                f"MiniMax speaks at most {MAX_TTS_CHARS:,} characters per call; this text has "
                f"{len(request.text or ''):,}.",
                provider=self.name,
            )
        if category == Category.MUSIC and not (request.lyrics or "").strip():
            raise BadRequestError(
                "MiniMax music needs lyrics (use [Verse] / [Chorus] lines; [Instrumental] for none).",
                provider=self.name,
            )
        if category == Category.VOICE_CLONE and not (request.voice or "").strip():
            raise BadRequestError(
                "Name the new voice: a voice id of at least 8 letters and digits, starting with a letter.",
                provider=self.name,
            )

    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        text = request.require_text("text to speak")
        fmt = str(request.options.get("format", "mp3"))
        body = {
            "model": model.model_id,
            "text": text,
            "stream": False,
            "output_format": "hex",
            "voice_setting": {
                "voice_id": request.voice or DEFAULT_VOICE,
                "speed": request.options.get("speed", 1),
                "vol": request.options.get("vol", 1),
                "pitch": request.options.get("pitch", 0),
            },
            "audio_setting": {"sample_rate": 32000, "bitrate": 128000, "format": fmt, "channel": 1},
        }
        response = self.send("POST", self.url("/v1/t2a_v2"), json_body=body, params=self.params)
        data = self.checked(response)
        audio = self.decode_audio((data.get("data") or {}).get("audio"))
        info = data.get("extra_info") or {}
        metadata: dict[str, Any] = {"voice": body["voice_setting"]["voice_id"], "format": fmt}
        if info.get("usage_characters") is not None:
            try:
                characters = count(info, "usage_characters", provider="MiniMax")
                usage = Usage(characters=characters, seconds=_ms_to_seconds(info.get("audio_length")))
            except UpstreamProtocolError as exc:
                usage = unreadable(exc)
        else:
            seconds = _ms_to_seconds(info.get("audio_length"))
            usage = Usage(characters=self.billed_characters(text), seconds=seconds, estimated=True)
            metadata["usage_estimated"] = "MiniMax stated no usage_characters; billed the text sent, counted its way"
        return ProviderResult(
            data=audio,
            mime=AUDIO_MIME.get(str(info.get("audio_format") or fmt), mime_for(audio)),
            usage=usage,
            request_id=data.get("trace_id"),
            metadata=metadata,
        )

    def music(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.require_text("a prompt describing the music")
        body = {
            "model": model.model_id,
            "prompt": prompt,
            "lyrics": request.lyrics,
            "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
        }
        response = self.send("POST", self.url("/v1/music_generation"), json_body=body, params=self.params)
        data = self.checked(response)
        audio = self.decode_audio((data.get("data") or {}).get("audio"))
        info = data.get("extra_info") or {}
        seconds = _ms_to_seconds(info.get("music_duration") or info.get("audio_length"))
        if not seconds:
            try:
                seconds = audio_seconds(audio)
            except AudioFormatError:
                seconds = Decimal(0)
        return ProviderResult(
            data=audio,
            mime=mime_for(audio, "audio/mpeg"),
            usage=Usage(requests=1, seconds=seconds),
            request_id=data.get("trace_id"),
        )

    def voice_clone(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        sample = request.require_audio()
        voice_id = (request.voice or "").strip()
        filename = request.audio_filename or f"sample.{sniff_format(sample) or 'mp3'}"
        upload = self.send(
            "POST",
            self.url("/v1/files/upload"),
            files={"file": (filename, sample, request.audio_mime or mime_for(sample))},
            data={"purpose": "voice_clone"},
            params=self.params,
        )
        file_info = self.checked(upload).get("file") or {}
        file_id = file_info.get("file_id")
        if file_id is None:
            raise UpstreamError("MiniMax accepted the upload but returned no file_id; try again.", provider=self.name)
        body: dict[str, Any] = {"file_id": file_id, "voice_id": voice_id}
        if request.text:
            body["text"] = request.text
            body["model"] = str(request.options.get("preview_model", "speech-02-hd"))
        response = self.send("POST", self.url("/v1/voice_clone"), json_body=body, params=self.params)
        data = self.checked(response)
        metadata: dict[str, Any] = {"file_id": file_id}
        if data.get("demo_audio"):
            metadata["demo_audio"] = data["demo_audio"]
        return ProviderResult(
            text=f"Voice cloned as {voice_id}.",
            voice_id=voice_id,
            usage=Usage(requests=1),
            request_id=data.get("trace_id"),
            metadata=metadata,
        )

    def upstream_message(self, response: httpx.Response) -> str:
        try:
            base = (response.json() or {}).get("base_resp") or {}
        except (ValueError, AttributeError):
            base = {}
        if base.get("status_msg"):
            return f"{base.get('status_code')}: {base['status_msg']}"
        return super().upstream_message(response)


def _ms_to_seconds(ms: Any) -> Decimal:
    try:
        return Decimal(str(ms)) / 1000 if ms is not None else Decimal(0)
    except ArithmeticError:
        return Decimal(0)
