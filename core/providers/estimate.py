"""Usage estimates: the most a call can consume (for the credit hold) and a best guess when a stream broke.

The hold is an upper bound so a user cannot start a call they cannot pay for; the charge is always the actual usage.
"""

from __future__ import annotations

import math
from decimal import Decimal

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds
from core.providers.types import Category, GenerationRequest
from core.usage import Usage

DEFAULT_MAX_TOKENS = 1024  # sent upstream when the caller gives none, so the hold's bound is real
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators per message
REQUEST_OVERHEAD_TOKENS = 8
SPEECH_CHARS_PER_SECOND_MIN = 8  # slow speech; real voices speak 12-18 characters a second
LOW_BITRATE_BYTES_PER_SECOND = 1000  # 8 kbit/s: no real recording is smaller per second


def max_tokens_for_text(text: str, messages: int = 1) -> int:
    """An upper bound on the tokens of `text`: BPE tokens cover at least a byte, most cover 3-4; count 2."""
    return math.ceil(len(text.encode("utf-8")) / 2) + MESSAGE_OVERHEAD_TOKENS * messages + REQUEST_OVERHEAD_TOKENS


def approx_tokens(text: str) -> int:
    """A best guess of the tokens in `text` (about 4 characters per token in English)."""
    return math.ceil(len(text) / 4) if text else 0


def output_token_limit(request: GenerationRequest) -> int:
    return request.max_tokens or DEFAULT_MAX_TOKENS


def max_speech_seconds(text: str) -> Decimal:
    """The longest audio a text-to-speech model will plausibly return for `text`."""
    return Decimal(math.ceil(len(text) / SPEECH_CHARS_PER_SECOND_MIN) + 2)


def input_audio_seconds(request: GenerationRequest, *, must_measure: bool) -> Decimal:
    """Seconds of the uploaded audio; when it cannot be measured, a low-bitrate bound unless `must_measure`."""
    audio = request.require_audio()
    try:
        return audio_seconds(audio)
    except AudioFormatError:
        if must_measure:
            raise
        return Decimal(math.ceil(len(audio) / LOW_BITRATE_BYTES_PER_SECOND))


def estimate_max_usage(model: ModelPrice, request: GenerationRequest, *, must_measure_audio: bool = False) -> Usage:
    """The most `request` can consume on `model`, in the unit the model is billed in."""
    unit = model.cost_unit
    category = Category(request.category)
    if unit == "token":
        if category == Category.CHAT:
            msgs = request.chat_messages()
            prompt = request.prompt_text()
            return Usage(
                input_tokens=max_tokens_for_text(prompt, len(msgs)),
                output_tokens=output_token_limit(request),
                estimated=True,
            )
        text = request.text or ""
        return Usage(input_tokens=max_tokens_for_text(text), output_tokens=output_token_limit(request), estimated=True)
    if unit == "character":
        return Usage(characters=len(request.text or ""), estimated=True)
    if unit == "second":
        if category in (Category.SPEECH_TO_TEXT, Category.VOICE_CLONE):
            return Usage(seconds=input_audio_seconds(request, must_measure=must_measure_audio), estimated=True)
        return Usage(seconds=max_speech_seconds(request.text or ""), estimated=True)
    if unit == "image":
        return Usage(images=request.n, image_size=request.size, image_quality=request.quality, estimated=True)
    if unit == "request":
        return Usage(requests=request.n if category == Category.IMAGE else 1, estimated=True)
    return Usage(estimated=True)  # uptime: nothing incremental
