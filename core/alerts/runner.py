"""`alerts run`: evaluate every alert rule over everything, then deliver what is queued. For cron; safe to repeat
(every alert is recorded once by its key, and delivery claims what it sends).

1. makes the counters of every budget's current and next period (so the month's first call rarely makes one), or
   (`counters="missing"`, the automatic evaluation of core/alerts/auto.py) only of budgets with none for this period;
2. thresholds: every budget whose spend passed a threshold not alerted on yet;
3. low balance: each user with spend in the last 56 days whose available credits are under LOW_BALANCE_CREDITS, or
   last fewer than LOW_BALANCE_DAYS at the forecast burn (core/alerts/runway.py);
4. spend anomalies from the Spend analytics (`SpendQueries.anomalies`) over the last two days, when given queries;
5. delivers the queue (webhooks, email).

`run_anomalies` records step 4 alone: the automatic evaluation checks anomalies on its own clock (core/alerts/auto.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.counters import CounterReader, mark_alerted
from core.alerts.delivery import AlertDelivery, DeliveryReport
from core.alerts.hook import armed_by
from core.alerts.records import NewAlert, record_alerts
from core.alerts.rules import anomaly_alert, low_balance_alert, runway_alert, threshold_alerts
from core.alerts.runway import burn_rates
from core.billing.budget_sql import BudgetSQL
from core.billing.ledger import BillingService
from core.billing.ledger_sql import read_transaction, write_engine, write_transaction
from core.config import Settings
from core.db.models import Alert, Budget, BudgetPeriod, CreditHold, User, utcnow

log = logging.getLogger(__name__)
alerts = Alert.__table__
budgets = Budget.__table__
users = User.__table__
holds = CreditHold.__table__
periods = BudgetPeriod.__table__

ANOMALY_DAYS = 2


@dataclass(frozen=True, kw_only=True)
class RunReport:
    counters_made: int
    alerts: list[dict[str, Any]]  # id, kind, severity, message of each alert recorded by this run
    delivery: DeliveryReport | None
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why


class AlertRunner:
    """Everything `alerts run` does. `spend_queries` (core.analytics.SpendQueries) enables the anomaly rule
    (`check_anomalies=False` skips it on purpose); `delivery` (None: record only) sends the queue. `counters="missing"`
    makes counters only for budgets in force with none for this period: making them locks the ledger (every charge
    waits on it), which an evaluation every minute must not do for nothing."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        billing: BillingService,
        *,
        delivery: AlertDelivery | None = None,
        spend_queries: Any = None,
        check_anomalies: bool = True,
        counters: Literal["all", "missing"] = "all",
    ) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self.settings = settings
        self.billing = billing
        self.delivery = delivery
        self.spend_queries = spend_queries
        self.check_anomalies = check_anomalies
        self.counters = counters
        self._reader = CounterReader(self.engine.dialect.name)
        self._sql = BudgetSQL(self.engine.dialect.name)

    def run(self, now: datetime | None = None) -> RunReport:
        now = now or utcnow()
        notes: list[str] = []
        in_force = select(budgets.c.id).where(budgets.c.removed_at.is_(None))
        if self.counters == "missing":
            counted = select(periods.c.id).where(
                periods.c.budget_id == budgets.c.id, periods.c.period_start <= now, periods.c.period_end > now
            )
            in_force = in_force.where(budgets.c.starts_at <= now, ~counted.exists())
        with read_transaction(self.engine) as conn:
            ids = list(conn.execute(in_force).scalars())
        counters_made = self.billing.ensure_budget_periods(ids) if ids else 0
        found: list[NewAlert] = []
        marks: list[tuple[int, int]] = []
        with read_transaction(self.engine) as conn:
            for facts in self._reader.due(conn, now):
                crossed = facts.crossed()
                if crossed:
                    found.extend(threshold_alerts(facts, self.settings.tz))
                    marks.append((facts.counter_id, max(crossed)))
        found.extend(self._low_balances(now))
        found.extend(self._anomalies(now, notes))
        recorded = self._record(self._not_yet_recorded(found), marks, now)
        report = self.delivery.deliver_pending(now) if self.delivery is not None else None
        return RunReport(counters_made=counters_made, alerts=recorded, delivery=report, notes=notes)

    def run_anomalies(self, spend_queries: Any, now: datetime | None = None) -> RunReport:
        """Record the spend anomalies alone, delivering nothing: the automatic evaluation's check in the process that
        keeps the analytics copy (core/alerts/auto.py). A failure to read them raises, for the caller to log."""
        now = now or utcnow()
        found = self._not_yet_recorded(self._anomalies_in(spend_queries, now))
        return RunReport(counters_made=0, alerts=self._record(found, [], now), delivery=None)

    def _record(self, found: list[NewAlert], marks: list[tuple[int, int]], now: datetime) -> list[dict[str, Any]]:
        """Record the new alerts and raise the thresholds' marks in one write transaction; what was recorded."""
        made: dict[int, NewAlert] = {}
        if found or marks:  # nothing new: no write lock (charges wait on it), as the timer runs every minute
            with write_transaction(write_engine(self.engine)) as conn:
                for counter_id, pct in marks:
                    mark_alerted(conn, counter_id, pct)
                made = record_alerts(conn, found, self.settings, now)
        return [
            {"id": i, "kind": a.kind, "severity": a.severity, "message": a.message, "key": a.key}
            for i, a in made.items()
        ]

    def _not_yet_recorded(self, found: list[NewAlert]) -> list[NewAlert]:
        """Drop the alerts already recorded (a balance still low since its alert): a read, where recording them again
        would take the write lock for nothing. Recording stays idempotent by key for the race this read leaves."""
        if not found:
            return found
        with read_transaction(self.engine) as conn:
            known = set(conn.execute(select(alerts.c.key).where(alerts.c.key.in_({a.key for a in found}))).scalars())
        return [a for a in found if a.key not in known]

    def _low_balances(self, now: datetime) -> list[NewAlert]:
        mark, days = self.settings.low_balance_credits, self.settings.low_balance_days
        if not mark and not days:
            return []
        found: list[NewAlert] = []
        with read_transaction(self.engine) as conn:
            burns = burn_rates(conn, self._sql, self.settings.tz, now)
            if not burns:
                return []
            held = (
                select(holds.c.user_id, func.sum(holds.c.credits).label("held"))
                .where(holds.c.status == "held", holds.c.expires_at > now)
                .group_by(holds.c.user_id)
                .subquery()
            )
            rows = conn.execute(
                select(users.c.id, users.c.email, users.c.credit_balance - func.coalesce(held.c.held, 0))
                .outerjoin(held, held.c.user_id == users.c.id)
                .where(users.c.id.in_(list(burns)))
            ).all()
            for uid, email, left in rows:
                available = int(left)  # PostgreSQL sums bigints as numeric
                burn = burns[uid]
                low = mark > 0 and available < mark
                short = days > 0 and burn > 0 and available < burn * float(days)
                if not (low or short):
                    continue
                armed = armed_by(conn, uid)
                if low:
                    found.append(
                        low_balance_alert(user_id=uid, email=email, balance=available, mark=mark, armed_by=armed)
                    )
                if short and available > 0:
                    found.append(
                        runway_alert(
                            user_id=uid, email=email, available=available, burn_per_day=burn, days=days, armed_by=armed
                        )
                    )
        return found

    def _anomalies(self, now: datetime, notes: list[str]) -> list[NewAlert]:
        if not self.check_anomalies:
            notes.append("spend anomalies not checked: skipped as asked")
            return []
        if self.spend_queries is None:
            notes.append("spend anomalies not checked: no analytics store given")
            return []
        try:
            return self._anomalies_in(self.spend_queries, now)
        except Exception as exc:  # the analytics copy is derived: its trouble must not stop budget alerts
            log.exception("spend anomalies could not be read")
            notes.append(f"spend anomalies not checked: {type(exc).__name__}: {exc}")
            return []

    def _anomalies_in(self, spend_queries: Any, now: datetime) -> list[NewAlert]:
        result = spend_queries.anomalies(now=now, days=ANOMALY_DAYS, tz=self.settings.reporting_tz)
        return [
            anomaly_alert(
                dimension=str(r["dimension"]),
                entity=str(r["entity"]),
                day=str(r["day"]),
                revenue_usd=Decimal(r["revenue_usd"]),
                median_usd=Decimal(r["baseline_usd"]),
                ratio=None if r["ratio"] is None else float(r["ratio"]),  # None: no median to compare with
            )
            for r in result.frame.to_dict("records")
        ]
