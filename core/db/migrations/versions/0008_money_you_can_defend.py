"""usage columns that say what they are; disputed usage; 1-hour cache writes; refreshed catalog facts

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-06 10:00:00

- `ai_usage_log.cost_usd` read as the call's cost while it held what the user was charged (credits x the credit price):
  it is renamed `charged_usd`, and on PostgreSQL every money column carries a comment saying which figure it is.
- `ai_usage_log.usage_disputed`: the upstream reported more than the request allowed and the billed usage was capped
  (a partial index finds those rows for finance without reading the others).
- `ai_usage_log.cache_write_1h_tokens`: the part of the cache writes kept for an hour (priced at its own rate).
- `credit_holds`: a partial index on the open holds' expiry, so sweeping expired holds never scans settled ones.
- Catalog facts (each in the price history, only where the stored price is still the one shipped before): Anthropic's
  1-hour cache-write rates, Together's Llama 3.3 70B Turbo at $1.04/$1.04 per 1M tokens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None

ACTOR = "migration 0008"
ANTHROPIC_PRICES = "platform.claude.com/docs/en/about-claude/pricing (5m and 1h cache writes)"
ONE_HOUR_RATES = {  # model_id -> (1-hour rate, long-context 1-hour rate or None)
    "claude-sonnet-4-5": ("6", "12"),
    "claude-haiku-4-5": ("2", None),
    "claude-opus-4-5": ("10", None),
}
TOGETHER_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
PRICE_FIELDS = (
    "input_per_1m_usd", "output_per_1m_usd", "cached_input_per_1m_usd", "per_second_usd", "per_character_usd",
    "per_request_usd", "per_image_usd",
)  # fmt: skip
COMMENTS = {
    "base_cost_usd": "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost)",
    "charged_usd": "what the user was charged in USD: cost_credits x the credit price (revenue, markup included)",
    "cost_credits": "credits debited for the call (0 for failed, sandbox and dedicated-endpoint calls)",
    "markup_pct": "the user's markup in percent when the call was billed",
    "usage_disputed": "the upstream reported more usage than the request allowed; billed usage was capped",
}


def upgrade() -> None:
    # Plain ALTERs (SQLite 3.25+ renames a column in place): no table copy, instant at millions of rows.
    op.alter_column('ai_usage_log', 'cost_usd', new_column_name='charged_usd')
    op.add_column('ai_usage_log', sa.Column('cache_write_1h_tokens', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('ai_usage_log', sa.Column('usage_disputed', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        'ix_ai_usage_log_disputed', 'ai_usage_log', ['created_at'],
        sqlite_where=sa.text('usage_disputed = 1'), postgresql_where=sa.text('usage_disputed'),
    )  # fmt: skip
    op.create_index(
        'ix_credit_holds_open_expiry', 'credit_holds', ['expires_at'],
        sqlite_where=sa.text("status = 'held'"), postgresql_where=sa.text("status = 'held'"),
    )  # fmt: skip
    if op.get_bind().dialect.name == 'postgresql':
        for column, text in COMMENTS.items():
            quoted = text.replace("'", "''")
            op.execute(f"COMMENT ON COLUMN ai_usage_log.{column} IS '{quoted}'")
    _refresh_catalog_facts()


def downgrade() -> None:
    op.drop_index('ix_credit_holds_open_expiry', table_name='credit_holds')
    op.drop_index('ix_ai_usage_log_disputed', table_name='ai_usage_log')
    op.drop_column('ai_usage_log', 'usage_disputed')
    op.drop_column('ai_usage_log', 'cache_write_1h_tokens')
    op.alter_column('ai_usage_log', 'charged_usd', new_column_name='cost_usd')


# ---- catalog facts ----------------------------------------------------------------------------------------------
models = sa.table(
    'ai_models',
    sa.column('id', sa.Integer()),
    sa.column('provider', sa.String()),
    sa.column('model_id', sa.String()),
    sa.column('price_variants', sa.JSON()),
    sa.column('price_source', sa.String()),
    sa.column('price_as_of', sa.String()),
    *(sa.column(f, sa.Numeric(18, 9)) for f in PRICE_FIELDS),
)
history = sa.table(
    'ai_model_price_history',
    sa.column('ai_model_id', sa.Integer()),
    sa.column('changed_at', sa.DateTime()),
    sa.column('changed_by', sa.String()),
    sa.column('prices', sa.JSON()),
    sa.column('previous', sa.JSON()),
    sa.column('note', sa.Text()),
)


def _snapshot(row: Any, **changes: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for f in PRICE_FIELDS:
        value = changes.get(f, getattr(row, f))
        snap[f] = None if value is None else format(Decimal(str(value)).normalize(), "f")
    snap["price_variants"] = changes.get("price_variants", _variants(row)) or None
    snap["price_source"] = changes.get("price_source", row.price_source)
    snap["price_as_of"] = changes.get("price_as_of", row.price_as_of)
    return snap


def _variants(row: Any) -> dict[str, Any]:
    value = row.price_variants
    return dict(json.loads(value) if isinstance(value, str) else value or {})


def _reprice(conn: sa.Connection, row: Any, note: str, **changes: Any) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    changes["price_as_of"] = now.date().isoformat()
    before, after = _snapshot(row), _snapshot(row, **changes)
    conn.execute(sa.update(models).where(models.c.id == row.id).values(**changes))
    conn.execute(
        sa.insert(history).values(
            ai_model_id=row.id, changed_at=now, changed_by=ACTOR, prices=after, previous=before, note=note
        )
    )


def _refresh_catalog_facts() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(models).where(models.c.provider == 'anthropic')):
        rates = ONE_HOUR_RATES.get(row.model_id)
        variants = _variants(row)
        if rates is None or "cache_write_1h_per_1m_usd" in variants:
            continue
        variants["cache_write_1h_per_1m_usd"] = rates[0]
        if rates[1] and isinstance(variants.get("long_context"), dict):
            variants["long_context"] = {**variants["long_context"], "cache_write_1h_per_1m_usd": rates[1]}
        _reprice(
            conn, row, "1-hour cache writes priced at their own rate (they were billed at the 5-minute rate)",
            price_variants=variants, price_source=ANTHROPIC_PRICES,
        )  # fmt: skip
    together = conn.execute(
        sa.select(models).where(models.c.provider == 'together_ai', models.c.model_id == TOGETHER_MODEL)
    ).first()
    if together is not None and Decimal(str(together.input_per_1m_usd or 0)) == Decimal("0.88"):
        _reprice(
            conn, together, "public price files of late 2026 list $1.04 in and out per 1M tokens (was $0.88)",
            input_per_1m_usd=Decimal("1.04"), output_per_1m_usd=Decimal("1.04"),
            price_source="public price files of late 2026 (per-token price maps list 1.04e-06 in and out)",
        )  # fmt: skip
