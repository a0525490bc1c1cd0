"""request fingerprints and accrual rounding

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-06 09:00:00

`ai_usage_log.request_fingerprint`: what identifies identical requests (provider, model and the request's content,
hashed), so repeated requests the response cache would have served can be found in the history (issue 18).

Accrual rounding (the `ROUNDING_POLICY=accrual` setting): `users.credit_remainder_nano` is the fraction of a credit an
account has paid for but not yet consumed (whole nano-credits, 0 <= r < 10^9), and `ai_usage_log.accrued_nano` the
exact nano-credits a call consumed under that policy (NULL for calls rounded per call). `ledger check` proves the
remainder from them: it is the sum over the account's accrual calls of credits debited x 10^9 - accrued_nano.
Integers, not Numeric: SQLite keeps Numeric as REAL, and these sums must be exact.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ai_usage_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('accrued_nano', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('credit_remainder_nano', sa.BigInteger(), nullable=False, server_default=sa.text('0'))
        )


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('credit_remainder_nano')

    with op.batch_alter_table('ai_usage_log', schema=None) as batch_op:
        batch_op.drop_column('accrued_nano')
        batch_op.drop_column('request_fingerprint')
