"""api keys, the key and source of each usage row, idempotent replies

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:00:00

The HTTP gateway's keys (a hash and a shown prefix, never the key), the key and the source (playground, cli, api) of
each usage row, the key's monthly limit counting the holds in flight (their key column arrives with migration 0005), and what a call made with
a caller's idempotency key answered (a retry gets the same answer instead of a second call).

`ai_usage_log.api_key_id` has no foreign key on purpose: adding one makes SQLite copy the whole (large) table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by', sa.String(length=320), nullable=True),
    sa.Column('monthly_credits', sa.BigInteger(), nullable=True),
    sa.Column('rpm', sa.Integer(), nullable=True),
    sa.Column('allowed_models', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_index('ix_api_keys_user', 'api_keys', ['user_id'], unique=False)

    op.create_table('idempotent_replies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_idempotent_replies_user_key')
    )

    op.add_column('ai_usage_log', sa.Column('api_key_id', sa.Integer(), nullable=True))
    op.add_column('ai_usage_log', sa.Column('source', sa.String(length=20), nullable=True))
    op.create_index('ix_ai_usage_log_key_created', 'ai_usage_log', ['api_key_id', 'created_at'], unique=False)


def downgrade() -> None:
    # plain ALTERs: a batch copy of ai_usage_log on SQLite would break the views over it (migration 0004)
    op.drop_index('ix_ai_usage_log_key_created', table_name='ai_usage_log')
    op.drop_column('ai_usage_log', 'source')
    op.drop_column('ai_usage_log', 'api_key_id')

    op.drop_table('idempotent_replies')
    op.drop_index('ix_api_keys_user', table_name='api_keys')
    op.drop_table('api_keys')
