"""Reading budget counters for alerts: the budgets whose spend has passed a threshold not yet alerted on, and marking
a threshold as alerted. One indexed read that returns nothing in the common case (no new threshold), so the check
after every settle costs about as much as the settle's own smallest statement.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from core.alerts.rules import CounterFacts
from core.billing.budget_sql import COVERS
from core.db.models import BudgetPeriod

periods = BudgetPeriod.__table__

# Budgets in force whose current counter is at least one percent past the highest threshold alerted on.
_DUE = (
    "SELECT b.id, b.name, b.scope, b.user_id, b.team_id, t.owner_id, b.credits, b.enforcement, b.thresholds,"
    " p.id, p.spent, p.alerted_pct, p.period_start, p.period_end"
    " FROM budgets b JOIN budget_periods p ON p.budget_id = b.id AND p.period_start <= :now AND p.period_end > :now"
    " LEFT JOIN teams t ON t.id = b.team_id"
    " WHERE p.spent * 100 >= b.credits * (p.alerted_pct + 1) AND {covers}"
)
_DUE_FOR_CALL = _DUE.format(covers=COVERS)
_DUE_ANY = _DUE.format(covers="b.removed_at IS NULL")


class CounterReader:
    """The due-threshold reads, rendered for one database and sent on the driver connection."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        sql = {"call": _DUE_FOR_CALL, "any": _DUE_ANY}
        self.sql = sql if self.sqlite else {k: re.sub(r":(\w+)", r"%(\1)s", v) for k, v in sql.items()}

    def due(
        self, conn: Connection, now: datetime, *, user_id: int | None = None, api_key_id: int | None = None
    ) -> list[CounterFacts]:
        """Budgets past a threshold not alerted on yet: those covering a call of `user_id` (through `api_key_id`),
        or every budget when `user_id` is None."""
        stamp = now.isoformat(sep=" ", timespec="microseconds") if self.sqlite else now
        params: dict[str, Any] = {"now": stamp}
        which = "any"
        if user_id is not None:
            params |= {"uid": user_id, "api_key_id": api_key_id}
            which = "call"
        rows = conn.connection.driver_connection.execute(self.sql[which], params).fetchall()
        return [_facts(r) for r in rows]


def _facts(r: Any) -> CounterFacts:
    thresholds = json.loads(r[8]) if isinstance(r[8], str) else r[8]
    start, end = r[12], r[13]
    return CounterFacts(
        budget_id=r[0],
        name=r[1],
        scope=r[2],
        user_id=r[3],
        team_id=r[4],
        team_owner_id=r[5],
        credits=int(r[6]),
        enforcement=r[7],
        thresholds=tuple(int(t) for t in thresholds or ()),
        counter_id=r[9],
        spent=int(r[10]),
        alerted_pct=int(r[11]),
        period_start=datetime.fromisoformat(start) if isinstance(start, str) else start,
        period_end=datetime.fromisoformat(end) if isinstance(end, str) else end,
    )


def mark_alerted(conn: Connection, counter_id: int, pct: int) -> None:
    """Remember the highest threshold alerted on this period (never lowers it)."""
    conn.execute(update(periods).where(periods.c.id == counter_id, periods.c.alerted_pct < pct).values(alerted_pct=pct))
