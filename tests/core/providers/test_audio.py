from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from core.providers.audio import AudioFormatError, audio_seconds, mime_for, sniff_format
from tests.core.providers.fakes import MP3_FRAME_SECONDS, flac_bytes, mp3_bytes, streamed_flac_bytes, wav_bytes


def test_wav_length_from_frames() -> None:
    assert audio_seconds(wav_bytes(2.5)) == Decimal("2.500")
    assert audio_seconds(wav_bytes(1.0, rate=8000, channels=2)) == Decimal("1.000")


def test_flac_length_from_streaminfo() -> None:
    assert audio_seconds(flac_bytes(22_050 * 3)) == Decimal("3.000")
    # 1 sample over 3 s rounds up to the next millisecond: never under-bill
    assert audio_seconds(flac_bytes(22_050 * 3 + 1)) == Decimal("3.001")


def test_flac_without_a_sample_count_is_decoded_and_counted() -> None:
    # Hugging Face's FLAC replies state total_samples = 0: the header cannot say, the decoder counts the samples.
    data = streamed_flac_bytes("1.045")
    assert int.from_bytes(data[18:26], "big") & ((1 << 36) - 1) == 0
    assert audio_seconds(data) == Decimal("1.045")


def test_a_damaged_flac_is_named_as_flac_not_as_an_unknown_format() -> None:
    with pytest.raises(AudioFormatError, match="FLAC") as caught:
        audio_seconds(streamed_flac_bytes("0.5")[:60] + b"\x00" * 40)
    assert "not a known audio format" not in str(caught.value)


def test_mp3_length_from_frames() -> None:
    seconds = audio_seconds(mp3_bytes(200))
    assert abs(seconds - 200 * MP3_FRAME_SECONDS) < Decimal("0.03")


def test_float_wav_measured_from_riff_chunks() -> None:
    # WAVE_FORMAT_IEEE_FLOAT (3), which the stdlib `wave` refuses: 2 s of 16 kHz mono float32
    data = bytes(16_000 * 4 * 2)
    fmt = struct.pack("<HHIIHH", 3, 1, 16_000, 64_000, 4, 32)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    assert audio_seconds(b"RIFF" + struct.pack("<I", len(riff)) + riff) == Decimal("2.000")


@pytest.mark.parametrize("junk", [b"", b"hello world, not audio", b"RIFF\x00\x00\x00\x00WAVE"])
def test_unknown_or_broken_audio_is_refused(junk: bytes) -> None:
    with pytest.raises(AudioFormatError):
        audio_seconds(junk)


def test_sniffing() -> None:
    assert sniff_format(wav_bytes(0.1)) == "wav"
    assert sniff_format(flac_bytes(10)) == "flac"
    assert sniff_format(mp3_bytes(1)) == "mp3"
    assert mime_for(b"nothing") == "application/octet-stream"
    assert mime_for(flac_bytes(10)) == "audio/flac"
