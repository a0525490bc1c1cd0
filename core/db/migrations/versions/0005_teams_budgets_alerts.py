"""teams, budgets, alerts; the API key on a credit hold; triggers that keep budget counters

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-05 09:00:00

Teams (one per user) and budgets per user, team or API key; `budget_periods` holds each budget's spend in its current
period, which `BillingService.reserve` checks under the account lock. The triggers below keep those counters in the
same transaction as the ledger row that moves them, whichever code path posts it (settle, charge, refund, endpoint
metering), so a counter can never disagree with the ledger. Their rules are those of
core/billing/budget_sql.py's SPENT_* scans (tests/core/billing/test_budget_counters.py holds them together):
- a `usage` or `endpoint_uptime` debit adds its credits to the budgets of its user, the user's team and the API key
  of the hold it settled (found by the user and the debit's idempotency key);
- a `refund` of such a debit takes its credits off (on the refund's own date, as the Spend analytics count it);
- only counters whose period contains the ledger row's created_at move.
On PostgreSQL the trigger locks the counters in budget order first: `reserve` locks them in the same order, so the
two never deadlock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0007'
branch_labels = None
depends_on = None

SQLITE_TRIGGER = """
CREATE TRIGGER budget_spend_on_ledger_insert
AFTER INSERT ON credit_transactions
WHEN NEW.transaction_type IN ('usage', 'endpoint_uptime', 'refund') AND EXISTS (SELECT 1 FROM budget_periods)
BEGIN
    UPDATE budget_periods SET spent = spent - NEW.amount
    WHERE period_start <= NEW.created_at AND period_end > NEW.created_at
      AND budget_id IN (
        SELECT b.id FROM budgets b
        WHERE b.removed_at IS NULL AND (
            b.user_id = NEW.user_id
            OR b.team_id = (SELECT m.team_id FROM team_members m WHERE m.user_id = NEW.user_id)
            OR b.api_key_id = (
                SELECT h.api_key_id FROM credit_holds h
                WHERE h.user_id = NEW.user_id AND h.idempotency_key = (
                    CASE WHEN NEW.transaction_type = 'refund'
                    THEN (SELECT o.idempotency_key FROM credit_transactions o
                          WHERE o.id = json_extract(NEW.metadata, '$.refund_of'))
                    ELSE NEW.idempotency_key END))))
      AND (NEW.transaction_type <> 'refund'
           OR (SELECT o.transaction_type FROM credit_transactions o
               WHERE o.id = json_extract(NEW.metadata, '$.refund_of')) IN ('usage', 'endpoint_uptime'));
END
"""

PG_FUNCTION = """
CREATE FUNCTION budget_spend_on_ledger_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    spend_key varchar;
    orig_type varchar;
    member_of integer;
    key_id integer;
BEGIN
    IF NEW.transaction_type NOT IN ('usage', 'endpoint_uptime', 'refund') THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM budget_periods) THEN
        RETURN NULL;
    END IF;
    spend_key := NEW.idempotency_key;
    IF NEW.transaction_type = 'refund' THEN
        SELECT o.transaction_type, o.idempotency_key INTO orig_type, spend_key
        FROM credit_transactions o WHERE o.id = (NEW.metadata ->> 'refund_of')::bigint;
        IF orig_type IS NULL OR orig_type NOT IN ('usage', 'endpoint_uptime') THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT m.team_id INTO member_of FROM team_members m WHERE m.user_id = NEW.user_id;
    IF spend_key IS NOT NULL THEN
        SELECT h.api_key_id INTO key_id FROM credit_holds h
        WHERE h.user_id = NEW.user_id AND h.idempotency_key = spend_key;
    END IF;
    PERFORM 1 FROM budget_periods p JOIN budgets b ON b.id = p.budget_id
    WHERE b.removed_at IS NULL
      AND (b.user_id = NEW.user_id OR b.team_id = member_of OR b.api_key_id = key_id)
      AND p.period_start <= NEW.created_at AND p.period_end > NEW.created_at
    ORDER BY p.budget_id
    FOR UPDATE OF p;
    UPDATE budget_periods p SET spent = p.spent - NEW.amount
    FROM budgets b
    WHERE b.id = p.budget_id AND b.removed_at IS NULL
      AND (b.user_id = NEW.user_id OR b.team_id = member_of OR b.api_key_id = key_id)
      AND p.period_start <= NEW.created_at AND p.period_end > NEW.created_at;
    RETURN NULL;
END
$$
"""

PG_TRIGGER = """
CREATE TRIGGER budget_spend_on_ledger_insert
AFTER INSERT ON credit_transactions
FOR EACH ROW EXECUTE FUNCTION budget_spend_on_ledger_insert()
"""


def upgrade() -> None:
    op.create_table('alert_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('credits', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('enforcement', sa.String(length=10), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('removed_at', sa.DateTime(), nullable=True),
    sa.Column('removed_by', sa.String(length=320), nullable=True),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_budgets_api_key', 'budgets', ['api_key_id'], unique=False)
    op.create_index('ix_budgets_team', 'budgets', ['team_id'], unique=False)
    op.create_index('ix_budgets_user', 'budgets', ['user_id'], unique=False)
    op.create_table('team_members',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_index('ix_team_members_team', 'team_members', ['team_id'], unique=False)
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('budget_id', sa.Integer(), nullable=True),
    sa.Column('threshold_pct', sa.Integer(), nullable=True),
    sa.Column('period_start', sa.DateTime(), nullable=True),
    sa.Column('period_end', sa.DateTime(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('dismissed_at', sa.DateTime(), nullable=True),
    sa.Column('dismissed_by', sa.String(length=320), nullable=True),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_index('ix_alerts_created', 'alerts', ['created_at'], unique=False)
    op.create_index('ix_alerts_user_created', 'alerts', ['user_id', 'created_at'], unique=False)
    op.create_table('budget_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=False),
    sa.Column('period_end', sa.DateTime(), nullable=False),
    sa.Column('spent', sa.BigInteger(), nullable=False),
    sa.Column('alerted_pct', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('budget_id', 'period_start', name='uq_budget_periods_budget_start')
    )
    op.create_index('ix_budget_periods_budget_end', 'budget_periods', ['budget_id', 'period_end'], unique=False)
    op.create_table('alert_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('target', sa.String(length=400), nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['webhook_id'], ['alert_webhooks.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('alert_id', 'target', name='uq_alert_notifications_alert_target')
    )
    op.create_index('ix_alert_notifications_status_due', 'alert_notifications', ['status', 'next_attempt_at'], unique=False)
    op.create_table('alert_delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['alert_notifications.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_delivery_attempts_notification', 'alert_delivery_attempts', ['notification_id'], unique=False)
    op.add_column('credit_holds', sa.Column('api_key_id', sa.Integer(), nullable=True))
    op.create_index('ix_credit_holds_key_status', 'credit_holds', ['api_key_id', 'status'], unique=False, sqlite_where=sa.text('api_key_id IS NOT NULL'), postgresql_where=sa.text('api_key_id IS NOT NULL'))

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS budget_spend_on_ledger_insert ON credit_transactions')
        op.execute('DROP FUNCTION IF EXISTS budget_spend_on_ledger_insert()')
    else:
        op.execute('DROP TRIGGER IF EXISTS budget_spend_on_ledger_insert')
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_holds_key_status')
        batch_op.drop_column('api_key_id')
    op.drop_index('ix_alert_delivery_attempts_notification', table_name='alert_delivery_attempts')
    op.drop_table('alert_delivery_attempts')
    op.drop_index('ix_alert_notifications_status_due', table_name='alert_notifications')
    op.drop_table('alert_notifications')
    op.drop_index('ix_budget_periods_budget_end', table_name='budget_periods')
    op.drop_table('budget_periods')
    op.drop_index('ix_alerts_user_created', table_name='alerts')
    op.drop_index('ix_alerts_created', table_name='alerts')
    op.drop_table('alerts')
    op.drop_index('ix_team_members_team', table_name='team_members')
    op.drop_table('team_members')
    op.drop_index('ix_budgets_user', table_name='budgets')
    op.drop_index('ix_budgets_team', table_name='budgets')
    op.drop_index('ix_budgets_api_key', table_name='budgets')
    op.drop_table('budgets')
    op.drop_table('teams')
    op.drop_table('alert_webhooks')
