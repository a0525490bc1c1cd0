"""An API key's monthly credit limit, checked inside `reserve` under the account's lock.

A key belongs to one account, so the account lock that every reserve and settle takes also serialises every call of
the key: what the key spent this month (its usage rows) plus its holds in flight plus the new hold is compared with
the limit in the same transaction, and concurrent calls cannot together pass it. Months are calendar months in the
reporting time zone. Only keys with a limit pay for the sums (one statement, on an index of the key and the time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from core.billing.budget_sql import REFUND_OF
from core.errors import CoreError
from core.money import credits_text

# The sums sit in CASE branches that both SQLite and PostgreSQL evaluate only for a key with a limit: summed for every
# key, the month's usage rows made each call of a busy key slower than the last (0.6 ms of a 2.4 ms call at 1,300
# calls of one key, measured with benchmarks/gateway_load.py's traffic). What the key spent is counted as everywhere
# else (the Spend page by key, a budget on the key): its calls' credits less the refunds of them posted this month,
# a refund found through the hold its debit settled (the refunds-only index of migration 0010 keeps that read short).
_KEY_MONTH = (
    "SELECT k.monthly_credits,"
    " CASE WHEN k.monthly_credits IS NULL THEN 0 ELSE (SELECT COALESCE(SUM(u.cost_credits), 0) FROM ai_usage_log u"
    "  WHERE u.api_key_id = k.id AND u.created_at >= :month_start)"
    "  - (SELECT COALESCE(SUM(t.amount), 0) FROM credit_transactions t"
    "  JOIN credit_transactions o ON o.id = {refund_of} AND o.transaction_type = 'usage'"
    "  JOIN credit_holds h ON h.user_id = o.user_id AND h.idempotency_key = o.idempotency_key"
    "  WHERE t.user_id = k.user_id AND t.transaction_type = 'refund' AND t.created_at >= :month_start"
    "  AND h.api_key_id = k.id) END,"
    " CASE WHEN k.monthly_credits IS NULL THEN 0 ELSE (SELECT COALESCE(SUM(h.credits), 0) FROM credit_holds h"
    "  WHERE h.api_key_id = k.id AND h.status = 'held' AND h.expires_at > :now) END,"
    " k.prefix"
    " FROM api_keys k WHERE k.id = :key_id AND k.user_id = :user_id"
)
# Sent to the driver as it is (the ledger's hot path does the same, accounts_sql.py): psycopg wants %(name)s.
_KEY_MONTH_SQLITE = _KEY_MONTH.format(refund_of=REFUND_OF["sqlite"])
_KEY_MONTH_PG = re.sub(r":(\w+)", r"%(\1)s", _KEY_MONTH.format(refund_of=REFUND_OF["postgresql"]))


class KeyLimitError(CoreError):
    """A call would take an API key past its monthly credit limit (or names a key of another account)."""

    def __init__(self, message: str, *, needed: int = 0, left: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.left = left


def month_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The start (naive UTC) of the calendar month `now` (naive UTC) falls in, in time zone `tz`."""
    local = now.replace(tzinfo=UTC).astimezone(tz)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.astimezone(UTC).replace(tzinfo=None)


def check_key_month(conn: Connection, user_id: int, key_id: int, credits: int, now: datetime, tz: ZoneInfo) -> None:
    """Refuse a hold of `credits` that would take key `key_id` past its monthly limit (spent + held + credits)."""
    start = month_start(now, tz)
    if conn.dialect.name == "sqlite":  # SQLAlchemy's SQLite DateTime text, so that comparisons order as times
        sql, since, until = _KEY_MONTH_SQLITE, _sqlite_time(start), _sqlite_time(now)
    else:
        sql, since, until = _KEY_MONTH_PG, start, now
    params = {"key_id": key_id, "user_id": user_id, "month_start": since, "now": until}
    row = conn.connection.driver_connection.execute(sql, params).fetchone()
    if row is None:
        raise KeyLimitError(f"API key {key_id} does not belong to this account; a call is paid by its key's owner.")
    limit, spent, held, prefix = row
    if limit is None:
        return
    left = int(limit) - int(spent) - int(held)
    if credits > 0 and credits > left:  # a hold of nothing passes, as it does the balance and the budgets
        raise KeyLimitError(
            f"API key {prefix}… has {max(left, 0):,} of its {credits_text(int(limit))} a month left and this call "
            f"may need {credits:,}; raise the key's monthly limit or wait for next month.",
            needed=credits,
            left=max(left, 0),
        )


def _sqlite_time(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")
