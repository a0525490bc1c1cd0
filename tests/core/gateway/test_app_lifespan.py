"""The gateway's lifespan runs the worker's alert timer: a budget threshold passed while the gateway runs is recorded
without `alerts run`, and the timer thread ends when the gateway stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from core.access import SYSTEM
from core.gateway import create_app
from core.services import Services
from tests.conftest import make_runtime
from tests.core.billing.conftest import catalog_model
from tests.core.budgets.conftest import funded, spend_one


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
