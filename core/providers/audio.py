"""Measure the length of audio from its bytes (WAV with the stdlib `wave`, FLAC/MP3/OGG with mutagen, and by
decoding with libsndfile through `soundfile` when the header does not state it).

Providers bill audio by the second: a transcription by the seconds of the uploaded file, a Hugging Face
text-to-speech by the seconds of the returned file. Seconds are rounded up to whole milliseconds (never under-bill).

A header is not always the truth: an encoder writing to a pipe cannot go back to fill in FLAC's STREAMINFO sample
count, so it leaves `total_samples = 0` (Hugging Face's text-to-speech replies are written that way). Such a file is
decoded to the end and its samples counted.
"""

from __future__ import annotations

import io
import struct
import wave
from decimal import ROUND_CEILING, Decimal

import mutagen
import numpy as np
import soundfile

from core.errors import InvalidInputError

MILLI = Decimal("0.001")
MIME_BY_FORMAT = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
}
DECODE_BLOCK_FRAMES = 65_536


class AudioFormatError(InvalidInputError):
    """The bytes are not audio this engine can measure."""


def sniff_format(data: bytes) -> str | None:
    """The container format from the first bytes: wav, flac, mp3, ogg, m4a, webm, or None."""
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def mime_for(data: bytes, default: str = "application/octet-stream") -> str:
    fmt = sniff_format(data)
    return MIME_BY_FORMAT.get(fmt, default) if fmt else default


def _ms(seconds: float | Decimal) -> Decimal:
    return Decimal(str(seconds)).quantize(MILLI, rounding=ROUND_CEILING)


def _riff_seconds(data: bytes) -> Decimal | None:
    """WAV variants `wave` refuses (float samples, WAVE_FORMAT_EXTENSIBLE): data bytes / byte rate."""
    pos, byte_rate, data_size = 12, 0, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk_id == b"fmt " and size >= 16:
            byte_rate = struct.unpack("<I", data[body + 8 : body + 12])[0]
        elif chunk_id == b"data":
            # A streamed WAV may carry a placeholder size; trust the bytes actually present.
            data_size = min(size, len(data) - body)
            break
        pos = body + size + (size & 1)
    if not byte_rate or data_size is None:
        return None
    return _ms(Decimal(data_size) / Decimal(byte_rate))


def wav_seconds(data: bytes) -> Decimal:
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate = w.getframerate()
            if rate <= 0:
                raise AudioFormatError("The WAV file has a sample rate of 0.")
            return _ms(Decimal(w.getnframes()) / Decimal(rate))
    except (wave.Error, EOFError):
        seconds = _riff_seconds(data)
        if seconds is None:
            raise AudioFormatError("The WAV file is damaged: it has no readable format or data chunk.") from None
        return seconds


def audio_seconds(data: bytes) -> Decimal:
    """The duration of `data` in seconds (rounded up to ms). Raises AudioFormatError for unknown or broken audio."""
    if not data:
        raise AudioFormatError("The audio is empty.")
    fmt = sniff_format(data)
    if fmt == "wav":
        return wav_seconds(data)
    try:
        parsed = mutagen.File(io.BytesIO(data))
    except mutagen.MutagenError:
        parsed = None
    length = getattr(getattr(parsed, "info", None), "length", None)
    if length:
        return _ms(length)
    # The header does not state the length (or cannot be read): decode the audio and count its samples.
    return decoded_seconds(data, fmt)


class _ForwardOnly(soundfile.SoundFile):
    """Read front to back without seeking: soundfile seeks after every read, which libsndfile refuses on a FLAC
    stream whose header gives no sample count."""

    def seekable(self) -> bool:
        return False


def decoded_seconds(data: bytes, fmt: str | None = None) -> Decimal:
    """Seconds of audio counted by decoding every sample (FLAC, MP3, OGG Vorbis/Opus, WAV variants)."""
    what = fmt.upper() if fmt else "audio"
    try:
        with _ForwardOnly(io.BytesIO(data)) as f:
            rate = f.samplerate
            block = np.empty((DECODE_BLOCK_FRAMES, f.channels), dtype="int16")
            frames = 0
            while True:
                got = len(f.read(DECODE_BLOCK_FRAMES, dtype="int16", out=block))
                if not got:
                    break
                frames += got
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
        if fmt is None:
            raise AudioFormatError(
                "Cannot measure this audio: send WAV, FLAC, MP3 or OGG (the first bytes are not a known audio format)."
            ) from exc
        raise AudioFormatError(f"The {what} file cannot be decoded ({exc}); it may be damaged.") from exc
    if rate <= 0 or frames == 0:
        raise AudioFormatError(f"The {what} file holds no audio samples.")
    return _ms(Decimal(frames) / Decimal(rate))
