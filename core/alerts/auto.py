"""Alerts that evaluate on their own: the evaluation of `alerts run` (core/alerts/runner.py), at most once every
ALERTS_EVERY_SECONDS per process, when a page that shows alerts is drawn and on a timer thread in the long-running
processes (the Streamlit app, each gateway worker), so nobody has to run a command for a budget's 80% to be heard.

Spend anomalies need the DuckDB analytics copy, synced from the database: a sync copies the store's current version
(hundreds of MB at millions of rows) under a lock every syncing process waits on, and each process that reads it keeps
a DuckDB instance open. So they are checked only on the timer of the process that already keeps a synced copy for its
pages, the Streamlit app (`start(anomalies=True)`), on their own clock (a page's evaluation does not put them off),
syncing the copy only when it is older than the pages' five-minute limit. Never on a page's or a charge's path, never
in a gateway worker (they never open the copy); without the app, `alerts run` (cron) remains.

Nothing here runs on a charge's path. Several processes may evaluate at the same moment: each alert is recorded once
by its unique key (core/alerts/records.py), a threshold's mark only rises and delivery claims what it sends. Counters
are made only for budgets that have none for this period (making them locks the ledger, which every charge waits
on). A failure (the database, the analytics sync) is logged in one line and waits for the next turn: it never reaches
a page or stops the timer, and a failed anomaly check does not stop the budget alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.delivery import AlertDelivery
from core.alerts.runner import AlertRunner, RunReport
from core.billing.ledger import BillingService
from core.config import Settings
from core.db.engine import database_problem
from core.redaction import redact

log = logging.getLogger(__name__)

STOP_SECONDS = 10.0  # how long `stop` waits for an evaluation under way


class AutoAlerts:
    """`evaluate_if_due()` (pages' services) and `start()`/`stop()` (the timer) share one turn per process: at most one
    evaluation every `every_seconds` (0 turns both off), and with `anomalies` (the app's timer) at most one anomaly
    check as often, read from `spend_queries()` (the spend queries over a synced analytics copy). New alerts are handed
    to `hand_off` (the process's background delivery) from a page; the timer delivers the queue itself, retries
    included."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        billing: BillingService,
        *,
        every_seconds: float | None = None,
        hand_off: Callable[[list[int]], None] | None = None,
        spend_queries: Callable[[], Any] | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = float(settings.alerts_every_seconds if every_seconds is None else every_seconds)
        self.engine = session_factory.kw["bind"]
        self._runner = AlertRunner(session_factory, settings, billing, check_anomalies=False, counters="missing")
        self._stopping = threading.Event()
        # the timer's backoff between webhook retries ends at once when the process stops
        self._delivery = AlertDelivery(session_factory, settings, http=http, sleep=self._stopping.wait)
        self._hand_off = hand_off
        self._spend_queries = spend_queries
        self._clock = clock
        self._turn = threading.Lock()
        self._last: float | None = None
        self._last_anomalies: float | None = None
        self._timer_anomalies = False  # whether the running timer checks them (`start(anomalies=True)`)
        self._thread: threading.Thread | None = None

    @property
    def on(self) -> bool:
        return self.every > 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def checks_anomalies(self) -> bool:
        """Whether this process's timer checks the spend anomalies."""
        return self.running and self._timer_anomalies

    def evaluate_if_due(self, *, deliver: bool = False, anomalies: bool = False) -> RunReport | None:
        """Evaluate unless this process did less than `every` seconds ago or is doing it now (never waits for it);
        `anomalies`: also check the spend anomalies when they were last checked `every` seconds ago or more (this may
        sync the analytics copy: the app's timer only, never a page); `deliver`: send the queue here rather than hand
        new alerts to the background delivery. Returns the report of what ran (its notes say what failed), or None
        when nothing was due or everything failed (logged)."""
        if anomalies and self._spend_queries is None:
            raise ValueError("spend anomalies need the spend queries of an analytics copy (spend_queries=...)")
        if not self.on or not self._turn.acquire(blocking=False):
            return None
        try:
            started = self._clock()
            budgets = self._due(self._last, started)
            anomalies = anomalies and self._due(self._last_anomalies, started)
            if budgets:
                self._last = started
            if anomalies:
                self._last_anomalies = started
            if not (budgets or anomalies):
                return None
            return self._evaluate(deliver, budgets=budgets, anomalies=anomalies)
        finally:
            self._turn.release()

    def _due(self, last: float | None, now: float) -> bool:
        return last is None or now - last >= self.every

    def _evaluate(self, deliver: bool, *, budgets: bool, anomalies: bool) -> RunReport | None:
        reports: list[RunReport] = []
        notes: list[str] = []
        if budgets:
            try:
                reports.append(self._runner.run())
            except Exception as exc:  # logged in one line; the next turn tries again, `alerts run` remains
                log.warning("alerts were not evaluated (%s); trying again in %g s", self._problem(exc), self.every)
        if anomalies:
            try:
                reports.append(self._check_anomalies())
            except Exception as exc:  # the analytics copy is derived: its trouble must not stop the budget alerts
                problem = self._problem(exc)
                log.warning("spend anomalies were not checked (%s); trying again in %g s", problem, self.every)
                notes.append(f"spend anomalies not checked: {problem}")
        if not reports:
            return None
        if not anomalies:  # the runner's notes are about anomalies alone: "skipped as asked"
            notes = [n for r in reports for n in r.notes]
        made = [a for r in reports for a in r.alerts]
        try:
            if deliver:
                self._delivery.deliver_pending()
            elif made and self._hand_off is not None:
                self._hand_off([int(a["id"]) for a in made])
        except Exception as exc:
            log.warning("alerts were not delivered (%s); trying again in %g s", self._problem(exc), self.every)
        return RunReport(
            counters_made=sum(r.counters_made for r in reports),
            alerts=made,
            delivery=None,
            notes=notes,
        )

    def _check_anomalies(self) -> RunReport:
        source = self._spend_queries
        if source is None:
            raise ValueError("spend anomalies need the spend queries of an analytics copy (spend_queries=...)")
        return self._runner.run_anomalies(source())

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, DBAPIError):
            return database_problem(exc, self.engine)  # the database's host, never its password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)

    def _seconds_to_next(self) -> float:
        now = self._clock()
        clocks = [self._last, self._last_anomalies] if self._timer_anomalies else [self._last]
        return min(self.every if last is None else max(last + self.every - now, 0.0) for last in clocks)

    def start(self, *, anomalies: bool = False) -> bool:
        """Evaluate every `every` seconds on a daemon thread until `stop()` (first after `every` seconds: a page drawn
        at start evaluates at once); `anomalies`: check the spend anomalies too (the process that keeps the analytics
        copy for its pages: the Streamlit app). Returns whether a timer runs (not when turned off)."""
        if anomalies and self._spend_queries is None:
            raise ValueError("spend anomalies need the spend queries of an analytics copy (spend_queries=...)")
        if not self.on:
            return False
        self._timer_anomalies = anomalies
        if self.running:
            return True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="alert-timer", daemon=True)
        self._thread.start()
        return True

    def _loop(self) -> None:
        while not self._stopping.wait(self._seconds_to_next()):
            self.evaluate_if_due(deliver=True, anomalies=self._timer_anomalies)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop the timer, waiting for an evaluation under way (its webhook backoff cut short)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the alert timer was still evaluating after %g s; left to end with the process", timeout)
