"""The check the generation flow runs right after a call is settled (or refused by a budget), at negligible cost.

After a settle: one indexed read of the budgets covering the call whose spend passed a threshold not yet alerted on
(nothing, almost always: then that read is all it costs), and a comparison of the balance before and after the debit
with LOW_BALANCE_CREDITS (no read at all). Only when something is due does it write: the alerts and their queued
notifications, in one transaction. After a refusal: the hard-limit alert, once per budget and period.
The runway alert needs a burn forecast and is left to `alerts run` (cron). A failure here is logged and never fails
the call: the alert is caught by the next settle or by `alerts run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.counters import CounterReader, mark_alerted
from core.alerts.records import NewAlert, record_alerts
from core.alerts.rules import CounterFacts, hard_limit_alert, low_balance_alert, threshold_alerts
from core.billing.errors import BudgetExceededError
from core.billing.ledger_sql import read_transaction, write_engine, write_transaction
from core.config import Settings
from core.db.models import Budget, CreditTransaction, Team, User, utcnow

log = logging.getLogger(__name__)
ledger = CreditTransaction.__table__
users = User.__table__
budgets = Budget.__table__
teams = Team.__table__


def armed_by(conn: object, user_id: int) -> int:
    """The user's latest credit in (grant, top-up, refund, positive adjustment): low-balance alerts fire once per
    funding, so a top-up re-arms them."""
    stmt = select(func.coalesce(func.max(ledger.c.id), 0)).where(ledger.c.user_id == user_id, ledger.c.amount > 0)
    return int(conn.execute(stmt).scalar_one())  # type: ignore[attr-defined]


class AlertHook:
    """`after_settle` and `after_refusal`; `on_new(ids)` is told about alerts just recorded (e.g. to deliver them
    at once in the background)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        on_new: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self.settings = settings
        self._reader = CounterReader(self.engine.dialect.name)
        self._on_new = on_new

    def after_settle(
        self,
        user_id: int,
        *,
        charged: int = 0,
        balance_after: int | None = None,
        api_key_id: int | None = None,
        now: datetime | None = None,
        budgets: bool = True,
    ) -> list[int]:
        """Record what a settled call made due; returns the new alerts' ids (usually none). `budgets=False` (no budget
        covered the call when it was reserved) skips the budgets' read: only the low-balance mark is checked."""
        try:
            return self._after_settle(user_id, charged, balance_after, api_key_id, now or utcnow(), budgets)
        except Exception:
            log.exception("budget alerts could not be checked after a settle of user %s", user_id)
            return []

    def _after_settle(
        self,
        user_id: int,
        charged: int,
        balance_after: int | None,
        api_key_id: int | None,
        now: datetime,
        budgets: bool,
    ) -> list[int]:
        mark = self.settings.low_balance_credits
        crossed_low = balance_after is not None and mark > 0 and balance_after < mark <= balance_after + charged
        due: list[CounterFacts] = []
        if budgets:
            with read_transaction(self.engine) as conn:
                due = self._reader.due(conn, now, user_id=user_id, api_key_id=api_key_id)
        if not due and not crossed_low:
            return []
        with write_transaction(write_engine(self.engine)) as conn:
            found = self._thresholds(conn, due)
            if crossed_low and balance_after is not None:
                email = conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar_one()
                found.append(
                    low_balance_alert(
                        user_id=user_id, email=email, balance=balance_after, mark=mark, armed_by=armed_by(conn, user_id)
                    )
                )
            made = list(record_alerts(conn, found, self.settings, now))
        self._tell(made)
        return made

    def _thresholds(self, conn: object, due: list[CounterFacts]) -> list[NewAlert]:
        found: list[NewAlert] = []
        for facts in due:
            crossed = facts.crossed()
            if crossed:
                found.extend(threshold_alerts(facts, self.settings.tz))
                mark_alerted(conn, facts.counter_id, max(crossed))  # type: ignore[arg-type]
        return found

    def after_refusal(self, error: BudgetExceededError, user_id: int, *, now: datetime | None = None) -> list[int]:
        """Record that a hard budget refused a call (once per budget and period)."""
        try:
            with write_transaction(write_engine(self.engine)) as conn:
                row = conn.execute(
                    select(budgets.c.scope, budgets.c.user_id, budgets.c.team_id, teams.c.owner_id)
                    .outerjoin(teams, teams.c.id == budgets.c.team_id)
                    .where(budgets.c.id == error.budget_id)
                ).one()
                email = conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar_one()
                concerns = row.user_id if row.scope == "user" else row.owner_id
                alert = hard_limit_alert(
                    error, user_id=user_id, concerns=concerns, team_id=row.team_id, user_email=email
                )
                made = list(record_alerts(conn, [alert], self.settings, now or utcnow()))
        except Exception:
            log.exception("the hard-limit alert of budget %s could not be recorded", error.budget_id)
            return []
        self._tell(made)
        return made

    def _tell(self, made: list[int]) -> None:
        if made and self._on_new is not None:
            try:
                self._on_new(made)
            except Exception:
                log.exception("could not hand new alerts %s to delivery; `alerts run` will deliver them", made)
