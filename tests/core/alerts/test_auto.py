"""Alerts that evaluate on their own (core/alerts/auto.py), on SQLite and PostgreSQL: the Budgets page's, the banners'
and the Overview's services fire a threshold nobody ran `alerts run` for (at most once per interval per process), the
timer evaluates, delivers by webhook and stops, two evaluators at the same moment record and deliver each alert once,
and a webhook that is down or an evaluation that fails leaves the timer running, logged in one line without secrets.
Spend anomalies: the app's timer records one nobody ran `alerts run` for, once, at most one check per interval, while
a page's evaluation neither checks them nor opens the analytics copy; a failing sync is one line and budgets go on."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.access import SYSTEM, Principal
from core.alerts import AlertLog, AlertRunner, NewAlert, WebhookRegistry
from core.alerts.auto import AutoAlerts
from core.analytics import AnalyticsCopy
from core.billing import BillingService
from core.budgets import BudgetBook
from core.catalog import ModelPrice
from core.config import ConfigError, Secret, load_settings
from core.db import Database
from core.db.models import Alert, AlertNotification, utcnow
from core.services import Services
from core.users import UserView
from tests.conftest import services_of
from tests.core.alerts.conftest import anomaly_message, spend_spike
from tests.core.budgets.conftest import funded, spend_one
from tests.support.analytics import copy_of

HOOK_URL = "https://hooks.example.com/services/T000/B000/token-in-path-0123456789"
TIMER = "alert-timer"


@dataclass
class Hooks:
    """The webhook receiver behind an httpx.MockTransport: each POST gets the next scripted answer (a status, or an
    exception to raise: the receiver is down), then 200; every payload is kept."""

    answers: list[int | Exception] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.posts.append(json.loads(request.content))
            answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="ok")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def keys(self) -> list[str]:
        with self.lock:
            return sorted(p["key"] for p in self.posts)


def eventually(done: Callable[[], bool], within: float = 30.0) -> bool:
    """Poll until `done()`: the timer works on its own thread."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.02)
    return done()


def thresholds(rt: Database) -> list[int]:
    return sorted(a.threshold_pct or 0 for a in AlertLog(rt.session_factory, rt.settings).list_alerts())


def passed(rt: Database, billing: BillingService, model: ModelPrice, spent: int, limit: int = 10) -> UserView:
    """A person who spent `spent` one-credit calls (no alert check after them), then given a soft budget of `limit`
    credits: what finance does when it sets a budget on someone already past its 50% or 80%."""
    ana = funded(rt, billing, "ana@example.com")
    for n in range(spent):
        spend_one(billing, model, ana, f"before-{n}")
    BudgetBook(rt.session_factory, rt.settings).set(user=ana.id, credits=limit, enforcement="soft")
    return ana


def timers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == TIMER}


@pytest.fixture
def svc(runtime: Database) -> Iterator[Services]:
    built = services_of(runtime)
    yield built
    built.close()


def test_the_budgets_page_fires_a_threshold_passed_without_alerts_run(
    runtime: Database, svc: Services, gpt4o: ModelPrice
) -> None:
    ana = passed(runtime, svc.billing, gpt4o, spent=8)
    assert thresholds(runtime) == []

    page = svc.budgets.page(SYSTEM)
    assert [a.threshold_pct for a in page.alerts] == [80]  # 50% and 80% passed at once: one alert says both
    assert "8 of 10 credits spent (passing 50% and 80% at once)" in page.alerts[0].message

    for n in range(2):  # 100% now; the page read again within the interval does not evaluate again
        spend_one(svc.billing, gpt4o, ana, f"after-{n}")
    assert [a.threshold_pct for a in svc.budgets.page(SYSTEM).alerts] == [80]


def test_the_banners_every_page_shows_fire_a_threshold_without_alerts_run(
    runtime: Database, svc: Services, gpt4o: ModelPrice
) -> None:
    ana = passed(runtime, svc.billing, gpt4o, spent=5)
    (banner,) = svc.budgets.banners(Principal.of(ana))
    assert banner.kind == "threshold" and banner.threshold_pct == 50 and "5 of 10 credits spent" in banner.message


def test_the_overview_fires_a_threshold_without_alerts_run(sqlite_runtime: Database, gpt4o: ModelPrice) -> None:
    svc = services_of(sqlite_runtime)
    passed(sqlite_runtime, svc.billing, gpt4o, spent=8)
    svc.overview.overview(SYSTEM, sync_if_older_than=0)
    assert thresholds(sqlite_runtime) == [80]
    svc.close()


def test_an_evaluation_runs_at_most_once_per_interval(runtime: Database, gpt4o: ModelPrice) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    now = [1000.0]
    auto = AutoAlerts(runtime.session_factory, runtime.settings, billing, every_seconds=60, clock=lambda: now[0])
    ana = passed(runtime, billing, gpt4o, spent=5)
    first = auto.evaluate_if_due()
    assert first is not None and [a["kind"] for a in first.alerts] == ["threshold"]
    for n in range(3):
        spend_one(billing, gpt4o, ana, f"after-{n}")
    now[0] += 59.5
    assert auto.evaluate_if_due() is None and thresholds(runtime) == [50]
    now[0] += 0.5
    assert auto.evaluate_if_due() is not None and thresholds(runtime) == [50, 80]


def test_alerts_every_seconds_is_read_and_zero_turns_the_evaluation_off(
    tmp_path: Path, runtime: Database, gpt4o: ModelPrice
) -> None:
    no_file = tmp_path / "none.toml"
    assert load_settings({}, no_file).alerts_every_seconds == 60
    assert load_settings({"ALERTS_EVERY_SECONDS": "15"}, no_file).alerts_every_seconds == 15
    for bad in ("-1", "1.5", "a minute", "86401"):
        with pytest.raises(ConfigError, match="ALERTS_EVERY_SECONDS"):
            load_settings({"ALERTS_EVERY_SECONDS": bad}, no_file)

    billing = BillingService(runtime.session_factory, runtime.settings)
    off = AutoAlerts(runtime.session_factory, runtime.settings, billing, every_seconds=0)
    passed(runtime, billing, gpt4o, spent=5)
    assert off.start() is False and not off.running
    assert off.evaluate_if_due() is None and thresholds(runtime) == []


def test_the_timer_evaluates_delivers_and_stops(runtime: Database, gpt4o: ModelPrice) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    hooks = Hooks()
    WebhookRegistry(runtime.session_factory).add("finance", HOOK_URL)
    auto = AutoAlerts(runtime.session_factory, runtime.settings, billing, every_seconds=0.05, http=hooks.client())
    ana = passed(runtime, billing, gpt4o, spent=5)
    before = timers()
    assert auto.start() and auto.running
    mine = timers() - before
    assert len(mine) == 1
    assert eventually(lambda: len(hooks.posts) == 1)
    assert thresholds(runtime) == [50] and hooks.posts[0]["threshold_pct"] == 50

    for n in range(3):  # 80%: the next turn fires and delivers it
        spend_one(billing, gpt4o, ana, f"after-{n}")
    assert eventually(lambda: len(hooks.posts) == 2)
    assert [p["threshold_pct"] for p in hooks.posts] == [50, 80]

    auto.stop()
    assert not auto.running and not any(t.is_alive() for t in mine)
    for n in range(2):  # 100%, after the stop: nothing evaluates it any more
        spend_one(billing, gpt4o, ana, f"stopped-{n}")
    time.sleep(0.5)  # ten intervals
    assert thresholds(runtime) == [50, 80] and len(hooks.posts) == 2


def test_a_webhook_down_and_a_failed_evaluation_leave_the_timer_running(
    runtime: Database, gpt4o: ModelPrice, caplog: pytest.LogCaptureFixture
) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    down = httpx.ConnectError("connection refused")
    hooks = Hooks(answers=[down, down, down])  # the first alert's three attempts: requeued for a later turn
    WebhookRegistry(runtime.session_factory).add("finance", HOOK_URL)
    auto = AutoAlerts(runtime.session_factory, runtime.settings, billing, every_seconds=0.05, http=hooks.client())
    ana = passed(runtime, billing, gpt4o, spent=5)
    auto.start()

    def requeued() -> bool:
        with runtime.session() as s:
            note = s.scalars(select(AlertNotification)).one_or_none()
            return note is not None and note.status == "pending" and "ConnectError" in (note.last_error or "")

    assert eventually(requeued) and len(hooks.posts) == 3

    secret = Secret("db-password-0123456789")  # registered: redacted wherever it would show
    run = auto._runner.run
    failures = [RuntimeError(f"server closed the connection (password={secret.get()})\nat line 2")]

    def hiccup(now: Any = None) -> Any:
        if failures:
            raise failures.pop()
        return run(now)

    auto._runner.run = hiccup  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="core.alerts.auto"):
        for n in range(3):  # 80%: caught by a turn after the failed one
            spend_one(billing, gpt4o, ana, f"after-{n}")
        assert eventually(lambda: thresholds(runtime) == [50, 80])
    assert auto.running
    (line,) = [r for r in caplog.records if r.name == "core.alerts.auto"]
    text = line.getMessage()
    assert text.startswith("alerts were not evaluated (RuntimeError: server closed the connection (password=")
    assert "line 2" not in text and secret.get() not in text and line.exc_info is None
    auto.stop()

    with runtime.session() as s:  # the webhook came back: the new alert went out; the first waits for its retry
        sent = {n.alert_id: n.status for n in s.scalars(select(AlertNotification))}
    assert sorted(sent.values()) == ["delivered", "pending"]
    AutoAlerts(runtime.session_factory, runtime.settings, billing, http=hooks.client())._delivery.deliver_pending(
        utcnow() + timedelta(minutes=2)
    )
    assert hooks.keys().count(hooks.posts[0]["key"]) == 4  # three refused, then delivered


def test_two_evaluators_at_the_same_moment_record_and_deliver_each_alert_once(
    runtime: Database, gpt4o: ModelPrice, monkeypatch: pytest.MonkeyPatch
) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    hooks = Hooks()
    WebhookRegistry(runtime.session_factory).add("finance", HOOK_URL)
    passed(runtime, billing, gpt4o, spent=8)
    both_read = threading.Barrier(2, timeout=30)
    unrecorded = AlertRunner._not_yet_recorded

    def read_then_wait(self: AlertRunner, found: list[NewAlert]) -> list[NewAlert]:
        new = unrecorded(self, found)
        both_read.wait()  # both found the 80% alert new before either records it: two gateway workers, one moment
        return new

    monkeypatch.setattr(AlertRunner, "_not_yet_recorded", read_then_wait)
    evaluators = [
        AutoAlerts(runtime.session_factory, runtime.settings, billing, every_seconds=60, http=hooks.client())
        for _ in range(2)
    ]
    reports: list[Any] = [None, None]

    def evaluate(i: int) -> None:
        reports[i] = evaluators[i].evaluate_if_due(deliver=True)

    threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in reports)  # neither failed
    recorded = [a["key"] for r in reports for a in r.alerts]
    assert len(recorded) == 1  # recorded by one of them
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        assert s.scalar(select(func.count()).select_from(AlertNotification)) == 1
    assert hooks.keys() == sorted(recorded)  # and delivered once


# ---- spend anomalies: the app's timer checks them, on their own clock; never a page, never a gateway worker ----------
def app_evaluator(rt: Database, billing: BillingService, spend_queries: Callable[[], Any], **kw: Any) -> AutoAlerts:
    """An evaluator that checks anomalies as the app's: read from `spend_queries` (a copy's `background_queries`)."""
    return AutoAlerts(rt.session_factory, rt.settings, billing, spend_queries=spend_queries, **kw)


def anomalies_recorded(rt: Database) -> list[str]:
    return [a.message for a in AlertLog(rt.session_factory, rt.settings).list_alerts(kinds=("anomaly",))]


def test_the_apps_timer_records_a_spend_anomaly_that_no_page_checks(
    runtime: Database, svc: Services, gpt4o: ModelPrice, set_clock: Callable[[datetime], None]
) -> None:
    _, today = spend_spike(runtime, svc.billing, gpt4o, set_clock)
    svc.budgets.page(SYSTEM)  # a page's evaluation: budgets only, and it does not touch the analytics copy
    assert anomalies_recorded(runtime) == [] and not svc.analytics.store.exists()

    # what the app's timer does each turn (`start(anomalies=True)`): the page just took the budgets' turn, yet the
    # anomalies, on their own clock, are due; the copy is synced (it was missing) and the anomaly recorded
    report = svc.auto_alerts.evaluate_if_due(deliver=True, anomalies=True)
    assert report is not None and [a["kind"] for a in report.alerts] == ["anomaly"] and report.notes == []
    assert anomalies_recorded(runtime) == [anomaly_message(today)] and svc.analytics.store.exists()


def test_a_spend_anomaly_is_recorded_once_and_checked_at_most_once_per_interval(
    runtime: Database, billing: BillingService, gpt4o: ModelPrice, set_clock: Callable[[datetime], None]
) -> None:
    ana, today = spend_spike(runtime, billing, gpt4o, set_clock)
    copy = copy_of(runtime)
    synced: list[str] = []

    def spend_queries() -> Any:  # the container's, noting the version it answers from
        q = copy.background_queries()
        synced.append(copy.store.version_key())
        return q

    now = [1000.0]
    auto = app_evaluator(runtime, billing, spend_queries, every_seconds=60, clock=lambda: now[0])
    first = auto.evaluate_if_due(anomalies=True)
    assert first is not None and [a["message"] for a in first.alerts] == [anomaly_message(today)]
    now[0] += 59.5
    assert auto.evaluate_if_due(anomalies=True) is None and len(synced) == 1  # not due: not even read
    spend_one(billing, gpt4o, ana, "one-more")  # a call this process billed: a page would sync for it at once
    copy.written()
    now[0] += 0.5
    second = auto.evaluate_if_due(anomalies=True)
    assert second is not None and second.alerts == [] and len(synced) == 2  # checked again, nothing new
    assert synced[0] == synced[1]  # the copy, under five minutes old, was not synced again for the check
    copy.queries()  # while the next figure a page shows still syncs for it
    assert copy.store.version_key() != synced[0]
    assert anomalies_recorded(runtime) == [anomaly_message(today)]


def test_a_failing_analytics_sync_is_logged_in_one_line_and_the_budget_alerts_go_on(
    runtime: Database,
    billing: BillingService,
    gpt4o: ModelPrice,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the analytics store's folder should be")
    copy = AnalyticsCopy(runtime.engine, replace(runtime.settings, analytics_path=blocked / "analytics.duckdb"))
    auto = app_evaluator(runtime, billing, copy.background_queries, every_seconds=60)
    passed(runtime, billing, gpt4o, spent=5)
    with caplog.at_level(logging.WARNING, logger="core.alerts.auto"):
        report = auto.evaluate_if_due(deliver=True, anomalies=True)  # does not raise
    assert report is not None and [a["kind"] for a in report.alerts] == ["threshold"]  # the budget alert went on
    (line,) = [r for r in caplog.records if r.name == "core.alerts.auto"]
    text = line.getMessage()
    assert text.startswith("spend anomalies were not checked (") and text.endswith("trying again in 60 s")
    assert "\n" not in text and line.exc_info is None
    assert report.notes == [f"spend anomalies not checked: {text.split('(', 1)[1].rsplit(');', 1)[0]}"]
    assert thresholds(runtime) == [50]


def test_the_timer_started_with_anomalies_delivers_one(
    runtime: Database, billing: BillingService, gpt4o: ModelPrice, set_clock: Callable[[datetime], None]
) -> None:
    _, today = spend_spike(runtime, billing, gpt4o, set_clock)
    hooks = Hooks()
    WebhookRegistry(runtime.session_factory).add("finance", HOOK_URL)
    copy = copy_of(runtime)
    auto = app_evaluator(runtime, billing, copy.background_queries, every_seconds=0.05, http=hooks.client())
    with pytest.raises(ValueError, match="spend_queries"):
        AutoAlerts(runtime.session_factory, runtime.settings, billing).start(anomalies=True)
    assert auto.start(anomalies=True) and auto.checks_anomalies
    try:
        assert eventually(lambda: len(hooks.posts) == 1)
    finally:
        auto.stop()
    assert hooks.posts[0]["kind"] == "anomaly" and hooks.posts[0]["message"] == anomaly_message(today)
    assert anomalies_recorded(runtime) == [anomaly_message(today)]


def test_a_long_sync_elsewhere_does_not_hold_up_the_timer(
    runtime: Database,
    billing: BillingService,
    gpt4o: ModelPrice,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process syncing the analytics copy (here: its lock held) makes the anomaly check wait a few seconds at
    most, then give up until its next turn with one log line; the budget alerts of the turn are recorded anyway."""
    import core.analytics.copy as copy_module

    monkeypatch.setattr(copy_module, "BACKGROUND_LOCK_SECONDS", 0.2)
    copy = copy_of(runtime)
    auto = app_evaluator(runtime, billing, copy.background_queries, every_seconds=60)
    passed(runtime, billing, gpt4o, spent=5)
    with copy.store.sync_lock(), caplog.at_level(logging.WARNING, logger="core.alerts.auto"):
        report = auto.evaluate_if_due(deliver=True, anomalies=True)  # gives up after BACKGROUND_LOCK_SECONDS
    assert report is not None and [a["kind"] for a in report.alerts] == ["threshold"]
    (line,) = [r for r in caplog.records if r.name == "core.alerts.auto"]
    assert "SyncBusyError" in line.getMessage() and line.getMessage().startswith("spend anomalies were not checked")
