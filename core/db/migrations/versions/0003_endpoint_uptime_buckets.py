"""endpoint uptime buckets and observed_at

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01 09:00:00

One row per metered hour of a dedicated endpoint (its figures and the debit that charged it), and the time each
endpoint was last observed on the management API (metering never bills past it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('endpoint_uptime_buckets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('bucket_start', sa.DateTime(), nullable=False),
    sa.Column('bucket_end', sa.DateTime(), nullable=False),
    sa.Column('billed_minutes', sa.Integer(), nullable=False),
    sa.Column('replica_minutes', sa.Integer(), nullable=False),
    sa.Column('max_replicas', sa.Integer(), nullable=False),
    sa.Column('hourly_usd', sa.Numeric(precision=18, scale=9), nullable=False),
    sa.Column('base_cost_usd', sa.Numeric(precision=18, scale=9), nullable=False),
    sa.Column('markup_pct', sa.Numeric(precision=9, scale=4), nullable=False),
    sa.Column('credits', sa.BigInteger(), nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('metered_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['inference_endpoints.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id', 'bucket_start', name='uq_endpoint_uptime_buckets_endpoint_start')
    )
    with op.batch_alter_table('endpoint_uptime_buckets', schema=None) as batch_op:
        batch_op.create_index('ix_endpoint_uptime_buckets_start', ['bucket_start'], unique=False)

    with op.batch_alter_table('inference_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('observed_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inference_endpoints', schema=None) as batch_op:
        batch_op.drop_column('observed_at')

    with op.batch_alter_table('endpoint_uptime_buckets', schema=None) as batch_op:
        batch_op.drop_index('ix_endpoint_uptime_buckets_start')

    op.drop_table('endpoint_uptime_buckets')
