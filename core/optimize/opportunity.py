"""One saving Optimize found: what to do, what it saves a month, and the figures that show it.

Kinds: `dedicated` (a serverless model onto a dedicated GPU), `endpoint` (a dedicated endpoint onto serverless,
smaller hardware or a shorter idle timeout), `cache` (repeated identical requests) and `substitution` (a cheaper model
of the same category already carrying most of someone's or a team's traffic: a hint, since quality is not measured
here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    DEDICATED = "dedicated"
    ENDPOINT = "endpoint"
    CACHE = "cache"
    SUBSTITUTION = "substitution"


@dataclass(frozen=True, kw_only=True)
class EndpointForm:
    """What the Endpoints page's create form should be filled with to act on an opportunity."""

    name: str
    model_repo: str
    hardware: str
    min_replicas: int
    max_replicas: int
    scale_to_zero_minutes: int | None  # None: always on

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_repo": self.model_repo,
            "hardware": self.hardware,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "scale_to_zero_minutes": self.scale_to_zero_minutes,
        }


@dataclass(frozen=True, kw_only=True)
class Opportunity:
    kind: Kind
    subject: str  # the model, endpoint or user it is about
    action: str  # one line a person can act on
    monthly_saving_usd: Decimal  # at the period's traffic, scaled to 730 hours, to the cent
    evidence: dict[str, Any] = field(default_factory=dict)  # the figures behind it, JSON-ready, in display order
    hint: bool = False  # a suggestion whose other side (quality) is not measured
    endpoint_form: EndpointForm | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "action": self.action,
            "monthly_saving_usd": f"{self.monthly_saving_usd:.2f}",
            "hint": self.hint,
            "evidence": self.evidence,
            "endpoint_form": None if self.endpoint_form is None else self.endpoint_form.to_dict(),
        }
