"""Endpoint uptime is spend on the hours it covers: three days metered at once are three days of spend, not one."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.billing import BillingService
from core.db import Database
from core.db.models import utcnow
from core.users import add_user
from tests.support.analytics import spend_queries


def test_uptime_debits_are_dated_by_the_hour_they_cover(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    with rt.session() as s:
        owner = add_user(s, email="eng@example.com", name="Eng", role="engineer", markup_pct=Decimal(100))
    billing = BillingService(rt.session_factory, rt.settings)
    billing.grant(owner.id, 1000)
    today = utcnow().replace(hour=10, minute=0, second=0, microsecond=0)
    for days_ago in (3, 2, 1):  # what `endpoints meter` posts after three days without a run, all at once now
        start = today - timedelta(days=days_ago)
        billing.charge(
            owner.id,
            Decimal("0.60"),
            idempotency_key=f"uptime:1:{start:%Y-%m-%dT%H:%M}",
            description="Endpoint demo (T4) uptime",
            metadata={
                "endpoint_id": 1,
                "endpoint_name": "demo",
                "model_repo": "facebook/mms-tts-eng",
                "from": start.isoformat(),
                "to": (start + timedelta(hours=1)).isoformat(),
                "base_cost_usd": "0.60",
            },
            kind="endpoint_uptime",
            allow_overdraft=True,
        )
    q = spend_queries(rt, sync_if_older_than=0)
    days = q.series("day").records()
    first = next(iter(days[0]))  # the period column
    by_day = {r[first]: r["credits"] for r in days if r["credits"]}
    # before: one day (today) with 90 credits, shown as an anomaly
    assert sorted(str(k)[:10] for k in by_day) == [f"{today - timedelta(days=d):%Y-%m-%d}" for d in (3, 2, 1)]
    assert set(by_day.values()) == {30}
