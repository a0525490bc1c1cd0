"""The sandbox: an offline, deterministic stand-in for every category, clearly labelled as simulated.

It makes no network call. Its output is real (a streamed text reply, a WAV whose length follows the text, a
transcript, a PNG, music, a voice id) but simulated; its usage is counted the way the mirrored model would be billed,
so the Playground shows what the call would cost. The billing service never debits a sandbox call.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import wave
import zlib
from collections.abc import Generator
from decimal import Decimal
from typing import Any

import numpy as np

from core.catalog.types import ModelPrice
from core.providers.anthropic_tools import check_claude_request
from core.providers.audio import audio_seconds, sniff_format
from core.providers.base import BaseProvider
from core.providers.errors import BadRequestError
from core.providers.estimate import MESSAGE_OVERHEAD_TOKENS, approx_tokens, output_token_limit
from core.providers.images import image_parts
from core.providers.json_output import example_of
from core.providers.tools import answered_text, call_id, tool_names, whole_call_deltas
from core.providers.types import Category, Chunk, GenerationRequest, ProviderResult, TextStream, content_text
from core.usage import Usage

SAMPLE_RATE = 8_000
SPOKEN_CHARS_PER_SECOND = 15
MAX_SPEECH_SECONDS = 600
MUSIC_SECONDS = 8
IMAGE_PIXELS = 256
SIMULATED_IMAGE_TOKENS = 765  # an image sent to a simulated chat: a 1024 x 1024 one, high detail, on gpt-4o
LABEL = "[simulated by the sandbox: no model was called]"

_OPENINGS = [
    "Here is a simulated answer.",
    "This is the sandbox speaking.",
    "A simulated reply, generated offline.",
    "Sandbox reply, for trying the Playground without an API key.",
]
_BODIES = [
    "A real model would answer your message here; this reply only shows how streaming, usage and cost look.",
    "The cost card below shows what this call would have cost on the model the sandbox mirrors; nobody is charged.",
    "Set the provider's API key to get real answers; until then the sandbox keeps the Playground usable.",
    "Every figure on the cost card is computed exactly as for a real call, from the usage counted here.",
]


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


class SandboxProvider(BaseProvider):
    name = "sandbox"
    display_name = "Sandbox (simulated)"
    key_env = ""
    categories = frozenset(Category)
    requires_key = False
    simulated = True
    tool_calling = True
    image_input = True  # each image counted as a 1024 x 1024 one on gpt-4o (high detail: 765 tokens)

    def takes_json_output(self, model: ModelPrice, request: GenerationRequest) -> bool:
        # as the model it mirrors: Anthropic's models are not asked for JSON output here
        return not (model.mirrors or "").startswith("anthropic/")

    def validate(self, model: ModelPrice, request: GenerationRequest) -> None:
        super().validate(model, request)
        if (model.mirrors or "").startswith("anthropic/"):
            check_claude_request(request)  # as Claude refuses (what works here works there)

    def _result(self, model: ModelPrice, *, metadata: dict[str, Any] | None = None, **fields: Any) -> ProviderResult:
        meta = {"simulated": True, "mirrors": model.mirrors, **(metadata or {})}
        return ProviderResult(simulated=True, metadata=meta, **fields)

    # ---- chat ----------------------------------------------------------------------------------------------
    def reply_for(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The simulated answer and why it ended, as a model states it (`finish_reason`, and `stop_sequence` when it
        ended at one): cut at `max_tokens` is "length" (OpenAI's `length`, Anthropic's `max_tokens`, the Responses
        API's `incomplete`), never a plain stop."""
        prompt = request.prompt_text()
        last = request.chat_messages()[-1]
        asked = content_text(last.get("content")).strip()
        digest = _digest(prompt)
        snippet = " ".join(asked.split()[:12]) + ("…" if len(asked.split()) > 12 else "")
        words = len(asked.split())
        reply = (
            f"{LABEL} {_OPENINGS[digest[0] % len(_OPENINGS)]} You wrote {words} word{'s' if words != 1 else ''}: "
            f"“{snippet}”. {_BODIES[digest[1] % len(_BODIES)]} "
            f"{_BODIES[(digest[1] + 1 + digest[2] % 3) % len(_BODIES)]}"
        )
        if request.response_format is not None:  # JSON, as asked: a JSON object, or a value following the schema
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            value = {"simulated": True, "reply": reply} if schema is None else example_of(schema, "simulated")
            reply = json.dumps(value, ensure_ascii=False)
        ended: dict[str, Any] = {"finish_reason": "stop"}
        for stop in request.stop:  # as a model does: the answer ends before the first stop sequence it produces
            head, found, _ = reply.partition(stop)
            if found:
                reply, ended = head, {"finish_reason": "stop_sequence", "stop_sequence": stop}
        limit = output_token_limit(request)
        out = reply.split(" ")
        while approx_tokens(" ".join(out)) > limit and len(out) > 1:
            out.pop()
        text = " ".join(out)
        if text != reply:
            ended = {"finish_reason": "length"}
        return text, ended

    def _chat_usage(self, request: GenerationRequest, reply: str) -> Usage:
        messages = request.chat_messages()
        images = len(image_parts(request.messages)) * SIMULATED_IMAGE_TOKENS
        return Usage(
            input_tokens=approx_tokens(request.prompt_text()) + MESSAGE_OVERHEAD_TOKENS * len(messages) + images,
            output_tokens=approx_tokens(reply),
        )

    def tool_calls_for(self, request: GenerationRequest) -> tuple[dict[str, Any], ...] | None:
        """The call a model offered tools makes: none when told so or when the last message is a tool's result
        (the model answers it in words); else the named tool, or the first, with arguments that follow its
        parameters' schema (one call: enough to drive a client's tool loop)."""
        if not request.tools or request.tool_choice == "none":
            return None
        if request.chat_messages()[-1].get("role") == "tool":
            return None
        choice = request.tool_choice
        name = choice["function"]["name"] if isinstance(choice, dict) else tool_names(request.tools)[0]
        spec = next(t["function"] for t in request.tools if t["function"]["name"] == name)
        arguments = json.dumps(example_of(spec.get("parameters") or {"type": "object"}, "simulated"))
        return (
            {
                "id": call_id(request.prompt_text(), name),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            },
        )

    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        calls = self.tool_calls_for(request)
        if calls is not None:
            usage = self._chat_usage(request, answered_text("", calls))
            return self._result(model, text="", usage=usage, tool_calls=calls, metadata={"finish_reason": "tool_calls"})
        reply, ended = self.reply_for(request)
        return self._result(model, text=reply, usage=self._chat_usage(request, reply), metadata=ended)

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        if self.tool_calls_for(request) is not None:  # an answer that only calls a tool: no text, its call whole
            answer = self.chat(model, request)

            def calls_only() -> Generator[Chunk, None, ProviderResult]:
                yield from whole_call_deltas(answer.tool_calls)
                return answer

            return TextStream(calls_only())
        reply, ended = self.reply_for(request)

        def chunks() -> Generator[str, None, ProviderResult]:
            words = reply.split(" ")
            for i, word in enumerate(words):
                yield word if i == 0 else " " + word
            return self._result(model, text=reply, usage=self._chat_usage(request, reply), metadata=ended)

        return TextStream(chunks())

    # ---- audio ---------------------------------------------------------------------------------------------
    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        text = request.require_text("text to speak")
        audio = speech_wav(text, request.voice or "")
        return self._result(
            model,
            data=audio,
            mime="audio/wav",
            usage=Usage(characters=len(text), seconds=audio_seconds(audio)),
            metadata={"voice": request.voice or "sandbox"},
        )

    def speech_to_text(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        audio = request.require_audio()
        seconds = audio_seconds(audio)
        fmt = (sniff_format(audio) or "audio").upper()
        text = (
            f"{LABEL} Transcript of a {seconds.normalize():f}-second {fmt} recording ({len(audio):,} bytes). "
            "A real speech model would return the spoken words here."
        )
        return self._result(model, text=text, usage=Usage(seconds=seconds))

    def music(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.require_text("a prompt describing the music")
        audio = music_wav(prompt + (request.lyrics or ""))
        return self._result(model, data=audio, mime="audio/wav", usage=Usage(requests=1, seconds=audio_seconds(audio)))

    def voice_clone(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        sample = request.require_audio()
        seconds = audio_seconds(sample)
        if seconds < Decimal(1):
            raise BadRequestError("A voice sample must be at least 1 second long.", provider=self.name)
        voice_id = (request.voice or "").strip() or "sandboxvoice" + hashlib.sha256(sample).hexdigest()[:8]
        return self._result(
            model,
            text=f"{LABEL} Voice cloned as {voice_id} from a {seconds.normalize():f}-second sample.",
            voice_id=voice_id,
            usage=Usage(requests=1),
        )

    # ---- image ---------------------------------------------------------------------------------------------
    def image(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.require_text("a prompt")
        size = request.size or model.price_variants.get("default_size") or "1024x1024"
        quality = request.quality or model.price_variants.get("default_quality")
        return self._result(
            model,
            data=image_png(prompt),
            mime="image/png",
            usage=Usage(images=request.n, image_size=size, image_quality=quality),
            metadata={"note": f"a {IMAGE_PIXELS}px preview; the real model would return {size}"},
        )


def _wav(samples: np.ndarray, rate: int) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def speech_wav(text: str, voice: str = "") -> bytes:
    """A WAV of tone 'syllables', one per word, lasting about len(text)/15 seconds (at least one second)."""
    seconds = min(MAX_SPEECH_SECONDS, max(1.0, len(text) / SPOKEN_CHARS_PER_SECOND))
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float64)
    words = text.split() or ["…"]
    base = 110 + _digest(voice)[0] % 80  # the voice sets the pitch
    per_char = total / max(1, sum(len(w) + 1 for w in words))
    pos = 0
    for word in words:
        n = int(len(word) * per_char)
        gap = int(per_char)
        if n > 0 and pos + n <= total:
            t = np.arange(n) / SAMPLE_RATE
            freq = base + _digest(word)[0] % 120
            envelope = np.sin(np.pi * np.arange(n) / n)
            out[pos : pos + n] = 0.3 * envelope * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t))
        pos += n + gap
    return _wav(out, SAMPLE_RATE)


def music_wav(prompt: str) -> bytes:
    """A short deterministic melody (a pentatonic line chosen by the prompt)."""
    digest = _digest(prompt)
    scale = [0, 2, 4, 7, 9, 12]
    note_len = SAMPLE_RATE // 4
    notes = [scale[b % len(scale)] for b in digest[: MUSIC_SECONDS * 4]]
    out = np.zeros(note_len * len(notes))
    t = np.arange(note_len) / SAMPLE_RATE
    envelope = np.exp(-3 * t / (note_len / SAMPLE_RATE))
    for i, semitone in enumerate(notes):
        freq = 220 * 2 ** (semitone / 12)
        out[i * note_len : (i + 1) * note_len] = 0.35 * envelope * np.sin(2 * math.pi * freq * t)
    return _wav(out, SAMPLE_RATE)


def image_png(prompt: str, size: int = IMAGE_PIXELS) -> bytes:
    """A PNG: a gradient in colours chosen by the prompt, with a few circles."""
    d = _digest(prompt)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    c1, c2 = np.array(list(d[0:3]), dtype=float), np.array(list(d[3:6]), dtype=float)
    img = (1 - (x + y) / 2)[..., None] * c1 + ((x + y) / 2)[..., None] * c2
    for i in range(4):
        cx, cy, r = d[6 + i] / 255, d[10 + i] / 255, 0.08 + d[14 + i] / 255 * 0.2
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        img[mask] = 255 - img[mask]
    pixels = img.clip(0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(size))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
