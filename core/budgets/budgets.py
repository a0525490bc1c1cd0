"""Budgets: set, list and remove limits on a user's, a team's or an API key's spend, and read where each stands.

Enforcement lives in `BillingService.reserve` (core/billing/budget_sql.py); this module manages the budgets and reads
their standing (spend this period from the counter, holds in flight, what is left, when it resets). A user, a team
or a key has at most one monthly and one one-off budget at a time: setting it again changes it (its spend so far
stays). Setting and removing are audited. No access checks here: the services layer decides who may manage budgets
(finance, admin) and whose budgets a person sees (their own, their team's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.billing import inputs
from core.billing.budget_periods import PERIODS, Window, current_window, period_label, resets_on
from core.billing.budget_sql import BudgetSQL, ledger_locked
from core.billing.ledger_sql import read_transaction, write_audit
from core.budgets.teams import members, team_row, teams, user_row, users
from core.config import Settings
from core.db.limits import check_line
from core.db.models import BUDGET_ENFORCEMENTS, BUDGET_SCOPES, ApiKey, Budget, utcnow
from core.errors import InvalidInputError, NotFoundError

budgets = Budget.__table__

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 10
MAX_NAME = 200


class UnknownBudgetError(NotFoundError):
    pass


@dataclass(frozen=True, kw_only=True)
class BudgetView:
    """A budget and where it stands in its current period."""

    id: int
    name: str
    scope: str  # user | team | api_key
    user_id: int | None
    user_email: str | None
    team_id: int | None
    team_name: str | None
    api_key_id: int | None
    credits: int  # the limit
    period: str  # monthly | once
    enforcement: str  # hard | soft
    thresholds: tuple[int, ...]
    starts_at: datetime
    created_at: datetime
    created_by: str
    removed_at: datetime | None
    period_start: datetime  # naive UTC
    period_end: datetime  # naive UTC (FOREVER for a one-off budget)
    period_label: str  # "December 2026" or "since 2026-12-04"
    resets_on: date | None  # local date the next period starts; None for a one-off budget
    spent: int  # credits spent this period (settled debits, net of refunds)
    in_flight: int  # credits held by calls in progress
    alerted_pct: int  # highest threshold already alerted on this period

    @property
    def left(self) -> int:
        return max(self.credits - self.spent - self.in_flight, 0)

    @property
    def used_pct(self) -> float:
        return 100.0 * self.spent / self.credits

    @property
    def target(self) -> str:
        """Who or what the budget covers, in words."""
        if self.scope == "user":
            return self.user_email or f"user {self.user_id}"
        if self.scope == "team":
            return f"team {self.team_name}"
        return f"API key {self.api_key_id}"


MAX_BUDGET_CREDITS = 2**31 - 1  # as the command line bounds --credits (and a key's monthly credits)


def thresholds_of(values: Iterable[Any] | str | None) -> tuple[int, ...]:
    """Alert thresholds in percent: whole numbers from 1 to 1000, at most ten; sorted and deduplicated. Text is as
    a person types them: "50, 80, 100" (blank: no alerts)."""
    if values is None:
        return DEFAULT_THRESHOLDS
    if isinstance(values, str):
        parts = [p.strip() for p in values.split(",")] if values.strip() else []
        if "" in parts:  # "50,,80" or "50," : a slip, not a threshold left out on purpose
            raise InvalidInputError(
                f"Alert thresholds are whole percents separated by commas, such as 50, 80, 100: {values!r} has an "
                "empty one."
            )
        bad = next((p for p in parts if not (p.isascii() and p.lstrip("-").isdigit())), None)
        if bad is not None:
            raise InvalidInputError(
                f"Alert thresholds are whole percents separated by commas, such as 50, 80, 100: {bad!r} is not one."
            )
        values = [int(p) for p in parts]
    out: set[int] = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
            raise InvalidInputError(f"A threshold is a whole percent from 1 to 1000 (e.g. 50, 80, 100), got {v!r}.")
        out.add(v)
    if len(out) > MAX_THRESHOLDS:
        raise InvalidInputError(f"A budget has at most {MAX_THRESHOLDS} alert thresholds.")
    return tuple(sorted(out))


def _choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise InvalidInputError(f"Unknown {what} {value!r}; choose one of: {', '.join(choices)}.")
    return value


class BudgetBook:
    """Budgets on one database; its reads compute each budget's period in the settings' reporting time zone."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self.settings = settings
        self._sql = BudgetSQL(self.engine.dialect.name)

    # ---- writes --------------------------------------------------------------------------------------------------
    def set(
        self,
        *,
        user: int | str | None = None,
        team: int | str | None = None,
        api_key_id: int | None = None,
        credits: int,
        period: str = "monthly",
        enforcement: str = "hard",
        thresholds: Iterable[int] | None = None,
        name: str | None = None,
        starts_at: datetime | None = None,
        actor: str = "system",
    ) -> BudgetView:
        """Create the budget of a user, a team or an API key for `period`, or change it if it exists (its spend
        this period stays). `starts_at` (naive UTC, default now) is when a one-off budget starts counting."""
        if sum(x is not None for x in (user, team, api_key_id)) != 1:
            raise InvalidInputError("A budget covers exactly one of: a user, a team or an API key.")
        if api_key_id is not None and (isinstance(api_key_id, bool) or not isinstance(api_key_id, int)):
            raise InvalidInputError(f"An API key is given by its id (a whole number), got {api_key_id!r}.")
        limit = inputs.credits(credits, "A budget")
        if limit > MAX_BUDGET_CREDITS:  # the command line's bound: every door takes the same limits
            raise InvalidInputError(f"A budget's limit is at most {MAX_BUDGET_CREDITS:,} credits, got {limit:,}.")
        _choice(period, PERIODS, "period")
        _choice(enforcement, BUDGET_ENFORCEMENTS, "enforcement")
        levels = list(thresholds_of(thresholds))
        label = inputs.text(name, "A budget's name", required=False, limit=MAX_NAME)
        if label:
            check_line(label, "A budget's name")  # shown on one line: tables, banners, alerts
        if starts_at is not None and period != "once":
            raise InvalidInputError("Only a one-off budget has a start; a monthly budget follows the calendar.")
        now = utcnow()
        with ledger_locked(self.engine, self._sql) as conn:
            if self._sql.dialect == "postgresql":  # one budget per scope and period: serialise budget writes
                conn.exec_driver_sql("LOCK TABLE budgets IN SHARE ROW EXCLUSIVE MODE")
            scope, cond, default_name = self._scope(conn, user, team, api_key_id)
            existing = conn.execute(
                select(budgets.c.id).where(cond, budgets.c.period == period, budgets.c.removed_at.is_(None))
            ).scalar()
            values = {"credits": limit, "enforcement": enforcement, "thresholds": levels}
            if existing is not None:
                if label:
                    values["name"] = label
                if starts_at is not None:
                    raise InvalidInputError(
                        f"Budget {existing} already counts from its start; remove it and set a new one to restart it."
                    )
                conn.execute(update(budgets).where(budgets.c.id == existing).values(updated_at=now, **values))
                budget_id = existing
            else:
                budget_id = conn.execute(
                    insert(budgets)
                    .values(
                        name=label or default_name,
                        scope=scope,
                        user_id=user_row(conn, user)[0] if user is not None else None,
                        team_id=team_row(conn, team)[0] if team is not None else None,
                        api_key_id=api_key_id,
                        period=period,
                        starts_at=starts_at or now,
                        created_at=now,
                        created_by=actor,
                        **values,
                    )
                    .returning(budgets.c.id)
                ).scalar_one()
            self._sql.ensure_periods(conn, [budget_id], now, self.settings.tz)
            write_audit(
                conn,
                actor=actor,
                action="budgets.set",
                target=default_name,
                details={"budget_id": budget_id, "period": period, **values},
            )
        return self.get(budget_id)

    def remove(self, budget_id: int, *, actor: str = "system") -> BudgetView:
        """Stop a budget: it no longer limits or alerts; its history stays."""
        with ledger_locked(self.engine, self._sql) as conn:
            row = conn.execute(select(budgets.c.name, budgets.c.removed_at).where(budgets.c.id == budget_id)).first()
            if row is None or row.removed_at is not None:
                raise UnknownBudgetError(f"No budget {budget_id} in force; `python -m core budgets list` shows them.")
            conn.execute(update(budgets).where(budgets.c.id == budget_id).values(removed_at=utcnow(), removed_by=actor))
            write_audit(conn, actor=actor, action="budgets.remove", target=row.name, details={"budget_id": budget_id})
        return self.get(budget_id)

    def _scope(
        self, conn: Connection, user: int | str | None, team: int | str | None, api_key_id: int | None
    ) -> tuple[str, Any, str]:
        if user is not None:
            uid, email = user_row(conn, user)
            return "user", budgets.c.user_id == uid, email
        if team is not None:
            tid, name = team_row(conn, team)
            return "team", budgets.c.team_id == tid, f"team {name}"
        known = (
            conn.execute(select(ApiKey.id, ApiKey.revoked_at).where(ApiKey.id == api_key_id)).first()
            if api_key_id < 2**31
            else None
        )
        if known is None:
            raise NotFoundError(f"No API key {api_key_id}; `python -m core keys list` shows the keys and their ids.")
        if known.revoked_at is not None:
            raise InvalidInputError(
                f"API key {api_key_id} is revoked: no call can spend with it, so it needs no budget."
            )
        return "api_key", budgets.c.api_key_id == api_key_id, f"API key {api_key_id}"

    # ---- reads ---------------------------------------------------------------------------------------------------
    def get(self, budget_id: int) -> BudgetView:
        found = self.list_budgets(include_removed=True, budget_ids=[budget_id])
        if not found:
            raise UnknownBudgetError(f"No budget {budget_id}; `python -m core budgets list` shows them.")
        return found[0]

    def list_budgets(
        self,
        *,
        include_removed: bool = False,
        budget_ids: Sequence[int] | None = None,
        covering_user: int | str | None = None,
        team: int | str | None = None,
    ) -> list[BudgetView]:
        """Budgets with where they stand now; `covering_user`: those that cover that user's calls (their own and
        their team's); `team`: that team's."""
        now = utcnow()
        with read_transaction(self.engine) as conn:
            stmt = (
                select(budgets, users.c.email, teams.c.name.label("team_name"))
                .outerjoin(users, users.c.id == budgets.c.user_id)
                .outerjoin(teams, teams.c.id == budgets.c.team_id)
                .order_by(budgets.c.id)
            )
            if not include_removed:
                stmt = stmt.where(budgets.c.removed_at.is_(None))
            if budget_ids is not None:
                stmt = stmt.where(budgets.c.id.in_(list(budget_ids)))
            if covering_user is not None:
                uid = user_row(conn, covering_user)[0]
                team_of = select(members.c.team_id).where(members.c.user_id == uid).scalar_subquery()
                stmt = stmt.where((budgets.c.user_id == uid) | (budgets.c.team_id == team_of))
            if team is not None:
                stmt = stmt.where(budgets.c.team_id == team_row(conn, team)[0])
            rows = conn.execute(stmt).fetchall()
            status = self._sql.status(conn, now) if rows else {}
            return [self._view(conn, r, status[r.id], now) for r in rows]

    def _view(self, conn: Connection, r: Any, st: Any, now: datetime) -> BudgetView:
        tz = self.settings.tz
        if st.counter_id is not None:
            window, spent, alerted = Window(st.period_start, st.period_end), int(st.spent), int(st.alerted_pct)
        else:  # no call this period yet made the counter: read the ledger (what the counter will start from)
            window = current_window(r.period, now, tz, r.starts_at)
            scope_id = {"user": r.user_id, "team": r.team_id, "api_key": r.api_key_id}[r.scope]
            spent, alerted = self._sql.spent(conn, r.scope, scope_id, window), 0
        return BudgetView(
            id=r.id,
            name=r.name,
            scope=r.scope,
            user_id=r.user_id,
            user_email=r.email,
            team_id=r.team_id,
            team_name=r.team_name,
            api_key_id=r.api_key_id,
            credits=int(r.credits),
            period=r.period,
            enforcement=r.enforcement,
            thresholds=tuple(r.thresholds or ()),
            starts_at=r.starts_at,
            created_at=r.created_at,
            created_by=r.created_by,
            removed_at=r.removed_at,
            period_start=window.start,
            period_end=window.end,
            period_label=period_label(window, tz),
            resets_on=resets_on(window, tz),
            spent=spent,
            in_flight=int(st.in_flight),
            alerted_pct=alerted,
        )


__all__ = ["BUDGET_SCOPES", "DEFAULT_THRESHOLDS", "BudgetBook", "BudgetView", "UnknownBudgetError", "thresholds_of"]
