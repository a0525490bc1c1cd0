"""One colour per provider and per model family on every chart of every page: pass `provider_colors()` or
`model_colors(models)` as plotly's `color_discrete_map`."""

from __future__ import annotations

from collections.abc import Iterable

PROVIDER_COLORS: dict[str, str] = {
    "openai": "#10a37f",
    "anthropic": "#d97757",
    "minimax": "#e5484d",
    "huggingface": "#f5b800",
    "huggingface_endpoint": "#b7791f",
    "together_ai": "#0f6fff",
    "sandbox": "#8b8d98",
}
OTHER = "#6e56cf"
# money measures drawn as series (the Overview's and the Spend page's lines): the same colour on every chart
MEASURE_COLORS: dict[str, str] = {
    "revenue": "#3e63dd",
    "spent": "#3e63dd",
    "provider cost": "#8b8d98",
    "margin": "#12a594",
    "rounding uplift": "#f76b15",
}

# A model's family: the first words of its id that name the family, and the family's colour.
FAMILY_COLORS: tuple[tuple[str, str], ...] = (
    ("gpt-4o-mini", "#5ec8a8"),
    ("gpt-4o", "#10a37f"),
    ("gpt-4", "#0b7a5f"),
    ("o1", "#2f855a"),
    ("o3", "#2f855a"),
    ("o4", "#2f855a"),
    ("whisper", "#38a169"),
    ("tts", "#68d391"),
    ("dall-e", "#9ae6b4"),
    ("gpt-image", "#9ae6b4"),
    ("text-embedding", "#276749"),
    ("claude-3-5-haiku", "#f0a487"),
    ("claude-haiku", "#f0a487"),
    ("claude", "#d97757"),
    ("minimax", "#e5484d"),
    ("speech", "#f28b8e"),
    ("abab", "#e5484d"),
    ("meta-llama", "#0f6fff"),
    ("llama", "#0f6fff"),
    ("mistral", "#ff7000"),
    ("qwen", "#7c3aed"),
    ("deepseek", "#4d6bfe"),
    ("google", "#4285f4"),
    ("sandbox", "#8b8d98"),
)
_PALETTE = ("#6e56cf", "#0091ff", "#e93d82", "#12a594", "#f76b15", "#ad7f58", "#3e63dd", "#8e4ec6")


def provider_colors() -> dict[str, str]:
    return dict(PROVIDER_COLORS)


def model_color(model: str) -> str:
    """The colour of a model's family; models of no known family get a stable colour from a small palette."""
    whole = model.lower()
    tail = whole.split("/")[-1]  # "Qwen/Qwen2.5-7B" is of family "qwen" by its repository or its name
    for prefix, color in FAMILY_COLORS:
        if whole.startswith(prefix) or tail.startswith(prefix):
            return color
    return _PALETTE[sum(map(ord, model)) % len(_PALETTE)]


def model_colors(models: Iterable[str]) -> dict[str, str]:
    return {m: model_color(str(m)) for m in models}


def series_colors(names: Iterable[str]) -> dict[str, str]:
    """Colours for a chart's series that may be providers, money measures, models or anything else ("other")."""
    out: dict[str, str] = {}
    for n in names:
        key = str(n)
        out[key] = (
            PROVIDER_COLORS.get(key)
            or MEASURE_COLORS.get(key)
            or (OTHER if key.lower() == "other" else model_color(key))
        )
    return out
