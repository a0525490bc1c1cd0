"""The `alerts` table: record an alert once (its key says what it is about: a budget, a period and a threshold; a
user and a day...), queue its notifications in the same transaction, and read alerts back for banners and lists.

Recording is idempotent: a second attempt with the same key, from this process or another, inserts nothing and
queues nothing, so the after-settle hook and `alerts run` may both look at the same threshold without a double alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from core.billing.ledger_sql import json_safe, read_transaction, write_engine, write_transaction
from core.config import Settings
from core.db.models import (
    Alert,
    AlertDeliveryAttempt,
    AlertNotification,
    AlertWebhook,
    Budget,
    Team,
    TeamMember,
    User,
    utcnow,
)
from core.errors import NotFoundError

alerts = Alert.__table__
notifications = AlertNotification.__table__
attempts = AlertDeliveryAttempt.__table__
webhooks = AlertWebhook.__table__
users = User.__table__
teams = Team.__table__
members = TeamMember.__table__
budgets = Budget.__table__

SEVERITIES = ("info", "warning", "critical")
BANNER_DAYS = 31  # an alert without a period shows as a banner this long at most


@dataclass(frozen=True, kw_only=True)
class NewAlert:
    """An alert about to be recorded."""

    key: str  # what it is about, e.g. "threshold:budget=3:period=2026-12-01T00:00:pct=80"; recorded once
    kind: str  # threshold | hard_limit | low_balance | anomaly
    severity: str  # info | warning | critical
    message: str  # why, as a sentence a person can act on
    user_id: int | None = None  # the person concerned: their banner, their email
    team_id: int | None = None  # the team concerned: its members see the banner
    budget_id: int | None = None
    threshold_pct: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None  # the banner shows until then
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AlertView:
    id: int
    key: str
    kind: str
    severity: str
    created_at: datetime
    message: str
    user_id: int | None
    user_email: str | None
    team_id: int | None
    team_name: str | None
    budget_id: int | None
    threshold_pct: int | None
    period_start: datetime | None
    period_end: datetime | None
    details: dict[str, Any]
    dismissed_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What one attempt to deliver a notification (a POST, an email) came to."""

    ok: bool
    retryable: bool  # worth another try (no answer, a timeout, 429, 5xx, an SMTP 4xx)
    status_code: int | None  # HTTP status or SMTP reply code
    error: str | None  # clean of secrets and of webhook URLs' paths
    duration_ms: int
    retry_after: float | None = None  # seconds the receiver asked us to wait


@dataclass(frozen=True, kw_only=True)
class DeliveryView:
    """One attempt to deliver one alert: the delivery log."""

    attempt_id: int
    at: datetime
    alert_id: int
    alert_message: str
    channel: str  # webhook | email
    destination: str  # the webhook's name and host (never its full URL: it may carry a token), or the address
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    status: str  # the notification's state now: pending | delivered | failed


def record_alerts(conn: Connection, found: list[NewAlert], settings: Settings, now: datetime) -> dict[int, NewAlert]:
    """Insert the alerts whose key is new and queue their notifications (every active webhook that wants the kind;
    email to the person concerned and to ALERT_EMAIL_TO when SMTP_URL is set). Returns the new alerts by id."""
    sqlite = conn.dialect.name == "sqlite"
    made: dict[int, NewAlert] = {}
    for a in found:
        stmt = (sqlite_insert(alerts) if sqlite else pg_insert(alerts)).values(
            key=a.key,
            kind=a.kind,
            severity=a.severity,
            created_at=now,
            message=a.message,
            user_id=a.user_id,
            team_id=a.team_id,
            budget_id=a.budget_id,
            threshold_pct=a.threshold_pct,
            period_start=a.period_start,
            period_end=a.period_end,
            details=json_safe(a.details),
        )
        alert_id = conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]).returning(alerts.c.id)).scalar()
        if alert_id is None:
            continue
        made[alert_id] = a
        for target, channel, webhook_id in _destinations(conn, a, settings):
            conn.execute(
                insert(notifications).values(
                    alert_id=alert_id,
                    channel=channel,
                    target=target,
                    webhook_id=webhook_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
    return made


def _destinations(conn: Connection, a: NewAlert, settings: Settings) -> list[tuple[str, str, int | None]]:
    out: list[tuple[str, str, int | None]] = []
    for hook_id, kinds in conn.execute(select(webhooks.c.id, webhooks.c.kinds).where(webhooks.c.active.is_(True))):
        if not kinds or a.kind in kinds:
            out.append((f"webhook:{hook_id}", "webhook", hook_id))
    if settings.smtp_url:
        to = list(settings.alert_email_to)
        if a.user_id is not None:
            email = conn.execute(select(users.c.email).where(users.c.id == a.user_id)).scalar()
            if email:
                to.insert(0, email)
        out.extend((f"email:{addr.lower()}", "email", None) for addr in dict.fromkeys(e.lower() for e in to))
    return out


class AlertLog:
    """Reading alerts back: a person's banners, finance's list, the delivery log; dismissing a banner."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self.settings = settings

    def record(self, found: list[NewAlert], now: datetime | None = None) -> list[int]:
        """Record alerts in their own transaction (see `record_alerts`)."""
        if not found:
            return []
        with write_transaction(write_engine(self.engine)) as conn:
            return list(record_alerts(conn, found, self.settings, now or utcnow()))

    def list_alerts(
        self,
        *,
        kinds: tuple[str, ...] = (),
        user_id: int | None = None,
        team_id: int | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[AlertView]:
        """Newest first: every alert (finance's list), or those about one person or one team."""
        stmt = self._select().order_by(alerts.c.id.desc()).limit(limit)
        if kinds:
            stmt = stmt.where(alerts.c.kind.in_(kinds))
        about = []  # (a None must not become "IS NULL": that would match every alert about nobody)
        if user_id is not None:
            about.append(alerts.c.user_id == user_id)
        if team_id is not None:
            about.append(alerts.c.team_id == team_id)
        if about:
            stmt = stmt.where(or_(*about))
        if since is not None:
            stmt = stmt.where(alerts.c.created_at >= since)
        with read_transaction(self.engine) as conn:
            return [_view(r) for r in conn.execute(stmt)]

    def banners(self, user_id: int, now: datetime | None = None) -> list[AlertView]:
        """The alerts a person should see on every page now: about them or their team, not dismissed, in a period
        that is not over (a budget's month), or for a low balance while the balance is still under its mark."""
        now = now or utcnow()
        team = select(members.c.team_id).where(members.c.user_id == user_id).scalar_subquery()
        # a budget's banner goes with the budget, and with a change of it (a raised limit): what it said is stale
        budget_stands = (
            select(budgets.c.id)
            .where(
                budgets.c.id == alerts.c.budget_id,
                budgets.c.removed_at.is_(None),
                or_(budgets.c.updated_at.is_(None), budgets.c.updated_at <= alerts.c.created_at),
            )
            .exists()
        )
        stmt = (
            self._select()
            .where(
                or_(alerts.c.user_id == user_id, and_(alerts.c.team_id.is_not(None), alerts.c.team_id == team)),
                alerts.c.dismissed_at.is_(None),
                alerts.c.created_at >= now - timedelta(days=BANNER_DAYS),
                or_(alerts.c.period_end.is_(None), alerts.c.period_end > now),
                alerts.c.kind != "anomaly",
                or_(alerts.c.budget_id.is_(None), budget_stands),
            )
            .order_by(alerts.c.id.desc())
        )
        with read_transaction(self.engine) as conn:
            rows = [_view(r) for r in conn.execute(stmt)]
            balance = None
            if any(a.kind == "low_balance" for a in rows):
                balance = conn.execute(select(users.c.credit_balance).where(users.c.id == user_id)).scalar()
        shown: list[AlertView] = []
        seen: set[tuple[object, ...]] = set()
        for a in rows:  # newest first: one banner per budget and period (its latest threshold or refusal), and one
            # low-balance banner per person (each credit movement makes a new one: only the latest figure is current)
            if a.budget_id is not None:
                about: tuple[object, ...] = ("budget", a.budget_id, a.period_start)
            elif a.kind == "low_balance":
                about = ("low_balance", a.user_id)
            else:
                about = ("alert", a.id)
            if about in seen:
                continue
            seen.add(about)
            if a.kind == "low_balance" and balance is not None and balance >= int(a.details.get("mark", 0)):
                continue  # topped up since
            shown.append(a)
        return shown

    def dismiss(self, alert_id: int, actor: str) -> None:
        """Hide a banner (for everyone it concerns); the alert stays in the list."""
        with write_transaction(write_engine(self.engine)) as conn:
            done = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.dismissed_at.is_(None))
                .values(dismissed_at=utcnow(), dismissed_by=actor)
            )
            if not done.rowcount and conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first() is None:
                raise NotFoundError(f"No alert {alert_id}; `python -m core alerts list` shows them.")

    def deliveries(self, *, limit: int = 200, alert_id: int | None = None) -> list[DeliveryView]:
        """Every delivery attempt, newest first."""
        stmt = (
            select(
                attempts,
                notifications.c.alert_id,
                notifications.c.channel,
                notifications.c.target,
                notifications.c.status.label("notification_status"),
                alerts.c.message,
                webhooks.c.name.label("webhook_name"),
                webhooks.c.url,
            )
            .join(notifications, notifications.c.id == attempts.c.notification_id)
            .join(alerts, alerts.c.id == notifications.c.alert_id)
            .outerjoin(webhooks, webhooks.c.id == notifications.c.webhook_id)
            .order_by(attempts.c.id.desc())
            .limit(limit)
        )
        if alert_id is not None:
            stmt = stmt.where(notifications.c.alert_id == alert_id)
        with read_transaction(self.engine) as conn:
            return [
                DeliveryView(
                    attempt_id=r.id,
                    at=r.at,
                    alert_id=r.alert_id,
                    alert_message=r.message,
                    channel=r.channel,
                    destination=(
                        f"{r.webhook_name} ({url_host(r.url)})" if r.channel == "webhook" else r.target.split(":", 1)[1]
                    ),
                    attempt=r.attempt,
                    ok=bool(r.ok),
                    status_code=r.status_code,
                    error=r.error,
                    duration_ms=r.duration_ms,
                    status=r.notification_status,
                )
                for r in conn.execute(stmt)
            ]

    @staticmethod
    def _select() -> Any:
        return (
            select(alerts, users.c.email, teams.c.name.label("team_name"))
            .outerjoin(users, users.c.id == alerts.c.user_id)
            .outerjoin(teams, teams.c.id == alerts.c.team_id)
        )


def url_host(url: str | None) -> str:
    """A webhook URL shown without its path and query (a chat service's webhook URL carries its token there)."""
    if not url:
        return ""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]


def _view(r: Any) -> AlertView:
    return AlertView(
        id=r.id,
        key=r.key,
        kind=r.kind,
        severity=r.severity,
        created_at=r.created_at,
        message=r.message,
        user_id=r.user_id,
        user_email=r.email,
        team_id=r.team_id,
        team_name=r.team_name,
        budget_id=r.budget_id,
        threshold_pct=r.threshold_pct,
        period_start=r.period_start,
        period_end=r.period_end,
        details=dict(r.details or {}),
        dismissed_at=r.dismissed_at,
    )
