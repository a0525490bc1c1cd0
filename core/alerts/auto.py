"""Alerts that evaluate on their own: the evaluation of `alerts run` (core/alerts/runner.py), at most once every
ALERTS_EVERY_SECONDS per process, when a page that shows alerts is drawn and on a timer thread in the long-running
processes (the Streamlit app, each gateway worker), so nobody has to run a command for a budget's 80% to be heard.

Nothing here runs on a charge's path. Several processes may evaluate at the same moment: each alert is recorded once
by its unique key (core/alerts/records.py), a threshold's mark only rises and delivery claims what it sends. Counters
are made only for budgets that have none for this period (making them locks the ledger, which every charge waits
on). The spend anomalies (analytics) are left to `alerts run`. A failure is logged in one line and waits for the next
turn: it never reaches a page or stops the timer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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
    evaluation every `every_seconds` (0 turns both off). New alerts are handed to `hand_off` (the process's background
    delivery) from a page; the timer delivers the queue itself, retries included."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        billing: BillingService,
        *,
        every_seconds: float | None = None,
        hand_off: Callable[[list[int]], None] | None = None,
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
        self._clock = clock
        self._turn = threading.Lock()
        self._last: float | None = None
        self._thread: threading.Thread | None = None

    @property
    def on(self) -> bool:
        return self.every > 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def evaluate_if_due(self, *, deliver: bool = False) -> RunReport | None:
        """Evaluate unless this process did less than `every` seconds ago or is doing it now (never waits for it);
        `deliver`: send the queue here rather than hand new alerts to the background delivery. Returns the run's
        report, or None when it did not run or failed (logged)."""
        if not self.on or not self._turn.acquire(blocking=False):
            return None
        try:
            started = self._clock()
            if self._last is not None and started - self._last < self.every:
                return None
            self._last = started
            return self._evaluate(deliver)
        finally:
            self._turn.release()

    def _evaluate(self, deliver: bool) -> RunReport | None:
        try:
            report = self._runner.run()
            made = [int(a["id"]) for a in report.alerts]
            if deliver:
                self._delivery.deliver_pending()
            elif made and self._hand_off is not None:
                self._hand_off(made)
            return report
        except Exception as exc:  # logged in one line; the next turn tries again, `alerts run` remains
            log.warning("alerts were not evaluated (%s); trying again in %g s", self._problem(exc), self.every)
            return None

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, DBAPIError):
            return database_problem(exc, self.engine)  # the database's host, never its password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)

    def _seconds_to_next(self) -> float:
        if self._last is None:
            return self.every
        return max(self._last + self.every - self._clock(), 0.0)

    def start(self) -> bool:
        """Evaluate every `every` seconds on a daemon thread until `stop()` (first after `every` seconds: a page drawn
        at start evaluates at once). Returns whether a timer runs (not when turned off)."""
        if not self.on:
            return False
        if self.running:
            return True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="alert-timer", daemon=True)
        self._thread.start()
        return True

    def _loop(self) -> None:
        while not self._stopping.wait(self._seconds_to_next()):
            self.evaluate_if_due(deliver=True)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop the timer, waiting for an evaluation under way (its webhook backoff cut short)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the alert timer was still evaluating after %g s; left to end with the process", timeout)
