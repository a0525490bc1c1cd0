"""the specification's audio_models and audio_model_usage, as views; serverless cold starts in the catalog

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 09:00:00

The specification reports spend with SQL over `audio_models` and `audio_model_usage`, for example

    SELECT user_id, SUM(cost_credits) as total_credits FROM audio_model_usage
    WHERE created_at > NOW() - INTERVAL '30 days' GROUP BY user_id ORDER BY total_credits DESC LIMIT 10;

The product keeps one catalog (`ai_models`) and one usage log (`ai_usage_log`) for every category, so these are views
over them, restricted to the audio categories, with the specification's column names:
- `audio_models`: one row per audio catalog entry; `base_cost_usd` is its price in its own unit and `cost_unit` is
  named as the specification names it (`per_second`, `per_request`, `per_character`, `per_token`; a dedicated
  endpoint is `per_hour` at its hardware's hourly rate); `hardware_type` is Hugging Face's instance type (nvidia-t4).
- `audio_model_usage`: one row per successful, non-sandbox audio call (failed and sandbox calls are not usage and
  carry 0 credits anyway); `audio_model_id` is the `ai_models` id, so it joins `audio_models.id`. Endpoint uptime
  and refunds are ledger rows, not calls: they are not here (the Spend page and `spend` count them; `spend --kind
  usage` gives these views' figures).
On PostgreSQL `created_at` is a timestamptz (the stored naive UTC read as UTC), so `NOW() - INTERVAL` compares
correctly whatever the session's time zone; SQLite gets NOW() and INTERVAL from core.db.sqlite_pg_time.

`ai_models` also gains `serverless_cold_start_s` and `serverless_cold_start_share`: the specification says serverless
models "may have cold starts (2-5 s)", and the break-even model takes each model's figures from the catalog.

A later migration that rebuilds ai_models, ai_usage_log or hardware (a SQLite batch "move and copy", or a column
type change on PostgreSQL) must drop these views first and create them again after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

AUDIO_CATEGORIES = "('tts', 'speech_to_text', 'music', 'voice_clone')"


def _created_at(column: str) -> str:
    if op.get_bind().dialect.name == 'postgresql':
        return f"({column} AT TIME ZONE 'UTC')"
    return column


def upgrade() -> None:
    with op.batch_alter_table('ai_models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('serverless_cold_start_s', sa.Numeric(precision=9, scale=3), nullable=True))
        batch_op.add_column(sa.Column('serverless_cold_start_share', sa.Numeric(precision=5, scale=4), nullable=True))

    op.execute(f"""
CREATE VIEW audio_models AS
SELECT m.id, m.model_id, m.model_name, m.provider, m.deployment_type, m.category,
       CASE m.cost_unit
           WHEN 'second' THEN m.per_second_usd
           WHEN 'request' THEN m.per_request_usd
           WHEN 'character' THEN m.per_character_usd
           WHEN 'uptime' THEN h.hourly_usd
       END AS base_cost_usd,
       CASE m.cost_unit WHEN 'uptime' THEN 'per_hour' ELSE 'per_' || m.cost_unit END AS cost_unit,
       m.hf_endpoint_url, COALESCE(h.instance_type, m.hardware_type) AS hardware_type,
       m.api_endpoint, m.api_method, m.status, {_created_at('m.created_at')} AS created_at
FROM ai_models m
LEFT JOIN hardware h ON h.id = m.hardware_type
WHERE m.category IN {AUDIO_CATEGORIES}
""")
    op.execute(f"""
CREATE VIEW audio_model_usage AS
SELECT u.id, u.ai_model_id AS audio_model_id, u.user_id, u.duration_seconds, u.requests_count,
       u.base_cost_usd, u.cost_credits, {_created_at('u.created_at')} AS created_at
FROM ai_usage_log u
WHERE u.category IN {AUDIO_CATEGORIES} AND u.status = 'success' AND NOT u.sandbox
""")


def downgrade() -> None:
    op.execute("DROP VIEW audio_model_usage")
    op.execute("DROP VIEW audio_models")
    with op.batch_alter_table('ai_models', schema=None) as batch_op:
        batch_op.drop_column('serverless_cold_start_share')
        batch_op.drop_column('serverless_cold_start_s')
