"""an index of refunds per user and time, for an API key's monthly credits

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:45:00

A key's monthly limit counts what the key spent as the Spend page and a budget on the key do: its calls less the
refunds of them posted this month. Every reserve through a key with a limit reads the owner's refunds since the
month started; this partial index holds refunds only, so that read does not walk the month's usage debits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_credit_transactions_refunds',
        'credit_transactions',
        ['user_id', 'created_at'],
        sqlite_where=sa.text("transaction_type = 'refund'"),
        postgresql_where=sa.text("transaction_type = 'refund'"),
    )


def downgrade() -> None:
    op.drop_index('ix_credit_transactions_refunds', table_name='credit_transactions')
