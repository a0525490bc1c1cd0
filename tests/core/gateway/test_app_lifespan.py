"""The gateway's lifespan runs the worker's alert timer: a budget threshold passed while the gateway runs is recorded
without `alerts run`, and the timer thread ends when the gateway stops; the spend anomalies are not the worker's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from core.access import SYSTEM
from core.gateway import create_app
from core.services import Services
from tests.conftest import make_runtime
from tests.core.alerts.conftest import anomaly_message, spend_spike
from tests.core.billing.conftest import catalog_model
from tests.core.budgets.conftest import funded, set_clock, spend_one  # noqa: F401 - set_clock: the shared fixture


def timers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "alert-timer"}


def test_the_gateway_evaluates_alerts_on_a_timer_and_stops_it_on_shutdown(tmp_path: Path) -> None:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, alerts_every_seconds=1)
    svc = Services(rt)
    gpt4o = catalog_model(rt, "gpt-4o")
    ana = funded(rt, svc.billing, "ana@example.com")
    svc.budgets.set_budget(SYSTEM, user=ana.id, credits=10, enforcement="soft")
    before = timers()
    with TestClient(create_app(svc)) as client:
        mine = timers() - before
        assert len(mine) == 1 and svc.auto_alerts.running
        for n in range(5):  # 50%, billed without the after-settle check: only the timer can see it
            spend_one(svc.billing, gpt4o, ana, f"c{n}")
        deadline = time.monotonic() + 30
        while not svc.budgets.alerts(SYSTEM) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.threshold_pct for a in svc.budgets.alerts(SYSTEM)] == [50]
        assert client.get("/v1/models").status_code == 401  # the gateway answers meanwhile
    assert not svc.auto_alerts.running and not any(t.is_alive() for t in mine)
    svc.close()


def test_the_gateways_timer_leaves_spend_anomalies_to_the_app(
    tmp_path: Path,
    set_clock: Callable[[datetime], None],  # noqa: F811 - the fixture imported above
) -> None:
    """A worker never syncs nor opens the DuckDB analytics copy: its timer records the budget threshold, not the spend
    anomaly in the same data, which the app's timer (anomalies on) then finds."""
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, alerts_every_seconds=1)
    svc = Services(rt)
    gpt4o = catalog_model(rt, "gpt-4o")
    ana, today = spend_spike(rt, svc.billing, gpt4o, set_clock)
    svc.budgets.set_budget(SYSTEM, user=ana.id, credits=60, enforcement="soft", thresholds=[50])  # $10 of it today
    with TestClient(create_app(svc)):
        assert not svc.auto_alerts.checks_anomalies
        deadline = time.monotonic() + 30
        while not svc.budgets.alerts(SYSTEM) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.kind for a in svc.budgets.alerts(SYSTEM)] == ["threshold"]
    assert not svc.analytics.store.exists()
    report = svc.auto_alerts.evaluate_if_due(anomalies=True)  # the app's timer, over the same data
    assert report is not None and [a["message"] for a in report.alerts] == [anomaly_message(today)]
    svc.close()
