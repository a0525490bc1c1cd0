"""Budgets inside `reserve`: the budgets covering a call, their spend this period and their holds in flight, read
under the lock in the hold's own transaction; and the counters they are read from.

A budget's spend in a period is a counter row in `budget_periods`, moved by the database triggers of migration 0005
in the same transaction as every ledger row that counts (usage and endpoint-uptime debits, refunds of them). So the
check is one read, however long the ledger: on SQLite inside the BEGIN IMMEDIATE that already serialises writers; on
PostgreSQL after locking the counters (in budget order, as the triggers do) so two calls of one team cannot both pass
the limit. A hold counts against every budget that covers it until it is settled (then its debit does) or released.

A counter is made when a period is first needed (`ensure_periods`): it starts from the ledger's spend so far in the
period (the SPENT_* scan below, which follows the triggers' rules), read while no ledger row can be written (SQLite:
the write lock; PostgreSQL: a SHARE lock on credit_transactions, which waits for writers in flight and holds new
ones until the counter is committed). Monthly budgets get next month's counter at the same time, so the month's
first call rarely takes that lock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, DateTime, Engine, Integer, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.billing.budget_periods import Window, period_label, resets_on, windows_to_prepare
from core.billing.errors import BudgetExceededError
from core.billing.ledger_sql import write_engine, write_transaction
from core.db.models import Budget, BudgetPeriod

budgets = Budget.__table__
periods = BudgetPeriod.__table__

# The budgets in force at :now that cover a call of user {uid} (through key :api_key_id, or NULL): the user's own,
# their team's, the key's (a one-off budget is in force from its start). accounts_sql.py asks whether any exists in
# the statement that reads the account, so a call no budget covers pays nothing more.
COVERS_USER = (
    "b.removed_at IS NULL AND (b.period = 'monthly' OR b.starts_at <= :now) AND (b.user_id = {uid}"
    " OR b.team_id = (SELECT m.team_id FROM team_members m WHERE m.user_id = {uid})"
    " OR b.api_key_id = :api_key_id)"
)
COVERS = COVERS_USER.format(uid=":uid")
_IN_FLIGHT = (
    "CASE b.scope"
    " WHEN 'user' THEN (SELECT COALESCE(SUM(h.credits), 0) FROM credit_holds h"
    "  WHERE h.user_id = b.user_id AND h.status = 'held' AND h.expires_at > :now)"
    " WHEN 'team' THEN (SELECT COALESCE(SUM(h.credits), 0) FROM team_members m JOIN credit_holds h"
    "  ON h.user_id = m.user_id WHERE m.team_id = b.team_id AND h.status = 'held' AND h.expires_at > :now)"
    " ELSE (SELECT COALESCE(SUM(h.credits), 0) FROM credit_holds h"
    "  WHERE h.api_key_id = b.api_key_id AND h.status = 'held' AND h.expires_at > :now) END"
)
_STATE = (
    "SELECT b.id, b.name, b.scope, b.credits, b.period, b.enforcement, b.starts_at,"  # noqa: S608 - constant SQL
    " p.id, p.spent, p.period_start, p.period_end, " + _IN_FLIGHT + " FROM budgets b LEFT JOIN budget_periods p"
    " ON p.budget_id = b.id AND p.period_start <= :now AND p.period_end > :now WHERE " + COVERS + " ORDER BY b.id"
)
# PostgreSQL: the covering counters are locked in budget order (the triggers lock in the same order) by the statement
# that locks the account (accounts_sql.py), then read by a later statement, so the holds it sums include every hold
# committed before the locks were granted. {uid}: the user's id or a subquery giving it.
LOCK_COUNTERS_PG = (
    "SELECT p.id FROM budget_periods p JOIN budgets b ON b.id = p.budget_id"  # noqa: S608 - constant SQL
    " WHERE " + COVERS_USER + " AND p.period_start <= :now AND p.period_end > :now ORDER BY p.budget_id FOR UPDATE OF p"
)

# The ledger rows a budget counts, in [start, end), by the triggers' rules: -t.amount is the spend of each (a refund's
# negative). {refund_of}: the refunded transaction's id, per dialect; h: the hold a debit settled (its API key).
_COUNTED = """
FROM credit_transactions t
LEFT JOIN credit_transactions o ON t.transaction_type = 'refund' AND o.id = {refund_of}
LEFT JOIN credit_holds h ON h.user_id = t.user_id AND h.idempotency_key = COALESCE(o.idempotency_key, t.idempotency_key)
WHERE t.created_at >= :start AND t.created_at < :end
  AND (t.transaction_type IN ('usage', 'endpoint_uptime')
       OR (t.transaction_type = 'refund' AND o.transaction_type IN ('usage', 'endpoint_uptime')))
  AND {scope}
"""
_SPENT = "SELECT COALESCE(SUM(-t.amount), 0) " + _COUNTED
# The same per user and UTC quarter hour (every time zone's offset is a whole number of quarter hours), so callers can
# sum it into local days: budget burn-down charts and the burn rate of the low-balance alert.
_SERIES = "SELECT t.user_id, {quarter} AS quarter, SUM(-t.amount) " + _COUNTED + " GROUP BY t.user_id, {quarter}"
_QUARTER = {
    "sqlite": "substr(t.created_at, 1, 14) || printf('%02d', CAST(substr(t.created_at, 15, 2) AS INTEGER) / 15 * 15)",
    "postgresql": "date_trunc('hour', t.created_at)"
    " + floor(extract(minute FROM t.created_at) / 15) * interval '15 minutes'",
}
REFUND_OF = {
    "sqlite": "CAST(json_extract(t.metadata, '$.refund_of') AS INTEGER)",
    "postgresql": "CAST(t.metadata ->> 'refund_of' AS BIGINT)",
}
_SCOPE = {
    "user": "t.user_id = :scope_id",
    "team": "t.user_id IN (SELECT user_id FROM team_members WHERE team_id = :scope_id)",
    "api_key": "h.api_key_id = :scope_id",
    "all": ":scope_id IS NULL",  # every user (series only)
}
# Every budget's counter for the period containing :now (if made) and its holds in flight: what a budget list shows.
_STATUS = (
    text(
        "SELECT b.id, p.id AS counter_id, p.spent, p.period_start, p.period_end, p.alerted_pct, "  # noqa: S608
        + _IN_FLIGHT
        + " AS in_flight FROM budgets b LEFT JOIN budget_periods p"
        " ON p.budget_id = b.id AND p.period_start <= :now AND p.period_end > :now"
    )
    .bindparams(bindparam("now", type_=DateTime()))
    .columns(period_start=DateTime(), period_end=DateTime())
)
_SPENT_BINDS = (
    bindparam("start", type_=DateTime()),
    bindparam("end", type_=DateTime()),
    bindparam("scope_id", type_=Integer()),
)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget covering a call, as read under the lock: its spend this period and its holds in flight."""

    budget_id: int
    name: str
    scope: str  # user | team | api_key
    credits: int  # the limit
    period: str  # monthly | once
    enforcement: str  # hard | soft
    starts_at: datetime
    counter_id: int | None  # None: no counter for the current period yet (ensure_periods makes it)
    spent: int
    period_start: datetime | None
    period_end: datetime | None
    in_flight: int  # credits held by open holds this budget covers

    @property
    def left(self) -> int:
        return self.credits - self.spent - self.in_flight


class MissingBudgetPeriods(Exception):
    """Some covering budget has no counter for the current period yet: make it (`ensure_periods`), then retry."""

    def __init__(self, budget_ids: list[int]) -> None:
        super().__init__(budget_ids)
        self.budget_ids = budget_ids


class BudgetSQL:
    """The budget statements of `reserve`, rendered for one database, sent on the driver connection (the ledger's hot
    path does the same: see accounts_sql.py)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        sql = {"state": _STATE, "lock": LOCK_COUNTERS_PG.format(uid=":uid")}
        self.sql = sql if self.sqlite else {k: re.sub(r":(\w+)", r"%(\1)s", v) for k, v in sql.items()}
        self.spent_sql = {
            scope: text(_SPENT.format(refund_of=REFUND_OF[dialect], scope=cond)).bindparams(*_SPENT_BINDS)
            for scope, cond in _SCOPE.items()
        }
        self.series_sql = {
            scope: text(_SERIES.format(refund_of=REFUND_OF[dialect], scope=cond, quarter=_QUARTER[dialect])).bindparams(
                *_SPENT_BINDS
            )
            for scope, cond in _SCOPE.items()
        }

    def states(
        self, conn: Connection, user_id: int, api_key_id: int | None, now: datetime, *, locked: int | None = None
    ) -> list[BudgetState]:
        """The budgets covering a call, read in the transaction that locked their counters (on PostgreSQL the
        statement that locked the account locked `locked` counters; on SQLite the writer holds the database lock).

        A counter made after that statement's snapshot was not locked by it: it is locked here, and the state read
        again, so two calls can never both read a counter unlocked (this happens only at a period's first calls)."""
        db = conn.connection.driver_connection
        stamp = now.isoformat(sep=" ", timespec="microseconds") if self.sqlite else now
        params = {"uid": user_id, "api_key_id": api_key_id, "now": stamp}
        found = self._read_states(db, params)
        if not self.sqlite and sum(s.counter_id is not None for s in found) > (locked or 0):
            db.execute(self.sql["lock"], params)
            found = self._read_states(db, params)
        return found

    def _read_states(self, db: Any, params: dict[str, Any]) -> list[BudgetState]:
        return [
            BudgetState(
                budget_id=r[0],
                name=r[1],
                scope=r[2],
                credits=int(r[3]),
                period=r[4],
                enforcement=r[5],
                starts_at=_datetime(r[6]),
                counter_id=r[7],
                spent=int(r[8] or 0),
                period_start=None if r[9] is None else _datetime(r[9]),
                period_end=None if r[10] is None else _datetime(r[10]),
                in_flight=int(r[11]),
            )
            for r in db.execute(self.sql["state"], params).fetchall()
        ]

    def spent(self, conn: Connection, scope: str, scope_id: int, window: Window) -> int:
        """A scope's spend in `window`, read from the ledger (what a new counter starts from)."""
        params = {"start": window.start, "end": window.end, "scope_id": scope_id}
        return int(conn.execute(self.spent_sql[scope], params).scalar_one())

    def series(
        self, conn: Connection, scope: str, scope_id: int | None, start: datetime, end: datetime
    ) -> list[tuple[int, datetime, int]]:
        """(user id, UTC quarter hour, credits spent) in [start, end) for a scope, or every user (scope "all")."""
        params = {"start": start, "end": end, "scope_id": scope_id}
        return [
            (int(uid), _datetime(quarter), int(credits))
            for uid, quarter, credits in conn.execute(self.series_sql[scope], params)
        ]

    def status(self, conn: Connection, now: datetime) -> dict[int, Any]:
        """Budget id -> its current counter (counter_id, spent, period_start, period_end, alerted_pct; None when not
        made yet) and in_flight, for every budget."""
        return {r.id: r for r in conn.execute(_STATUS, {"now": now})}

    def lock_ledger(self, conn: Connection) -> None:
        """Hold every ledger write until this transaction ends (SQLite: BEGIN IMMEDIATE already does)."""
        if not self.sqlite:
            conn.exec_driver_sql("LOCK TABLE credit_transactions IN SHARE MODE")

    def ensure_periods(self, conn: Connection, budget_ids: list[int], now: datetime, tz: ZoneInfo) -> int:
        """Make the missing counters of these budgets' current (and, monthly, next) period, from the ledger's spend
        so far. Safe to repeat and to run from two processes at once. Returns how many counters were made."""
        self.lock_ledger(conn)
        rows = conn.execute(budgets.select().where(budgets.c.id.in_(budget_ids), budgets.c.removed_at.is_(None)))
        made = 0
        for b in rows:
            for window in windows_to_prepare(b.period, now, tz, b.starts_at):
                made += self._insert_counter(conn, b, window)
        return made

    def _insert_counter(self, conn: Connection, b: Any, window: Window) -> int:
        scope_id = {"user": b.user_id, "team": b.team_id, "api_key": b.api_key_id}[b.scope]
        values = {
            "budget_id": b.id,
            "period_start": window.start,
            "period_end": window.end,
            "spent": self.spent(conn, b.scope, scope_id, window),
            "alerted_pct": 0,
        }
        insert = sqlite_insert(periods) if self.sqlite else pg_insert(periods)
        stmt = insert.values(**values).on_conflict_do_nothing(index_elements=["budget_id", "period_start"])
        # counted by RETURNING, not rowcount: the PostgreSQL driver gave -1 there (`alerts run` said -13 made)
        return 1 if conn.execute(stmt.returning(periods.c.id)).first() is not None else 0

    def rebase(self, conn: Connection, budget_rows: list[Any], now: datetime) -> None:
        """Recount the open periods' counters of these budgets from the ledger (after a team's members changed, so
        a team's spend is always its current members' spend, as the Spend analytics group it). The caller holds
        `lock_ledger`."""
        for b in budget_rows:
            scope_id = {"user": b.user_id, "team": b.team_id, "api_key": b.api_key_id}[b.scope]
            for p in conn.execute(
                periods.select().where(periods.c.budget_id == b.id, periods.c.period_end > now)
            ).fetchall():
                spent = self.spent(conn, b.scope, scope_id, Window(p.period_start, p.period_end))
                conn.execute(periods.update().where(periods.c.id == p.id).values(spent=spent))


def _datetime(value: Any) -> datetime:
    # SQLite hands back DateTime columns as their stored text.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def enforce(states: list[BudgetState], amount: int, tz: ZoneInfo, now: datetime) -> None:
    """Refuse a hold of `amount` credits that would take any hard budget past its limit (spend this period plus
    holds in flight); a soft budget never refuses. Raises MissingBudgetPeriods when a counter must be made first."""
    missing = [s.budget_id for s in states if s.counter_id is None]
    if missing:
        raise MissingBudgetPeriods(missing)
    if amount <= 0:  # a call that holds nothing (sandbox, dedicated endpoint) passes even a used-up budget
        return
    for s in states:
        if s.enforcement == "hard" and amount > s.left:
            window = Window(s.period_start or now, s.period_end or now)
            raise BudgetExceededError(
                budget_id=s.budget_id,
                budget=f"{s.name}, {period_label(window, tz)}",
                limit=s.credits,
                left=max(s.left, 0),
                needed=amount,
                resets_on=resets_on(window, tz),
                period_start=window.start,
                period_end=window.end,
            )


@contextmanager
def ledger_locked(engine: Engine, sql: BudgetSQL) -> Iterator[Connection]:
    """A write transaction during which no ledger row can be written: for changes that move budget counters (a
    new budget, a team's members), so each counter is recounted from a ledger that stands still."""
    with write_transaction(write_engine(engine)) as conn:
        sql.lock_ledger(conn)
        yield conn
