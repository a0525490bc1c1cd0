"""audio_model_usage: a response-cache hit has no provider cost

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:30:00

A text-to-speech or transcription answered from the response cache reaches no provider. Its usage row keeps in
`base_cost_usd` the cost its charge was priced at (the catalog cost when CHARGE_CACHE_HITS is on), so the view showed
that as the provider cost of the call, and the specification's SQL over it disagreed with the Spend page, which counts
a hit at no provider cost (core/analytics/schema.py). The view now gives 0 for a hit; its credits are unchanged. The
rows themselves are not touched (the usage log is append-only), so old hits read right too. On PostgreSQL the
column's comment says what a hit's `base_cost_usd` holds.
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

AUDIO_CATEGORIES = "('tts', 'speech_to_text', 'music', 'voice_clone')"
BASE_COST_COMMENT = (
    "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost; for a "
    "response-cache hit, which no provider billed, the catalog cost it was charged at, else 0)"
)
OLD_COMMENT = "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost)"


def _view(base_cost: str) -> str:
    created_at = "(u.created_at AT TIME ZONE 'UTC')" if op.get_bind().dialect.name == 'postgresql' else 'u.created_at'
    return f"""
CREATE VIEW audio_model_usage AS
SELECT u.id, u.ai_model_id AS audio_model_id, u.user_id, u.duration_seconds, u.requests_count,
       {base_cost} AS base_cost_usd, u.cost_credits, {created_at} AS created_at
FROM ai_usage_log u
WHERE u.category IN {AUDIO_CATEGORIES} AND u.status = 'success' AND NOT u.sandbox
"""


def _comment(text: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"COMMENT ON COLUMN ai_usage_log.base_cost_usd IS '{text}'")  # no quote in either text


def upgrade() -> None:
    op.execute("DROP VIEW audio_model_usage")  # the column's type changes: PostgreSQL cannot replace it in place
    op.execute(_view("CASE WHEN u.cache_hit THEN 0 ELSE u.base_cost_usd END"))
    _comment(BASE_COST_COMMENT)


def downgrade() -> None:
    op.execute("DROP VIEW audio_model_usage")
    op.execute(_view("u.base_cost_usd"))
    _comment(OLD_COMMENT)
