"""Hardware has two names: the catalog's short id (T4, L4, A10G, A100) and Hugging Face's instance type (nvidia-t4,
nvidia-l4, nvidia-a10g, nvidia-a100), which the management API and the specification write (`hardware_type=
"nvidia-t4"`). Every place that takes hardware accepts either, in any case, and resolves it to the catalog's row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class NamedHardware(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def instance_type(self) -> str: ...


H = TypeVar("H", bound=NamedHardware)


def match_hardware(name: str, catalog: Iterable[H]) -> H | None:
    """The catalog entry whose id or instance type is `name` (case and surrounding spaces ignored), else None."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if not key:
        return None
    for hw in catalog:
        if key in (hw.id.lower(), hw.instance_type.lower()):
            return hw
    return None


def hardware_label(hw: NamedHardware) -> str:
    """Both names, the way pages and the command line show a choice: "T4 (nvidia-t4)"."""
    return f"{hw.id} ({hw.instance_type})"


def hardware_choices(catalog: Iterable[NamedHardware]) -> str:
    """Every choice with both names, for an error message: "T4 (nvidia-t4), L4 (nvidia-l4), ..."."""
    return ", ".join(hardware_label(hw) for hw in catalog)
