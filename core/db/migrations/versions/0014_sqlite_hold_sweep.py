"""SQLite: a new hold marks its account's stale holds expired (a trigger)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 22:50:00

On SQLite a call's hold is one INSERT, alone in its transaction (`AccountsSQL.reserve_alone`): every statement of a
write gives the GIL away and, under load, waits to take it back. The general path's sweep of the account's stale
holds (`UPDATE credit_holds SET status = 'expired' ...`, so stored statuses stay true) is this trigger instead, run
inside that same statement. The held sum never counted those holds (it checks `expires_at`); only their stored status
is set. PostgreSQL's `ledger_reserve` (0013) sweeps in its own body.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SWEEP = """
CREATE TRIGGER credit_holds_sweep_expired AFTER INSERT ON credit_holds
BEGIN
    UPDATE credit_holds SET status = 'expired'
    WHERE user_id = NEW.user_id AND status = 'held' AND expires_at <= NEW.created_at;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SWEEP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS credit_holds_sweep_expired")
