"""The audit log reads newest first by when each entry happened, whatever order the entries were recorded in."""

from __future__ import annotations

from datetime import datetime

from core.billing.accounts import audit_entries
from core.db import Database
from core.db.models import AuditLog


def test_entries_recorded_late_with_earlier_times_sit_at_their_time(runtime: Database) -> None:
    with runtime.session() as s:  # as the demo does: today's grant, then an endpoint history of three days ago
        s.add(AuditLog(at=datetime(2026, 12, 7, 18, 57), actor="a", action="credits.grant", target="x", details={}))
        s.add(AuditLog(at=datetime(2026, 12, 4, 8, 0), actor="a", action="endpoint.create", target="e", details={}))
        s.add(AuditLog(at=datetime(2026, 12, 7, 19, 12), actor="a", action="credits.refund", target="x", details={}))
    with runtime.session() as s:
        shown = [(e.at, e.action) for e in audit_entries(s)]
    assert shown == sorted(shown, reverse=True)
    assert [a for _, a in shown] == ["credits.refund", "credits.grant", "endpoint.create"]
