"""Delivering queued alert notifications: webhooks (signed JSON POST) and email, retried with backoff, every attempt
written to the delivery log (`alert_delivery_attempts`).

A run claims each due notification first (a conditional update: two runs, or a run and the background deliverer,
never send the same one twice at once), then tries it up to `policy.max_attempts` times with exponential backoff
(honouring a receiver's short Retry-After). Still failing but worth retrying: it goes back to the queue for a later
run (`alerts run`, from cron), after 1, 2, 4... minutes, until MAX_ATTEMPTS in all; a final refusal (a 4xx, a
refused address) fails it at once. A claim left by a run that died expires after CLAIM_SECONDS.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.email import SmtpConfig, build_message, send_email
from core.alerts.records import AttemptResult, alerts, attempts, notifications, teams, users, webhooks
from core.alerts.webhooks import post_signed, register_url
from core.billing.ledger_sql import read_transaction, write_engine, write_transaction
from core.config import Settings
from core.db.models import utcnow
from core.providers.retry import RetryPolicy

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # over every run
CLAIM_SECONDS = 300
REQUEUE_BASE = timedelta(minutes=1)
DEFAULT_POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0)
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    delivered: int
    failed: int  # given up on
    requeued: int  # to be retried by a later run


class AlertDelivery:
    """Sends what the queue holds. `http` (an httpx.Client) and `sleep` are injectable: tests hand a local server's
    client and a recorder."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self.settings = settings
        self._http = http
        self.policy = policy
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.smtp = SmtpConfig.from_url(settings.smtp_url.get()) if settings.smtp_url else None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(follow_redirects=False)
        return self._http

    def deliver_pending(self, now: datetime | None = None, limit: int = 200) -> DeliveryReport:
        """Send every due notification (at most `limit`); safe to run from several processes at once."""
        now = now or utcnow()
        with read_transaction(self.engine) as conn:
            due = (
                conn.execute(
                    select(notifications.c.id)
                    .where(
                        notifications.c.status == "pending",
                        notifications.c.next_attempt_at <= now,
                        or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until < now),
                    )
                    .order_by(notifications.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        counts = {"delivered": 0, "failed": 0, "pending": 0}
        for notification_id in due:
            if self._claim(notification_id, now):
                counts[self._deliver(notification_id)] += 1
        return DeliveryReport(delivered=counts["delivered"], failed=counts["failed"], requeued=counts["pending"])

    def _claim(self, notification_id: int, now: datetime) -> bool:
        with write_transaction(write_engine(self.engine)) as conn:
            done = conn.execute(
                update(notifications)
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.status == "pending",
                    or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until < now),
                )
                .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
            return done.rowcount == 1

    def _deliver(self, notification_id: int) -> str:
        """Try one claimed notification; returns its state afterwards: delivered | failed | pending."""
        note, alert, hook = self._load(notification_id)
        tries_before = int(note.attempts)
        result: AttemptResult | None = None
        for i in range(1, self.policy.max_attempts + 1):
            number = tries_before + i
            if note.channel == "webhook" and (hook is None or not hook.active):
                result = AttemptResult(
                    ok=False, retryable=False, status_code=None, error="the webhook was removed", duration_ms=0
                )
            else:
                result = self._send(note, alert, hook, number)
            self._log(notification_id, number, result)
            if result.ok or not result.retryable or number >= MAX_ATTEMPTS:
                break
            if i < self.policy.max_attempts:
                wait = self.policy.backoff(i, self.rng)
                if result.retry_after is not None and result.retry_after <= MAX_RETRY_AFTER:
                    wait = max(wait, result.retry_after)
                self.sleep(wait)
        assert result is not None
        return self._finish(notification_id, result, number)

    def _load(self, notification_id: int) -> tuple[Any, Any, Any]:
        with read_transaction(self.engine) as conn:
            note = conn.execute(select(notifications).where(notifications.c.id == notification_id)).one()
            alert = conn.execute(
                select(alerts, users.c.email, teams.c.name.label("team_name"))
                .outerjoin(users, users.c.id == alerts.c.user_id)
                .outerjoin(teams, teams.c.id == alerts.c.team_id)
                .where(alerts.c.id == note.alert_id)
            ).one()
            hook = None
            if note.webhook_id is not None:
                hook = conn.execute(select(webhooks).where(webhooks.c.id == note.webhook_id)).one()
                register_url(hook.secret, hook.url)
        return note, alert, hook

    def _send(self, note: Any, alert: Any, hook: Any, number: int) -> AttemptResult:
        if note.channel == "webhook":
            payload = payload_of(alert, delivery_id=note.id, attempt=number)
            return post_signed(self.http, hook.url, hook.secret, payload, alert.kind)
        if self.smtp is None:
            return AttemptResult(ok=False, retryable=True, status_code=None, error="SMTP_URL is not set", duration_ms=0)
        to = note.target.split(":", 1)[1]
        body = (
            f"{alert.message}\n\nKind: {alert.kind} ({alert.severity})\nWhen: {alert.created_at:%Y-%m-%d %H:%M} UTC\n"
        )
        if alert.details:
            body += "".join(f"{k}: {v}\n" for k, v in sorted(alert.details.items()))
        msg = build_message(self.settings.alert_email_from, to, f"[AI credits] {alert.message}", body)
        return send_email(self.smtp, msg)

    def _log(self, notification_id: int, number: int, result: AttemptResult) -> None:
        with write_transaction(write_engine(self.engine)) as conn:
            conn.execute(
                insert(attempts).values(
                    notification_id=notification_id,
                    attempt=number,
                    at=utcnow(),
                    ok=result.ok,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )

    def _finish(self, notification_id: int, result: AttemptResult, tries: int) -> str:
        now = utcnow()
        if result.ok:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now, "last_error": None}
        elif not result.retryable or tries >= MAX_ATTEMPTS:
            values = {"status": "failed", "last_error": result.error}
        else:
            passes = max(tries // self.policy.max_attempts, 1)
            values = {
                "status": "pending",
                "last_error": result.error,
                "next_attempt_at": now + REQUEUE_BASE * 2 ** (passes - 1),
            }
        with write_transaction(write_engine(self.engine)) as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(attempts=tries, claimed_until=None, **values)
            )
        return str(values["status"])


def payload_of(alert: Any, *, delivery_id: int, attempt: int) -> dict[str, Any]:
    """The JSON a webhook receives."""
    return {
        "id": alert.id,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "created_at": alert.created_at.isoformat(),
        "user": alert.email,
        "team": alert.team_name,
        "budget_id": alert.budget_id,
        "threshold_pct": alert.threshold_pct,
        "period_start": alert.period_start.isoformat() if alert.period_start else None,
        "period_end": alert.period_end.isoformat() if alert.period_end else None,
        "details": dict(alert.details or {}),
        "delivery": {"id": delivery_id, "attempt": attempt},
        "sent_at": utcnow().isoformat(),
    }


class BackgroundDelivery:
    """Delivers new alerts at once on one daemon thread, so a call never waits for a webhook; what a process leaves
    undelivered when it exits stays queued for `alerts run`."""

    def __init__(self, delivery: AlertDelivery) -> None:
        self.delivery = delivery
        self._wake: queue.Queue[None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None  # started by the first alert: most processes never need it
        self._start = threading.Lock()

    def __call__(self, alert_ids: list[int]) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="alert-delivery", daemon=True)
                self._thread.start()
        with contextlib.suppress(queue.Full):  # a run is already due: it will see these alerts too
            self._wake.put_nowait(None)

    def _loop(self) -> None:
        while True:
            self._wake.get()
            try:
                self.delivery.deliver_pending()
            except Exception:
                log.exception("background alert delivery failed; `alerts run` will retry")
