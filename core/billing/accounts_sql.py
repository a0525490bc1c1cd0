"""The ledger's hot path: lock an account, read its state, append a ledger row, move the cached balance.

Every write of the ledger (charge, settle, grant, reserve, refund) runs these statements, so they go straight to the
DB-API cursor of the SQLAlchemy connection, inside the transaction SQLAlchemy began (and commits or rolls back):
SQLAlchemy's per-statement work (compile cache lookup, parameter and result processing) costs ~5x the SQLite
statement itself (measured: 750 charges/s through Core statements against 1,900/s this way, on one thread).
The SQL is written once with :name parameters and rendered for each driver's parameter style; values are converted
exactly as SQLAlchemy's column types store them (SQLite: naive UTC "YYYY-MM-DD HH:MM:SS.ffffff" text, JSON text,
Numeric as REAL), so rows written here read back identically through the ORM.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql

from core.billing.budget_sql import COVERS_USER, LOCK_COUNTERS_PG
from core.billing.types import Hold, Transaction
from core.db.models import AIUsageLog
from core.redaction import redact_value

MARKUP_PLACES = Decimal("0.0001")  # users.developer_markup_pct is Numeric(9, 4)

_ACCOUNT = "SELECT id, email, credit_balance, developer_markup_pct FROM users WHERE {where}"
# PostgreSQL's account lock. Not FOR UPDATE: that also blocks the foreign-key checks (FOR KEY SHARE) of rows that
# name the user (a budget, a team membership, a released call's usage row), whose writers may hold what a ledger
# writer needs next (the SHARE lock on credit_transactions of `ledger_locked`, the hold row): a deadlock. Ledger
# writers still exclude each other, and the balance update itself takes this lock. (The one-statement settle keeps
# FOR UPDATE: it locks and updates the row in one command, and a key-share lock taken between the two made it wait for
# its own row behind the writers queued for it, a deadlock; with FOR UPDATE no key-share lock gets in between.)
_LOCK_PG = " FOR NO KEY UPDATE"
_STATE = (
    "SELECT COALESCE(SUM(credits), 0),"
    " (SELECT id FROM credit_transactions WHERE user_id = {uid} AND idempotency_key = :key)"
    " FROM credit_holds WHERE user_id = {uid} AND status = 'held' AND expires_at > :now"
)
# SQLite only: BEGIN IMMEDIATE already serialises writers, so the account and its state are one read.
_ACCOUNT_WITH_STATE = (
    "SELECT u.id, u.email, u.credit_balance, u.developer_markup_pct,"
    " (SELECT COALESCE(SUM(h.credits), 0) FROM credit_holds h"
    "  WHERE h.user_id = u.id AND h.status = 'held' AND h.expires_at > :now),"
    " (SELECT t.id FROM credit_transactions t WHERE t.user_id = u.id AND t.idempotency_key = :key)"
    " FROM users u WHERE {where}"
)
_INSERT_TX = (
    "INSERT INTO credit_transactions"
    " (created_at, user_id, amount, transaction_type, description, idempotency_key, balance_after, metadata)"
    " VALUES (:created_at, :user_id, :amount, :kind, :description, :key, :balance_after, :metadata) RETURNING id"
)
_SET_BALANCE = "UPDATE users SET credit_balance = :balance WHERE id = :uid"
# Accrual rounding only (read and written under the account's lock, in the settle transaction).
_REMAINDER = "SELECT credit_remainder_nano FROM users WHERE id = :uid"
_SET_REMAINDER = "UPDATE users SET credit_remainder_nano = :remainder WHERE id = :uid"
# PostgreSQL: the ledger row and the cached balance in one statement (one round trip instead of two).
_POST_PG = (
    "WITH tx AS (" + _INSERT_TX + ")"  # noqa: S608 - constant SQL, values are bound parameters
    " UPDATE users SET credit_balance = :balance FROM tx WHERE users.id = :uid RETURNING tx.id"
)

# settle: the hold, its account (locked), the account's held credits, any transaction already under the hold's key, and
# whether the usage's model is in the catalog. The held sum counts this hold too (it is still 'held').
_HOLD_STATE = (
    "h.credits, h.idempotency_key, h.status, h.expires_at, h.expires_at > :now,"
    " (SELECT COALESCE(SUM(o.credits), 0) FROM credit_holds o"
    "  WHERE o.user_id = h.user_id AND o.status = 'held' AND o.expires_at > :now),"
    " (SELECT t.id FROM credit_transactions t WHERE t.user_id = h.user_id AND t.idempotency_key = h.idempotency_key),"
    " EXISTS (SELECT 1 FROM ai_models m WHERE m.id = :model_id)"
)
# SQLite: BEGIN IMMEDIATE already holds the write lock, so the hold and the account are one read.
_SETTLE_STATE_SQLITE = (
    "SELECT u.id, u.email, u.credit_balance, u.developer_markup_pct, "  # noqa: S608 - constant SQL
    + _HOLD_STATE
    + " FROM credit_holds h JOIN users u ON u.id = h.user_id WHERE h.id = :hold_id"
)
# Every column of ai_usage_log but its id, from the ORM model: a new column is written here (and `usage_values` must
# give it) without anyone editing this file.
_USAGE_COLUMNS = tuple(c.name for c in AIUsageLog.__table__.columns if not c.primary_key)
_INSERT_USAGE = (
    "INSERT INTO ai_usage_log (" + ", ".join(_USAGE_COLUMNS) + ")"  # noqa: S608 - constant SQL
    " VALUES (" + ", ".join(f":{c}" for c in _USAGE_COLUMNS) + ") RETURNING id"
)
# SQLite binds a row of ~35 values by position ~5 us faster than by name (each name is looked up in the dict).
_INSERT_USAGE_BY_POSITION = (
    "INSERT INTO ai_usage_log (" + ", ".join(_USAGE_COLUMNS) + ")"  # noqa: S608 - constant SQL
    " VALUES (" + ", ".join("?" for _ in _USAGE_COLUMNS) + ") RETURNING id"
)
_USAGE_IN_ORDER = operator.itemgetter(*_USAGE_COLUMNS)
_LINK_USAGE = "UPDATE ai_usage_log SET transaction_id = :tx_id WHERE id = :usage_id"
_CLOSE_HOLD = (
    "UPDATE credit_holds SET status = 'settled', transaction_id = :tx_id"
    " WHERE id = :hold_id AND status IN ('held', 'expired')"
)
# Expired holds of one account are marked so on every reserve (they already stopped counting as held).
_EXPIRE_USER_HOLDS = (
    "UPDATE credit_holds SET status = 'expired' WHERE user_id = :uid AND status = 'held' AND expires_at <= :now"
)

# reserve: the account, its held credits and the hold already under the key, if any (unique per user and key).
_HELD_OF = (
    "(SELECT COALESCE(SUM(o.credits), 0) FROM credit_holds o WHERE o.user_id = {uid} AND o.status = 'held'"
    " AND o.expires_at > :now)"
)
# ... and whether any budget covers the call (then reserve checks them: budget_sql.py).
_HOLD_COLUMNS = "h.id, h.credits, h.status, h.created_at, h.expires_at, h.api_key_id"
_BUDGETED = "EXISTS (SELECT 1 FROM budgets b WHERE " + COVERS_USER + ")"  # noqa: S608 - constant SQL
_RESERVE_STATE_SQLITE = (
    "SELECT u.id, u.email, u.credit_balance, u.developer_markup_pct, "  # noqa: S608 - constant SQL
    + _HELD_OF.format(uid="u.id")
    + ", "
    + _HOLD_COLUMNS
    + ", "
    + _BUDGETED.format(uid="u.id")
    + " FROM users u LEFT JOIN credit_holds h ON h.user_id = u.id AND h.idempotency_key = :key WHERE {where}"
)
_RESERVE_STATE_PG = (
    "SELECT "  # noqa: S608 - constant SQL
    + _HELD_OF
    + ", "
    + _HOLD_COLUMNS
    + ", "
    + _BUDGETED
    + " FROM (SELECT 1) AS one LEFT JOIN credit_holds h ON h.user_id = {uid} AND h.idempotency_key = :key"
)
# PostgreSQL reserve: lock the account and then the budget counters covering the call (in budget order, as the
# ledger's triggers do) in one round trip; the next statement reads the state they protect.
_LOCK_FOR_RESERVE_PG = (
    "WITH acct AS (" + _ACCOUNT + _LOCK_PG + "), counters AS (" + LOCK_COUNTERS_PG + ")"  # noqa: S608 - constant
    " SELECT acct.*, (SELECT count(*) FROM counters) FROM acct"
)
_INSERT_HOLD = (
    "INSERT INTO credit_holds (user_id, credits, idempotency_key, status, created_at, expires_at, api_key_id)"
    " VALUES (:user_id, :credits, :key, 'held', :created_at, :expires_at, :api_key_id) RETURNING id"
)

# PostgreSQL: a hold in one round trip, and a settlement's lock and read in one (the functions of migration 0013).
# SQLite: a hold in one statement, alone in its transaction (its write lock is taken before it reads), when no
# budget covers the call, the API key (if any) is the account's and has no monthly limit, the key has no hold yet and
# the available balance covers it (a hold of 0 always passes): the rules of BillingService.reserve for such a call.
# No row: nothing written, and reserve takes its general path, which says why (or holds after all). The account's
# stale holds are marked expired by the insert's trigger (migration 0014), as the general path's sweep does.
_RESERVE_ONCE_SQLITE = (
    "INSERT INTO credit_holds (user_id, credits, idempotency_key, status, created_at, expires_at, api_key_id)"  # noqa: S608 - constant SQL
    " SELECT u.id, :credits, :key, 'held', :now, :expires, :api_key_id FROM users u"
    " WHERE u.id = :uid AND NOT EXISTS (SELECT 1 FROM budgets b WHERE "
    + COVERS_USER.format(uid="u.id")
    + ") AND (:api_key_id IS NULL OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = :api_key_id"
    " AND k.user_id = u.id AND k.monthly_credits IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM credit_holds o WHERE o.user_id = u.id AND o.idempotency_key = :key)"
    " AND (:credits = 0 OR :credits <= u.credit_balance - "
    + _HELD_OF.format(uid="u.id")
    + ") RETURNING id, (SELECT developer_markup_pct FROM users WHERE users.id = credit_holds.user_id)"
)
_RESERVE_FN_PG = (
    "SELECT * FROM ledger_reserve(CAST(:uid AS integer), CAST(:key AS varchar), CAST(:credits AS bigint),"
    " CAST(:now AS timestamp), CAST(:expires AS timestamp), CAST(:api_key_id AS integer))"
)
_SETTLE_STATE_FN_PG = (
    "SELECT * FROM ledger_settle_state(CAST(:hold_id AS bigint), CAST(:model_id AS integer), CAST(:now AS timestamp))"
)
# PostgreSQL: a settlement's writes in one statement: the usage row, its debit, the cached balance and the hold
# closed. The two rows name each other (the usage row its debit, the debit's metadata the usage row), so their ids are
# drawn from their sequences first. The debit's metadata is the JSON text `post` would write: {"usage_id": N, then
# the rest (:meta_tail, json.dumps of the rest without its opening brace).
_SETTLE_IDS = (
    "WITH ids AS (SELECT nextval(pg_get_serial_sequence('ai_usage_log', 'id')) AS usage_id,"
    " nextval(pg_get_serial_sequence('credit_transactions', 'id')) AS tx_id)"
)
# (without length or scale: an explicit cast to VARCHAR(40) would cut a longer text where the insert refuses it)
_USAGE_CASTS = {
    c.name: re.sub(r"\(.*\)", "", str(c.type.compile(dialect=postgresql.dialect())))
    for c in AIUsageLog.__table__.columns
}
# The usage row of a settlement, written from the drawn ids ({source}: "ids", or "ids, closed" to write it only when
# the hold closed); its values cast to their columns' types, since a SELECT gives its parameters no type of its own.
_SETTLE_USAGE = (
    "u_row AS (INSERT INTO ai_usage_log (id, "  # noqa: S608 - constant SQL
    + ", ".join(c for c in _USAGE_COLUMNS if c != "transaction_id")
    + ", transaction_id) SELECT ids.usage_id, "
    + ", ".join(f"CAST(:{c} AS {_USAGE_CASTS[c]})" for c in _USAGE_COLUMNS if c != "transaction_id")
    + ", {tx_id} FROM {source} RETURNING id)"
)
_SETTLE_WRITE_PG = (
    _SETTLE_IDS + ", " + _SETTLE_USAGE.format(tx_id="ids.tx_id", source="ids") + ","  # noqa: S608 - constant SQL
    " tx AS (INSERT INTO credit_transactions"
    " (id, created_at, user_id, amount, transaction_type, description, idempotency_key, balance_after, metadata)"
    " VALUES ((SELECT tx_id FROM ids), :created_at, :user_id, :amount, 'usage', :description, :key, :balance,"
    " CAST('{\"usage_id\": ' || (SELECT usage_id FROM ids) || ', ' || :meta_tail AS json)) RETURNING id),"
    " bal AS (UPDATE users SET credit_balance = :balance WHERE id = :user_id),"
    " closed AS (UPDATE credit_holds SET status = 'settled', transaction_id = (SELECT tx_id FROM ids)"
    " WHERE id = :hold_id AND status IN ('held', 'expired') RETURNING id)"
    " SELECT usage_id, tx_id, (SELECT count(*) FROM closed), (SELECT count(*) FROM u_row), (SELECT count(*) FROM tx)"
    " FROM ids"
)
_SETTLE_WRITE_FREE_PG = (
    _SETTLE_IDS + ", " + _SETTLE_USAGE.format(tx_id="NULL", source="ids") + ","  # noqa: S608 - constant SQL
    " closed AS (UPDATE credit_holds SET status = 'settled', transaction_id = NULL"
    " WHERE id = :hold_id AND status IN ('held', 'expired') RETURNING id)"
    " SELECT usage_id, NULL, (SELECT count(*) FROM closed), (SELECT count(*) FROM u_row), 1 FROM ids"
)

# PostgreSQL: a whole settlement in one autocommit statement, for an open hold whose account's markup is the one the
# caller priced the call at. Each step feeds the next, so that either all of them happen or none does: the account
# row locked if its markup is still :markup_pct (FOR NO KEY UPDATE, as every ledger statement locks it, reads the row's
# latest version; FOR UPDATE also blocked the foreign-key checks of rows naming the user, and deadlocked with a budget
# alert written after another call's settlement), the hold closed if it is
# still open with its credits, the balance moved (computed on the row's latest version) and the debit posted if the
# hold closed, the usage row written if it closed. It returns no usage row when any condition failed: nothing was
# written, and the caller takes the general path (which says why, or settles an expired hold). A debit under a key
# that already has one, or an unknown model, is refused by the unique index or the foreign key (nothing written).
_SETTLE_ONCE_HEAD = (
    "WITH acct AS MATERIALIZED (SELECT credit_balance, xmin AS locked_version FROM users"  # noqa: S608 - constant SQL
    " WHERE id = :user_id AND developer_markup_pct = :markup_pct FOR NO KEY UPDATE), "
    + _SETTLE_IDS[len("WITH ") : -1]
    + " FROM acct)"  # drawn once the lock is held: ledger ids follow the account's order of writes
    + ", closed AS (UPDATE credit_holds SET status = 'settled', transaction_id = {tx_id}"
    " WHERE id = :hold_id AND user_id = :user_id AND status = 'held' AND expires_at > :now"
    " AND credits = :hold_credits AND EXISTS (SELECT 1 FROM acct) AND NOT EXISTS (SELECT 1 FROM credit_transactions t"
    " WHERE t.user_id = :user_id AND t.idempotency_key = :idempotency_key){unchanged} RETURNING id)"
)
# A free call writes no debit, so the unique index cannot catch a ledger row posted under its key while the statement
# waited for the account's lock, and NOT EXISTS reads the snapshot taken before that wait. Every ledger row moves its
# account's cached balance in the same transaction, so a row committed during the wait left a newer version of the
# account row than the snapshot's: then nothing is written and the general path reads the key under the lock.
_UNCHANGED_SINCE_SNAPSHOT = (
    " AND (SELECT locked_version FROM acct) = (SELECT u.xmin FROM users u WHERE u.id = :user_id)"
)
_SETTLE_ONCE_PG = (
    _SETTLE_ONCE_HEAD.format(tx_id="(SELECT tx_id FROM ids)", unchanged="")  # noqa: S608 - constant SQL
    + ", bal AS (UPDATE users SET credit_balance = credit_balance - :charged"
    " WHERE id = :user_id AND EXISTS (SELECT 1 FROM closed) RETURNING credit_balance AS after),"
    " tx AS (INSERT INTO credit_transactions"
    " (id, created_at, user_id, amount, transaction_type, description, idempotency_key, balance_after, metadata)"
    " SELECT ids.tx_id, CAST(:created_at AS timestamp), CAST(:user_id AS integer), -CAST(:charged AS bigint),"
    " 'usage', CAST(:description AS text), CAST(:key AS varchar), bal.after,"
    " CAST('{\"usage_id\": ' || ids.usage_id || ', ' || CAST(:meta_middle AS text)"
    " || CASE WHEN bal.after < 0 THEN ', \"overdraft\": true}' ELSE '}' END AS json) FROM ids, bal RETURNING id), "
    + _SETTLE_USAGE.format(tx_id="ids.tx_id", source="ids, closed")
    + " SELECT (SELECT id FROM u_row), ids.tx_id, (SELECT after FROM bal) FROM ids"
)
_SETTLE_ONCE_FREE_PG = (
    _SETTLE_ONCE_HEAD.format(tx_id="NULL", unchanged=_UNCHANGED_SINCE_SNAPSHOT)  # noqa: S608 - constant SQL
    + ", "
    + _SETTLE_USAGE.format(tx_id="NULL", source="ids, closed")
    + " SELECT (SELECT id FROM u_row), NULL, (SELECT credit_balance FROM acct) FROM ids"
)

# PostgreSQL charge without overdraft: after the lock, read the state and post only if the key is unused and the
# available balance covers the amount, in one statement (its snapshot is taken after the lock was granted, so it sees
# every hold committed before). :balance is the balance after the debit: held <= balance - amount.
_CHARGE_IF_AVAILABLE_PG = (
    "WITH s AS (SELECT"
    " (SELECT COALESCE(SUM(credits), 0) FROM credit_holds"
    "  WHERE user_id = :uid AND status = 'held' AND expires_at > :now) AS held,"
    " (SELECT id FROM credit_transactions WHERE user_id = :uid AND idempotency_key = :key) AS existing),"
    " tx AS (INSERT INTO credit_transactions"
    " (created_at, user_id, amount, transaction_type, description, idempotency_key, balance_after, metadata)"
    " SELECT CAST(:created_at AS timestamp), CAST(:uid AS integer), CAST(:amount AS bigint), CAST(:kind AS varchar),"
    " CAST(:description AS text), CAST(:key AS varchar), CAST(:balance AS bigint), CAST(:metadata AS json)"
    " FROM s WHERE s.existing IS NULL AND s.held <= CAST(:balance AS bigint) RETURNING id),"
    " upd AS (UPDATE users SET credit_balance = :balance FROM tx WHERE users.id = :uid RETURNING tx.id)"
    " SELECT (SELECT id FROM upd), s.held, s.existing FROM s"
)


@dataclass(frozen=True, slots=True)
class HoldState:
    """A hold being settled, read with its account under the account's lock."""

    account: Account
    credits: int
    idempotency_key: str
    status: str
    expires_at: datetime
    open: bool  # not past its expiry
    model_known: bool


@dataclass(frozen=True, slots=True)
class Account:
    """One user's account row, read under the lock, with the held credits and any transaction already posted
    under the operation's idempotency key."""

    id: int
    email: str
    balance: int
    markup: Decimal
    held: int
    existing_tx_id: int | None

    @property
    def available(self) -> int:
        return self.balance - self.held


class AccountsSQL:
    """The hot-path statements rendered for one database (SQLite or PostgreSQL)."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self._last_time: tuple[datetime | None, str] = (None, "")
        lock = "" if self.sqlite else _LOCK_PG
        sql = {
            "lock_id": _ACCOUNT.format(where="id = :uid") + lock,
            "lock_email": _ACCOUNT.format(where="email = :email") + lock,
            "state_id": _STATE.format(uid=":uid"),
            "state_email": _STATE.format(uid="(SELECT id FROM users WHERE email = :email)"),
            "account_state_id": _ACCOUNT_WITH_STATE.format(where="u.id = :uid"),
            "account_state_email": _ACCOUNT_WITH_STATE.format(where="u.email = :email"),
            "insert_tx": _INSERT_TX,
            "set_balance": _SET_BALANCE,
            "post_pg": _POST_PG,
            "settle_state": _SETTLE_STATE_SQLITE,
            "reserve_state_id": _RESERVE_STATE_SQLITE.format(where="u.id = :uid"),
            "reserve_state_email": _RESERVE_STATE_SQLITE.format(where="u.email = :email"),
            "reserve_state_pg_id": _RESERVE_STATE_PG.format(uid=":uid"),
            "reserve_state_pg_email": _RESERVE_STATE_PG.format(uid="(SELECT id FROM users WHERE email = :email)"),
            "lock_reserve_id": _LOCK_FOR_RESERVE_PG.format(where="id = :uid", uid=":uid"),
            "lock_reserve_email": _LOCK_FOR_RESERVE_PG.format(
                where="email = :email", uid="(SELECT id FROM users WHERE email = :email)"
            ),
            "insert_hold": _INSERT_HOLD,
            "charge_if_available_pg": _CHARGE_IF_AVAILABLE_PG,
            "insert_usage": _INSERT_USAGE,
            "link_usage": _LINK_USAGE,
            "close_hold": _CLOSE_HOLD,
            "expire_user_holds": _EXPIRE_USER_HOLDS,
            "remainder": _REMAINDER,
            "set_remainder": _SET_REMAINDER,
            "pg_reserve_fn": _RESERVE_FN_PG,
            "pg_settle_state_fn": _SETTLE_STATE_FN_PG,
            "pg_settle_write": _SETTLE_WRITE_PG,
            "pg_settle_write_free": _SETTLE_WRITE_FREE_PG,
            "pg_settle_once": _SETTLE_ONCE_PG,
            "pg_settle_once_free": _SETTLE_ONCE_FREE_PG,
        }
        if self.sqlite:
            sql["sqlite_reserve_once"] = _RESERVE_ONCE_SQLITE
        # sqlite3 takes :name as it is; psycopg wants %(name)s.
        self.sql = sql if self.sqlite else {k: re.sub(r":(\w+)", r"%(\1)s", v) for k, v in sql.items()}

    def _time(self, value: datetime) -> Any:
        # SQLAlchemy's SQLite DateTime storage format (always six fractional digits), so text comparisons order.
        if not self.sqlite:
            return value
        # A write transaction names its one `now` in three statements: the text is made once. (One tuple, replaced
        # whole, so a thread reads a time and its own text, never another thread's.)
        last = self._last_time
        if last[0] is value:
            return last[1]
        text = value.isoformat(sep=" ", timespec="microseconds")
        self._last_time = (value, text)
        return text

    def lock_account(
        self, conn: Connection, by: str, params: dict[str, Any], key: str | None, now: datetime
    ) -> Account | None:
        """Lock the account (PostgreSQL: FOR NO KEY UPDATE on its row; SQLite: the transaction's BEGIN IMMEDIATE already
        holds the write lock) and read its held credits and the transaction posted under `key`, if any.

        On PostgreSQL the state is read by a second statement: a statement that waited for the row lock reads its
        subqueries from the snapshot taken before the wait, which may miss a hold committed meanwhile. They are sent
        one after the other, not in a psycopg pipeline: on a loopback or LAN connection the pipeline's bookkeeping cost
        more CPU than the round trip it saves (measured: ~0.2 ms CPU per charge more, and fewer charges/s at 8 threads).
        Returns None when there is no such user.
        """
        db = conn.connection.driver_connection
        if self.sqlite:
            row = db.execute(self.sql[f"account_state_{by}"], {**params, "key": key, "now": self._time(now)}).fetchone()
            if row is None:
                return None
            return Account(row[0], row[1], int(row[2]), _markup(row[3]), int(row[4]), row[5])
        row = db.execute(self.sql[f"lock_{by}"], params).fetchone()
        if row is None:
            return None
        held, existing = db.execute(self.sql[f"state_{by}"], {**params, "key": key, "now": now}).fetchone()
        return Account(row[0], row[1], int(row[2]), _markup(row[3]), int(held), existing)

    def lock_only(self, conn: Connection, by: str, params: dict[str, Any]) -> Account | None:
        """PostgreSQL: lock the account row and read it (held credits and key not read: see charge_if_available)."""
        row = conn.connection.driver_connection.execute(self.sql[f"lock_{by}"], params).fetchone()
        if row is None:
            return None
        return Account(row[0], row[1], int(row[2]), _markup(row[3]), 0, None)

    def charge_if_available(
        self,
        conn: Connection,
        acct: Account,
        *,
        amount: int,
        kind: str,
        description: str,
        key: str,
        now: datetime,
        metadata: dict[str, Any],
    ) -> tuple[Transaction | None, int, int | None]:
        """PostgreSQL, on an account `lock_only` locked: debit `amount` unless the key already has a transaction or
        the available balance does not cover it, in one statement. Returns (the debit or None, held credits, the
        key's existing transaction id)."""
        balance_after = acct.balance - amount
        params = {
            "created_at": now,
            "uid": acct.id,
            "amount": -amount,
            "kind": kind,
            "description": redact_value(description),
            "key": key,
            "balance": balance_after,
            "now": now,
            "metadata": json.dumps(redact_value(metadata)),
        }
        tx_id, held, existing = conn.connection.driver_connection.execute(
            self.sql["charge_if_available_pg"], params
        ).fetchone()
        tx = None
        if tx_id is not None:
            tx = Transaction(
                id=tx_id,
                user_id=acct.id,
                created_at=now,
                amount=-amount,
                transaction_type=kind,
                description=description,
                idempotency_key=key,
                balance_after=balance_after,
                metadata=metadata,
            )
        return tx, int(held), existing

    def reserve_state(
        self, conn: Connection, by: str, params: dict[str, Any], key: str, now: datetime, api_key_id: int | None = None
    ) -> tuple[Account, Hold | None, bool, int | None] | None:
        """Lock the account and read its held credits, the hold already under `key` and whether any budget covers
        the call: one statement on SQLite, two on PostgreSQL (lock the account and the covering budget counters,
        then read; the fourth value says how many counters were locked). None when there is no such user."""
        db = conn.connection.driver_connection
        bind = {**params, "key": key, "now": self._time(now), "api_key_id": api_key_id}
        if self.sqlite:
            row = db.execute(self.sql[f"reserve_state_{by}"], bind).fetchone()
            if row is None:
                return None
            acct_row, state = row[:4], row[4:]
        else:
            acct_row = db.execute(self.sql[f"lock_reserve_{by}"], bind).fetchone()
            if acct_row is None:
                return None
            state = db.execute(self.sql[f"reserve_state_pg_{by}"], bind).fetchone()
        held, hold_id, credits, status, created, expires, hold_key_id, budgeted = state
        acct = Account(acct_row[0], acct_row[1], int(acct_row[2]), _markup(acct_row[3]), int(held), None)
        locked = None if self.sqlite else int(acct_row[4])
        if hold_id is None:
            return acct, None, bool(budgeted), locked
        hold = Hold(
            id=hold_id,
            user_id=acct.id,
            credits=int(credits),
            idempotency_key=key,
            status=status,
            created_at=_datetime(created),
            expires_at=_datetime(expires),
            api_key_id=hold_key_id,
            reused=True,
        )
        return acct, hold, bool(budgeted), locked

    def expire_user_holds(self, conn: Connection, user_id: int, now: datetime) -> None:
        """Mark the account's holds past their expiry as expired (in the caller's transaction, under its lock)."""
        params = {"uid": user_id, "now": self._time(now)}
        conn.connection.driver_connection.execute(self.sql["expire_user_holds"], params)

    def insert_hold(
        self,
        conn: Connection,
        user_id: int,
        credits: int,
        key: str,
        created_at: datetime,
        expires_at: datetime,
        api_key_id: int | None = None,
    ) -> int:
        params = {
            "user_id": user_id,
            "credits": credits,
            "key": key,
            "created_at": self._time(created_at),
            "expires_at": self._time(expires_at),
            "api_key_id": api_key_id,
        }
        return conn.connection.driver_connection.execute(self.sql["insert_hold"], params).fetchone()[0]

    def settle_state(self, conn: Connection, hold_id: int, model_id: int, now: datetime) -> HoldState | None:
        """Lock the hold's account and read the hold, the account's state and whether the model exists: one
        statement on either database (PostgreSQL: a function that locks, then reads). None when there is no such
        hold."""
        db = conn.connection.driver_connection
        params = {"hold_id": hold_id, "model_id": model_id, "now": self._time(now)}
        if self.sqlite:
            row = db.execute(self.sql["settle_state"], params).fetchone()
            if row is None:
                return None
            acct_row, state = row[:4], row[4:]
        else:  # one round trip: ledger_settle_state locks, then reads in a fresh snapshot (migration 0013)
            row = db.execute(self.sql["pg_settle_state_fn"], params).fetchone()
            if row is None:
                return None
            acct_row, state = row[:4], row[4:]
        credits, key, status, expires, is_open, held, existing, model_known = state
        acct = Account(acct_row[0], acct_row[1], int(acct_row[2]), _markup(acct_row[3]), int(held), existing)
        return HoldState(acct, int(credits), key, status, _datetime(expires), bool(is_open), bool(model_known))

    def reserve_at_once(
        self,
        conn: Connection,
        user_id: int,
        key: str,
        credits: int,
        now: datetime,
        expires: datetime,
        api_key_id: int | None,
    ) -> tuple[str, Account | None, Hold | None]:
        """PostgreSQL, on an autocommit connection: the whole reserve in one statement (ledger_reserve, migration
        0013) when no budget covers the call and the key has no monthly limit. Returns (outcome, account, hold):
        'held' (the new hold, committed), 'existing' (the hold already under `key`), 'insufficient' (nothing held),
        'no_user', or 'checks' (nothing written: a budget or the key's limit must be checked; take the general path).
        """
        params = self._hold_params(user_id, key, credits, now, expires, api_key_id)
        row = conn.connection.driver_connection.execute(self.sql["pg_reserve_fn"], params).fetchone()
        outcome = row[0]
        if outcome in ("no_user", "checks"):
            return outcome, None, None
        acct = Account(user_id, row[1], int(row[2]), _markup(row[3]), int(row[4] or 0), None)
        if outcome == "insufficient":
            return outcome, acct, None
        hold_id, held_credits, status, created, expires_at, hold_key_id = row[5:11]
        hold = Hold(
            id=hold_id,
            user_id=user_id,
            credits=int(held_credits),
            idempotency_key=key,
            status=status,
            created_at=created,
            expires_at=expires_at,
            api_key_id=hold_key_id,
            reused=outcome == "existing",
            budgeted=outcome == "existing",  # a new one: no budget covers it (else 'checks'); a reused one: unknown
            markup_pct=None if outcome == "existing" else acct.markup,
        )
        return outcome, acct, hold

    def reserve_alone(
        self,
        conn: Connection,
        user_id: int,
        key: str,
        credits: int,
        now: datetime,
        expires: datetime,
        api_key_id: int | None,
    ) -> Hold | None:
        """SQLite, as a transaction's only statement: the new hold of a call no budget covers, through a key without
        a monthly limit, under a key with no hold yet, if the available balance covers it (_RESERVE_ONCE_SQLITE).
        None when nothing was written: the general path then holds, reuses or refuses with the reason."""
        params = self._hold_params(user_id, key, credits, now, expires, api_key_id)
        row = conn.connection.driver_connection.execute(self.sql["sqlite_reserve_once"], params).fetchone()
        if row is None:
            return None
        return new_hold(row[0], user_id, credits, key, now, expires, api_key_id, budgeted=False, markup=_markup(row[1]))

    def _hold_params(
        self, user_id: int, key: str, credits: int, now: datetime, expires: datetime, api_key_id: int | None
    ) -> dict[str, Any]:
        return {
            "uid": user_id,
            "key": key,
            "credits": credits,
            "now": self._time(now),
            "expires": self._time(expires),
            "api_key_id": api_key_id,
        }

    def settle_write(
        self,
        conn: Connection,
        usage: dict[str, Any],
        *,
        hold_id: int,
        amount: int,
        balance_after: int,
        description: str,
        key: str,
        now: datetime,
        tx_meta: dict[str, Any],
    ) -> tuple[int, Transaction | None, bool]:
        """PostgreSQL: a settlement's writes in one statement: the usage row, its debit of `amount` credits (none for
        0) with the balance moved to `balance_after`, and the hold closed. Returns (usage id, the debit, whether the
        hold was still open); the caller rolls back when it was not. `tx_meta` is the debit's metadata but its
        usage id, which goes first."""
        params = dict(usage)
        meta = params["metadata"]
        params["metadata"] = None if meta is None else json.dumps(meta)
        params.pop("transaction_id", None)
        params["hold_id"] = hold_id
        db = conn.connection.driver_connection
        if not amount:
            usage_id, _tx, closed, _u, _t = db.execute(self.sql["pg_settle_write_free"], params).fetchone()
            return usage_id, None, closed == 1
        rest = redact_value(tx_meta)
        params |= {
            "amount": -amount,
            "description": redact_value(description),
            "key": key,
            "balance": balance_after,
            "meta_tail": json.dumps(rest)[1:],
        }
        usage_id, tx_id, closed, _u, _t = db.execute(self.sql["pg_settle_write"], params).fetchone()
        tx = Transaction(
            id=tx_id,
            user_id=params["user_id"],
            created_at=now,
            amount=-amount,
            transaction_type="usage",
            description=description,
            idempotency_key=key,
            balance_after=balance_after,
            metadata={"usage_id": usage_id, **tx_meta},
        )
        return usage_id, tx, closed == 1

    def settle_at_once(
        self,
        conn: Connection,
        usage: dict[str, Any],
        *,
        hold: Hold,
        charged: int,
        description: str,
        now: datetime,
        tx_meta: dict[str, Any],
    ) -> tuple[int, Transaction | None, int] | None:
        """PostgreSQL, on an autocommit connection: the whole settlement of an open `hold` in one statement
        (_SETTLE_ONCE_PG), if the account's markup is still `usage["markup_pct"]`. Returns (usage id, the debit or
        None, the balance after), or None when nothing was written (the hold is no longer open as it was, or the
        markup changed): the general path then settles or refuses it. `tx_meta` is the debit's metadata but its
        usage id (first) and overdraft flag (last, set here when the balance went below zero)."""
        params = dict(usage)
        meta = params.pop("metadata")
        params.pop("transaction_id", None)
        params |= {
            "metadata": None if meta is None else json.dumps(meta),
            "hold_id": hold.id,
            "hold_credits": hold.credits,
            "now": now,
            "charged": charged,
        }
        db = conn.connection.driver_connection
        if not charged:
            row = db.execute(self.sql["pg_settle_once_free"], params).fetchone()
            # no row: the account's markup changed; no usage id: the hold is not open as it was
            return None if row is None or row[0] is None else (row[0], None, int(row[2]))
        params |= {
            "description": redact_value(description),
            "key": hold.idempotency_key,
            "meta_middle": json.dumps(redact_value(tx_meta))[1:-1],
        }
        row = db.execute(self.sql["pg_settle_once"], params).fetchone()
        if row is None or row[0] is None:
            return None
        usage_id, tx_id, balance = row[0], row[1], int(row[2])
        metadata = {"usage_id": usage_id, **tx_meta}
        if balance < 0:
            metadata["overdraft"] = True
        tx = Transaction(
            id=tx_id,
            user_id=hold.user_id,
            created_at=now,
            amount=-charged,
            transaction_type="usage",
            description=description,
            idempotency_key=hold.idempotency_key,
            balance_after=balance,
            metadata=metadata,
        )
        return usage_id, tx, balance

    def insert_usage(self, conn: Connection, values: dict[str, Any]) -> int:
        """Insert one ai_usage_log row (every column of _USAGE_COLUMNS, as Python values) and return its id."""
        params = dict(values)
        params["created_at"] = self._time(params["created_at"])
        meta = params["metadata"]
        params["metadata"] = None if meta is None else json.dumps(meta)
        db = conn.connection.driver_connection
        if self.sqlite:  # SQLAlchemy stores Numeric on SQLite as REAL
            for col in ("duration_seconds", "base_cost_usd", "markup_pct", "charged_usd"):
                if params[col] is not None:
                    params[col] = float(params[col])
            return db.execute(_INSERT_USAGE_BY_POSITION, _USAGE_IN_ORDER(params)).fetchone()[0]
        return db.execute(self.sql["insert_usage"], params).fetchone()[0]

    def remainder(self, conn: Connection, user_id: int) -> int:
        """The account's accrual remainder (nano-credits); call it under the account's lock."""
        row = conn.connection.driver_connection.execute(self.sql["remainder"], {"uid": user_id}).fetchone()
        return int(row[0] or 0)

    def set_remainder(self, conn: Connection, user_id: int, remainder_nano: int) -> None:
        conn.connection.driver_connection.execute(
            self.sql["set_remainder"], {"uid": user_id, "remainder": remainder_nano}
        )

    def close_settled(self, conn: Connection, hold_id: int, tx_id: int | None, usage_id: int) -> bool:
        """Link the usage row to its debit (if any) and mark the hold settled; False if it was settled or released
        meanwhile (an expired hold is settled: its call delivered)."""
        db = conn.connection.driver_connection
        params = {"hold_id": hold_id, "tx_id": tx_id, "usage_id": usage_id}
        if tx_id is not None:
            db.execute(self.sql["link_usage"], params)
        return db.execute(self.sql["close_hold"], params).rowcount == 1

    def post(
        self,
        conn: Connection,
        *,
        user_id: int,
        amount: int,
        balance_after: int,
        kind: str,
        description: str | None,
        key: str | None,
        now: datetime,
        metadata: dict[str, Any] | None,
    ) -> Transaction:
        """Append one ledger row and move the cached balance to `balance_after`, in the caller's transaction."""
        db = conn.connection.driver_connection
        params = {
            "created_at": self._time(now),
            "user_id": user_id,
            "uid": user_id,
            "amount": amount,
            "kind": kind,
            "description": redact_value(description),
            "key": key,
            "balance_after": balance_after,
            "balance": balance_after,
            "metadata": None if metadata is None else json.dumps(redact_value(metadata)),
        }
        if self.sqlite:
            tx_id = db.execute(self.sql["insert_tx"], params).fetchone()[0]
            db.execute(self.sql["set_balance"], params)
        else:
            tx_id = db.execute(self.sql["post_pg"], params).fetchone()[0]
        return Transaction(
            id=tx_id,
            user_id=user_id,
            created_at=now,
            amount=amount,
            transaction_type=kind,
            description=description,
            idempotency_key=key,
            balance_after=balance_after,
            metadata=metadata,
        )


def new_hold(
    hold_id: int,
    user_id: int,
    credits: int,
    key: str,
    now: datetime,
    expires: datetime,
    api_key_id: int | None,
    *,
    budgeted: bool,
    markup: Decimal,
) -> Hold:
    """A hold just made (status held), as the ledger hands it to the call it is for."""
    return Hold(
        id=hold_id,
        user_id=user_id,
        credits=credits,
        idempotency_key=key,
        status="held",
        created_at=now,
        expires_at=expires,
        api_key_id=api_key_id,
        budgeted=budgeted,
        markup_pct=markup,
    )


def _datetime(value: Any) -> datetime:
    # SQLite hands back DateTime columns as their stored text.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _markup(value: Any) -> Decimal:
    # SQLite hands back Numeric as a float (REAL); str() gives its shortest exact decimal form.
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(MARKUP_PLACES)
