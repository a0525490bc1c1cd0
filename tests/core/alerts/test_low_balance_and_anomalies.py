"""Low-balance alerts (under N credits, crossed by a settle; under D days of runway at the forecast burn of a
synthetic history, by `alerts run`), re-armed by a top-up and shown as a banner only while still low; and the spend
anomaly rule on the real analytics store. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from core.alerts import AlertHook, AlertLog, AlertRunner
from core.billing import BillingService
from core.catalog import ModelPrice
from core.db import Database
from tests.core.alerts.conftest import DAY, anomaly_message, spend_spike
from tests.core.budgets.conftest import funded, spend_one
from tests.support.analytics import spend_queries


def debit(billing: BillingService, user_id: int, credits: int, key: str) -> None:
    """A direct usage debit of exactly `credits` (0% markup: $0.04 a credit)."""
    billing.charge(user_id, Decimal("0.04") * credits, markup_pct=0, idempotency_key=key, description="burn")


def test_a_settle_that_crosses_the_low_balance_mark_alerts_once_per_funding(
    runtime: Database, billing: BillingService, hook: AlertHook, log: AlertLog, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com", credits=102)  # LOW_BALANCE_CREDITS is 100 by default

    def call(key: str) -> list[int]:
        st = spend_one(billing, gpt4o, ana, key)
        return hook.after_settle(ana.id, charged=st.credits_charged, balance_after=st.balance_after)

    assert call("c1") == []  # 101
    assert call("c2") == []  # 100: not under it
    assert len(call("c3")) == 1  # 99: crossed
    assert call("c4") == []  # still low: once per funding
    (alert,) = log.list_alerts()
    assert alert.message == (
        "ana@example.com has 99 credits left, under the low-balance mark of 100; ask finance for a top-up."
    )
    assert [b.id for b in log.banners(ana.id)] == [alert.id]
    billing.grant(ana, 50, kind="topup")  # 148: the banner goes, and the alert is armed again
    assert log.banners(ana.id) == []
    debit(billing, ana.id, 47, "d1")  # 101
    assert call("c5") == []  # 100
    assert len(call("c6")) == 1 and len(log.list_alerts()) == 2


def test_runway_alert_at_the_forecast_burn_of_a_synthetic_history(
    runtime: Database,
    billing: BillingService,
    runner: AlertRunner,
    log: AlertLog,
    set_clock: Callable[[datetime], None],
) -> None:
    start = datetime(2026, 11, 1, 12, 0)
    set_clock(start)
    ana = funded(runtime, billing, "ana@example.com", credits=3_050)
    ben = funded(runtime, billing, "ben@example.com", credits=100_000)  # the same burn, months of runway
    for day in range(28):
        set_clock(start + day * DAY)
        debit(billing, ana.id, 100, f"a{day}")
        debit(billing, ben.id, 100, f"b{day}")
    now = start + 28 * DAY  # 250 credits left at 100 a day: 2.5 days, under the 3 days wanted
    set_clock(now)
    report = runner.run(now)
    (alert,) = [a for a in report.alerts if a["kind"] == "low_balance"]
    assert alert["message"].startswith("ana@example.com has about 2.5 days of credits left (250 available at the ")
    assert "forecast burn of 100 credits a day" in alert["message"]
    assert runner.run(now).alerts == []
    billing.grant(ana, 1_000, kind="topup")  # 12.5 days: fine
    assert runner.run(now).alerts == []
    set_clock(now + timedelta(hours=1))
    debit(billing, ana.id, 1_010, "big")  # 240 left: short again, and the top-up re-armed the alert
    assert [a["kind"] for a in runner.run(now + timedelta(hours=1)).alerts] == ["low_balance"]
    assert len(log.list_alerts(kinds=("low_balance",))) == 2
    # one banner, the latest figure: the two alerts stacked, saying 250 and 240 available
    (banner,) = log.banners(ana.id, now + timedelta(hours=1))
    assert "240 available" in banner.message


def test_a_spend_anomaly_from_the_analytics_store_alerts_once(
    runtime: Database, billing: BillingService, gpt4o: ModelPrice, set_clock: Callable[[datetime], None]
) -> None:
    ana, today = spend_spike(runtime, billing, gpt4o, set_clock)
    queries = spend_queries(runtime, sync_if_older_than=0)
    runner = AlertRunner(runtime.session_factory, runtime.settings, billing, spend_queries=queries)
    first = runner.run(today + timedelta(hours=1))
    anomalies = [a for a in first.alerts if a["kind"] == "anomaly"]
    assert [a["message"] for a in anomalies] == [anomaly_message(today)]
    assert [a for a in runner.run(today + timedelta(hours=2)).alerts if a["kind"] == "anomaly"] == []
    log = AlertLog(runtime.session_factory, runtime.settings)
    assert log.banners(ana.id) == [] or all(b.kind != "anomaly" for b in log.banners(ana.id))  # finance's, not hers
