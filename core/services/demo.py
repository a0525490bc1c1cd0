"""Demo data: a deterministic history of usage and credits, so every page has something true to show on a fresh
machine (the endpoints' demo is `EndpointService.demo`). Writing it is the system's or an admin's business."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded
from core.demo.history import DemoReport, Progress, write_demo_history

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["DemoReport", "DemoService"]


class DemoService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(Capability.MANAGE_USERS)
    def has_usage(self, caller: Caller) -> bool:
        return self._s.db.usage_count() > 0

    @guarded(Capability.MANAGE_USERS)
    def write_history(
        self,
        caller: Caller,
        *,
        rows: int,
        days: int,
        seed: int,
        replace: bool = False,
        progress: Progress | None = None,
    ) -> DemoReport:
        """Users, usage events and the matching ledger, the same for the same seed (`replace` wipes usage first)."""
        return write_demo_history(self._s.db, rows=rows, days=days, seed=seed, replace=replace, progress=progress)
