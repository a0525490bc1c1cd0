"""Check what an upstream says a call consumed against what the request allowed, before it is priced.

The hold was the most the request could cost (`estimate_max_usage`): max_tokens of output, the prompt's tokens by
the counting rule, the characters sent (by the provider's counting rule), the images asked for, the seconds of the
uploaded audio. An upstream's own report is trusted up to those limits and no further:

- a figure above its limit is capped at the limit and the call is flagged `usage_disputed` (metadata names each
  figure, what was reported and what was billed), so finance can take it up with the provider;
- a reply that states nothing in the unit the model is billed in (a per-second transcription answered with token
  usage, a TTS reply without characters) is billed at the limit, flagged `usage_estimated`: never a $0 success.

Only limits the request really enforces are applied: output tokens for chat (max_tokens is sent upstream), characters
for character-priced speech, images, and the seconds of uploaded audio (rounded up to whole seconds: upstreams bill
whole seconds). Prompt tokens are not capped: providers add tokens the request cannot see (tool definitions, chat
templates, server tools), so a prompt above the hold's bound is billed as reported and flagged `overage` by the
ledger. Seconds measured by this engine from returned audio are not an upstream's claim and are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from core.catalog.types import ModelPrice
from core.usage import UNREADABLE, Usage

# The quantity each cost unit is billed in (uptime bills nothing per call; request defaults to 1).
BILLED_QUANTITY = {"token": ("input_tokens", "output_tokens"), "second": ("seconds",), "character": ("characters",)}
BILLED_QUANTITY["image"] = ("images",)


@dataclass(frozen=True, kw_only=True)
class Reconciled:
    usage: Usage
    disputed: dict[str, dict[str, Any]] = field(default_factory=dict)  # figure -> {"reported", "billed"}
    estimated_reason: str | None = None

    def metadata(self) -> dict[str, Any]:
        """What the usage row records about the check (nothing when the report was within limits)."""
        meta: dict[str, Any] = {}
        if self.disputed:
            meta["usage_disputed"] = self.disputed
        if self.estimated_reason:
            meta["usage_estimated"] = self.estimated_reason
        return meta


def enforced_limits(model: ModelPrice, bound: Usage) -> dict[str, int | Decimal]:
    """The billed figures of `bound` the request enforces upstream, by the model's category and cost unit."""
    unit, category = model.cost_unit, model.category
    if unit == "token" and category == "chat":
        return {"output_tokens": bound.output_tokens}
    if unit == "character" and category == "tts":
        return {"characters": bound.characters}
    if unit == "image":
        return {"images": bound.images}
    if unit == "second" and category in ("speech_to_text", "voice_clone"):
        return {"seconds": Decimal(math.ceil(bound.seconds))}
    return {}


def reconcile_usage(model: ModelPrice, reported: Usage, bound: Usage) -> Reconciled:
    """`reported` capped at the limits of `bound` the request enforces, with its missing billed quantity filled."""
    usage, disputed = reported, {}
    for name, limit in enforced_limits(model, bound).items():
        value = getattr(usage, name)
        if value > limit:
            disputed[name] = {"reported": _plain(value), "billed": _plain(limit)}
            usage = replace(usage, **{name: limit})
    reason = None
    wanted = BILLED_QUANTITY.get(model.cost_unit, ())
    if wanted and not any(getattr(usage, name) for name in wanted):
        stated = ", ".join(n for n in ("input_tokens", "output_tokens", "characters", "seconds") if getattr(usage, n))
        reason = (
            f"the reply stated no {model.cost_unit} usage"
            + (f" (only {stated})" if stated else "")
            + "; billed the most the request could use"
        )
        if reported.extra.get(UNREADABLE):
            reason = f"{reported.extra[UNREADABLE]} ({reason})"
        usage = replace(usage, **{name: getattr(bound, name) for name in wanted}, estimated=True)
    return Reconciled(usage=usage, disputed=disputed, estimated_reason=reason)


def _plain(value: int | Decimal) -> int | str:
    return value if isinstance(value, int) else format(value, "f")
