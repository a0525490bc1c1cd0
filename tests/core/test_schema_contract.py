"""The tables are described once, by the ORM models; the hand-written fast-path SQL is held to them here.

- Every statement of the ledger's hot path (`core.billing.accounts_sql`) and of the analytics extract
  (`core.analytics.extract`) compiles against the migrated schema on SQLite and on PostgreSQL (EXPLAIN: parsed and
  planned, nothing run): a renamed or dropped column fails here, not in production.
- Every hand-written INSERT lists every column of its table, except the ones named below as written later or left
  to their default: a column added to a model fails this test until someone decides what each INSERT writes to it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from core.analytics.extract import Source
from core.billing.accounts_sql import AccountsSQL
from core.db import Database
from core.db.models import Base

# table -> columns a hand-written INSERT may leave out (written by a later statement, or defaulted on purpose)
LEFT_FOR_LATER = {
    "credit_holds": {"transaction_id"},  # set when the hold is settled
    "credit_transactions": set(),
    "ai_usage_log": set(),
}
SQLITE_ONLY = ("account_state_", "settle_state", "reserve_state_id", "reserve_state_email", "sqlite_")
PG_ONLY = ("post_pg", "charge_if_available_pg", "pg_", "reserve_state_pg_", "lock_reserve_")


def _columns(table: str) -> set[str]:
    return {c.name for c in Base.metadata.tables[table].columns if not c.primary_key}


def _hot_path(dialect: str) -> dict[str, str]:
    """The hot-path statements this dialect runs, with :name parameters."""
    raw = AccountsSQL("sqlite").sql  # the :name form of every statement
    skip = PG_ONLY if dialect == "sqlite" else SQLITE_ONLY
    return {k: v for k, v in raw.items() if not k.startswith(skip)}


def _explain(db: Database, sql: str) -> None:
    params: dict[str, Any] = dict.fromkeys(re.findall(r"(?<!:):(\w+)", sql))
    prefix = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
    with db.engine.connect() as conn:
        conn.execute(text(prefix + sql), params)
        conn.rollback()


def test_hot_path_statements_compile_against_the_schema(runtime: Database) -> None:
    failures = {}
    for name, sql in _hot_path(runtime.engine.dialect.name).items():
        try:
            _explain(runtime, sql)
        except Exception as exc:
            failures[name] = str(exc).splitlines()[0]
    assert not failures, failures


def test_the_analytics_extract_reads_columns_that_exist(runtime: Database) -> None:
    dialect = runtime.engine.dialect.name
    source = Source(dialect, "", "")
    for sql in (source.usage_sql(), source.ledger_sql()):
        named = sql.replace("?", "0") if dialect == "sqlite" else re.sub(r"\$\d", "0", sql)
        _explain(runtime, named)


@pytest.mark.parametrize(
    "name", ["insert_tx", "insert_hold", "insert_usage", "charge_if_available_pg", "sqlite_reserve_once"]
)
def test_hand_written_inserts_list_every_column(name: str) -> None:
    sql = AccountsSQL("sqlite").sql[name]
    table, listed = re.search(r"INSERT INTO (\w+)\s*\(([^)]*)\)", sql).groups()  # type: ignore[union-attr]
    columns = {c.strip() for c in listed.split(",")}
    assert columns | LEFT_FOR_LATER[table] == _columns(table), (name, table)


def test_the_demo_writes_every_column_it_does_not_leave_null(sqlite_runtime: Database, monkeypatch) -> None:
    from core.demo import history

    seen: dict[str, set[str]] = {}
    real = history._bulk_load

    def spy(rt: Database, direct: Any, staged: Any, tick: Any) -> None:
        for name, columns, _order in (direct, staged):
            seen[name] = set(columns) - {"id"}
        real(rt, direct, staged, tick)

    monkeypatch.setattr(history, "_bulk_load", spy)
    history.write_demo_history(sqlite_runtime, rows=50, days=2, seed=1)
    assert seen["ai_usage_log"] | history.USAGE_LEFT_NULL == _columns("ai_usage_log")
    assert seen["credit_transactions"] | history.LEDGER_LEFT_NULL == _columns("credit_transactions")
    assert not seen["ai_usage_log"] & history.USAGE_LEFT_NULL
