"""an index for paging a user's ledger history, newest first

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06 08:00:00

The Ledger page and `credits history` read a user's transactions a page at a time, newest first, by keyset
(`user_id = ? AND id < ? ORDER BY id DESC LIMIT ?`). An index on (user_id, id) serves that directly on SQLite and
PostgreSQL: each page reads its own rows, however deep (a heavy user has tens of thousands).
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_credit_transactions_user_id', 'credit_transactions', ['user_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_credit_transactions_user_id', table_name='credit_transactions')
