"""PostgreSQL: the ledger's functions lock the account FOR NO KEY UPDATE, as its statements now do

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:30:00

`ledger_reserve` and `ledger_settle_state` (migration 0013) locked the account row FOR UPDATE, which also blocks the
foreign-key checks (FOR KEY SHARE) of rows that name the user. A budget set for the user or a team membership (both
written under a SHARE lock on credit_transactions) and a release recording its failed call (after it closed the hold)
then waited for a ledger writer that waited for them: PostgreSQL broke the deadlock by failing one of them, a settle
among them. FOR NO KEY UPDATE still makes ledger writers wait for each other (and for a change of markup), and lets
those checks through. The functions are 0013's with that lock, nothing else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _round_trips() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_ledger_0013", Path(__file__).with_name("0013_ledger_round_trips.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(create: str, lock: str) -> str:
    sql = create.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    assert sql.count(" FOR UPDATE;") == 1, "each function takes the account's lock once"
    return sql.replace(" FOR UPDATE;", f" {lock};")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        m = _round_trips()
        for create in (m.RESERVE, m.SETTLE_STATE):
            op.execute(_replaced(create, "FOR NO KEY UPDATE"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        m = _round_trips()
        for create in (m.RESERVE, m.SETTLE_STATE):
            op.execute(_replaced(create, "FOR UPDATE"))
