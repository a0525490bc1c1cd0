"""Usage estimates: the most a call can consume (for the credit hold) and a best guess when a stream broke.

The hold is an upper bound of what the provider can bill for the request, by the provider's own counting rule, so a
user cannot start a call they cannot pay for; the charge is the actual usage, checked against the same limits
(`core.billing.reconcile`). The bounds:
- prompt tokens: every byte-level BPE token covers at least one byte of UTF-8, so a text prompt has at most as many
  tokens as bytes, plus the chat template's tokens per message and per request;
- a prompt that marks content for caching (`cache_control`) may be written to the cache in full, at the dearest
  cache-write rate the model has;
- images: each at the most its model can bill for one (core/providers/images.py);
- tools offered: their definitions as text, plus the system prompt a provider adds for tool use (Anthropic documents
  it: up to 530 tokens, Claude 3 Opus with `tool_choice` auto; 346 for the Claude 4 models);
- output tokens: max_tokens (always sent upstream);
- characters: `billed_characters` (one per character; providers that count some characters double override it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds
from core.providers.images import image_parts, image_token_bound
from core.providers.types import Category, GenerationRequest
from core.usage import Usage

DEFAULT_MAX_TOKENS = 1024  # sent upstream when the caller gives none, so the hold's bound is real
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators per message (a best guess)
BOUND_MESSAGE_OVERHEAD_TOKENS = 8  # the most a chat template adds per message (Llama 3's header and end tokens: 5)
BOUND_REQUEST_OVERHEAD_TOKENS = 64  # and per request (Llama 3.1's template adds a dated system preamble)
# The system prompt a provider adds when tools are offered, at most: Anthropic's pricing page lists it per model and
# tool_choice (Claude 4 models: 346 auto/none, 313 any/tool; Claude 3 Opus: 530 auto/none, the most).
TOOLS_SYSTEM_PROMPT_TOKENS = 530
SPEECH_CHARS_PER_SECOND_MIN = 8  # slow speech; real voices speak 12-18 characters a second
LOW_BITRATE_BYTES_PER_SECOND = 1000  # 8 kbit/s: no real recording is smaller per second


def max_tokens_for_text(text: str, messages: int = 1) -> int:
    """An upper bound on the tokens of `text`: a byte-level BPE token covers at least one byte."""
    return len(text.encode("utf-8")) + BOUND_MESSAGE_OVERHEAD_TOKENS * messages + BOUND_REQUEST_OVERHEAD_TOKENS


def max_input_tokens(request: GenerationRequest, model: ModelPrice | None = None) -> int:
    """An upper bound on the prompt's tokens (the hold's, and the count the gateway gives for a model whose provider
    has no token-counting API): a chat request's messages with their template overhead (each image at the most the
    model can bill for one), else its text."""
    if Category(request.category) == Category.CHAT:
        bound = max_tokens_for_text(request.prompt_text(), len(request.chat_messages()))
        if request.response_format is not None:  # a JSON schema reaches the model as prompt tokens too
            bound += max_tokens_for_text(json.dumps(request.response_format))
        calls = [m.get("tool_calls") for m in request.chat_messages() if m.get("tool_calls")]
        if request.tools or calls:  # so do the tools offered and the calls earlier answers made
            bound += max_tokens_for_text(json.dumps([request.tools, calls], default=str))
        if request.tools:  # and the provider's own system prompt for tool use
            bound += TOOLS_SYSTEM_PROMPT_TOKENS
        images = len(image_parts(request.messages))
        if images:  # counted by the provider from each image's size, which a URL does not show: each at its most
            provider, model_id = _billed_as(model)
            bound += images * image_token_bound(provider, model_id)
        return bound
    return max_tokens_for_text(request.text or "")


def _billed_as(model: ModelPrice | None) -> tuple[str | None, str | None]:
    """The provider and model id whose rules bill the call (a sandbox model: the model it mirrors)."""
    if model is None:
        return None, None
    if model.mirrors and "/" in model.mirrors:
        provider, _, model_id = model.mirrors.partition("/")
        return provider, model_id
    return model.provider, model.model_id


def billed_characters(text: str) -> int:
    """Characters as most providers bill them: one per character."""
    return len(text)


def asks_for_cache_writes(request: GenerationRequest) -> bool:
    """The request marks content for the provider's prompt cache (Anthropic's `cache_control`)."""
    parts = [request.system, *(request.messages or ())]
    return any("cache_control" in repr(p) for p in parts if p)


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


def estimate_max_usage(
    model: ModelPrice,
    request: GenerationRequest,
    *,
    must_measure_audio: bool = False,
    count_characters: Callable[[str], int] = billed_characters,
) -> Usage:
    """The most `request` can consume on `model`, in the unit the model is billed in."""
    unit = model.cost_unit
    category = Category(request.category)
    if unit == "token":
        prompt = max_input_tokens(request, model)
        writes = writes_1h = 0
        if asks_for_cache_writes(request) and model.price_variants.get("cache_write_per_1m_usd") is not None:
            writes = prompt
            writes_1h = prompt if model.price_variants.get("cache_write_1h_per_1m_usd") is not None else 0
        return Usage(
            input_tokens=prompt,
            output_tokens=output_token_limit(request),
            cache_write_tokens=writes,
            cache_write_1h_tokens=writes_1h,
            estimated=True,
        )
    if unit == "character":
        return Usage(characters=count_characters(request.text or ""), estimated=True)
    if unit == "second":
        if category in (Category.SPEECH_TO_TEXT, Category.VOICE_CLONE):
            return Usage(seconds=input_audio_seconds(request, must_measure=must_measure_audio), estimated=True)
        return Usage(seconds=max_speech_seconds(request.text or ""), estimated=True)
    if unit == "image":
        return Usage(images=request.n, image_size=request.size, image_quality=request.quality, estimated=True)
    if unit == "request":
        return Usage(requests=request.n if category == Category.IMAGE else 1, estimated=True)
    return Usage(estimated=True)  # uptime: nothing incremental
