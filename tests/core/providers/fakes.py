"""Test doubles: MockTransport handlers that reply like the real APIs and record what was sent; audio fixtures."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from core.catalog.types import ModelPrice
from core.config import Settings
from core.providers.base import BaseProvider
from core.providers.retry import RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Upstream:
    """A scripted upstream: each request gets the next reply (a Response, an exception to raise, or a callable)."""

    replies: list[Any]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected extra request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


def make(
    cls: type[BaseProvider],
    replies: list[Any],
    *,
    api_key: str | None = "test-key-123456",
    base_url: str | None = None,
    settings: Settings | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[BaseProvider, Upstream, list[float]]:
    """A provider whose client is a MockTransport over `replies`, and the list of sleeps it asked for."""
    upstream = Upstream(list(replies))
    sleeps: list[float] = []
    settings = settings or Settings()
    provider = cls(
        client=httpx.Client(transport=httpx.MockTransport(upstream)),
        api_key=api_key,
        base_url=base_url if base_url is not None else settings.base_url(cls.name),
        settings=settings,
        retry=retry or RetryPolicy(),
        sleep=sleeps.append,
    )
    return provider, upstream, sleeps


def model(provider: str, model_id: str, category: str, cost_unit: str, **fields: Any) -> ModelPrice:
    return ModelPrice(
        id=1,
        provider=provider,
        model_id=model_id,
        model_name=model_id,
        category=category,
        deployment_type=fields.pop("deployment_type", "api_proxy"),
        cost_unit=cost_unit,
        **fields,
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sse_body(events: Iterable[tuple[str | None, Any]]) -> bytes:
    """SSE bytes: (event name or None, data as a dict or a raw string) per event."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def sse_response(events: Iterable[tuple[str | None, Any]], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream", **(headers or {})},
        content=sse_body(events),
    )


class BreakingStream(httpx.SyncByteStream):
    """Sends `chunks`, then the connection resets."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("[Errno 104] Connection reset by peer")


def breaking_response(chunks: list[bytes], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream", **(headers or {})}, stream=BreakingStream(chunks)
    )


# ---- audio fixtures ----------------------------------------------------------------------------------------


def wav_bytes(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    frames = int(seconds * rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
        w.writeframes(b"".join(struct.pack("<h", s) * channels for s in samples))
    return buf.getvalue()


def flac_bytes(total_samples: int, rate: int = 22_050) -> bytes:
    """A FLAC header: 'fLaC' + a STREAMINFO block stating the sample count (what players read the length from)."""
    bits = (rate << 44) | (0 << 41) | (15 << 36) | total_samples  # 20-bit rate, channels-1, bps-1, 36-bit samples
    info = struct.pack(">HH", 4096, 4096) + (0).to_bytes(3, "big") * 2 + bits.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def mp3_bytes(frames: int) -> bytes:
    """MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: a Xing header frame stating `frames`, then that many silent frames."""
    header = b"\xff\xfb\x90\x00"  # sync, MPEG-1 L3, no CRC, 128k, 44.1k, no padding, stereo
    size = 417  # 144 * 128000 / 44100
    xing = bytearray(header + bytes(size - 4))
    xing[36:48] = b"Xing" + struct.pack(">II", 0x1, frames)
    silent = header + bytes(size - 4)
    return bytes(xing) + silent * frames


MP3_FRAME_SECONDS = Decimal(1152) / Decimal(44_100)


def streamed_flac_bytes(seconds: str, rate: int = 16_000) -> bytes:
    """A real FLAC file (a tone encoded by libsndfile) as an encoder writing to a pipe leaves it, and as Hugging Face's
    text-to-speech returns it: STREAMINFO's 36-bit total_samples is 0 because it could not be filled in afterwards."""
    import numpy as np
    import soundfile

    frames = int(Decimal(seconds) * rate)
    tone = (np.sin(2 * np.pi * 440 * np.arange(frames) / rate) * 8000).astype("int16")
    buf = io.BytesIO()
    soundfile.write(buf, tone, rate, format="FLAC")
    data = bytearray(buf.getvalue())
    # 'fLaC' (4) + block header (4) + min/max block (4) + min/max frame (6): then rate, channels, bps, total_samples
    fields = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
    data[18:26] = fields.to_bytes(8, "big")
    return bytes(data)
