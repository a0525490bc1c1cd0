"""Default inputs of the break-even simulator. Every figure here is an editable estimate, not a measurement.

Throughput is what one replica serves per hour while still meeting a latency target (batching folded in); the service
time is how long one request takes on an idle replica. Both depend on the model, its size and the serving stack, so the
page and the command line let you replace them; the defaults are order-of-magnitude figures for a small model of each
category (an 8B chat model, Whisper large, MMS/Bark-class speech, an SDXL-class image model). They keep
throughput >= 3600 / service time: a replica admits at least one request per service time (batching admits more).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MONTH_HOURS = 730  # 365 x 24 / 12: every monthly figure is the horizon's figure scaled to this many hours
HF_DEFAULT_IDLE_MINUTES = 60  # Hugging Face's default scale-to-zero timeout
DEFAULT_COLD_START_SECONDS = 300.0  # "cold start takes minutes" (Hugging Face); measure yours and enter it
DEFAULT_HORIZON_HOURS = 720.0  # 30 days, simulated minute by minute
DEFAULT_TARGET_UTILIZATION = 0.7  # replicas are sized so the peak uses at most this share of their throughput
DEFAULT_MIN_REPLICAS = 1
DEFAULT_MAX_REPLICAS = 8
CAPACITY_WINDOW_MINUTES = 15  # demand is measured (and replicas sized) over blocks of this many minutes
GENERIC_CATEGORY = "chat"  # used when no model is chosen


@dataclass(frozen=True, kw_only=True)
class RequestSize:
    """A typical request, used to turn a per-token, per-character or per-second price into a price per request."""

    input_tokens: int = 900
    output_tokens: int = 350
    characters: int = 400
    seconds: float = 12.0  # seconds of audio in (speech-to-text) or out (per-second text-to-speech)
    images: int = 1


@dataclass(frozen=True, kw_only=True)
class CategoryDefaults:
    service_time_s: float
    p95_slo_s: float
    throughput_per_hour: dict[str, float]  # GPU id -> requests/hour one replica serves at the latency target
    request_size: RequestSize = field(default_factory=RequestSize)


CATEGORY_DEFAULTS: dict[str, CategoryDefaults] = {
    "chat": CategoryDefaults(
        service_time_s=3.0,
        p95_slo_s=10.0,
        throughput_per_hour={"T4": 1800, "L4": 3600, "A10G": 4000, "A100": 12000},
    ),
    "tts": CategoryDefaults(
        service_time_s=1.5,
        p95_slo_s=5.0,
        throughput_per_hour={"T4": 3600, "L4": 7200, "A10G": 8000, "A100": 20000},
    ),
    "speech_to_text": CategoryDefaults(
        service_time_s=3.0,
        p95_slo_s=10.0,
        throughput_per_hour={"T4": 1500, "L4": 3000, "A10G": 3600, "A100": 10000},
        request_size=RequestSize(seconds=45.0),
    ),
    "image": CategoryDefaults(
        service_time_s=10.0,
        p95_slo_s=30.0,
        throughput_per_hour={"T4": 360, "L4": 600, "A10G": 720, "A100": 2000},
    ),
    "music": CategoryDefaults(
        service_time_s=30.0,
        p95_slo_s=120.0,
        throughput_per_hour={"T4": 120, "L4": 240, "A10G": 300, "A100": 900},
    ),
    "voice_clone": CategoryDefaults(
        service_time_s=8.0,
        p95_slo_s=30.0,
        throughput_per_hour={"T4": 450, "L4": 900, "A10G": 1000, "A100": 3000},
    ),
}


def category_defaults(category: str | None) -> CategoryDefaults:
    """The defaults of `category`, or of a generic chat model when it is unknown or not given."""
    return CATEGORY_DEFAULTS.get(category or GENERIC_CATEGORY, CATEGORY_DEFAULTS[GENERIC_CATEGORY])
