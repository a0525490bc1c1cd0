"""Demo data: a deterministic history of usage and credits, with teams and budgets over it, so every page has
something true to show on a fresh machine (the endpoints' demo is `EndpointService.demo`). Writing it is the system's
or an admin's business."""

from __future__ import annotations

import time
from dataclasses import replace as with_fields
from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded
from core.demo.budgets import write_demo_budgets
from core.demo.history import (
    DEMO_MAX_DAYS,
    DEMO_MAX_ROWS,
    DEMO_MAX_SEED,
    DemoReport,
    Progress,
    check_demo_size,
    write_demo_history,
)

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["DEMO_MAX_DAYS", "DEMO_MAX_ROWS", "DEMO_MAX_SEED", "DemoReport", "DemoService", "check_demo_size"]


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
        """Users, usage events and the matching ledger, then two teams and four budgets over them (the Budgets & alerts
        page's demo); the same for the same seed (`replace` wipes usage first)."""
        report = write_demo_history(self._s.db, rows=rows, days=days, seed=seed, replace=replace, progress=progress)
        t0 = time.perf_counter()
        made = write_demo_budgets(self._s.db)
        seconds = report.seconds + time.perf_counter() - t0
        return with_fields(report, teams=made.teams, budgets=made.budgets, seconds=seconds)
