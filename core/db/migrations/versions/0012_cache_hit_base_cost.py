"""ai_usage_log: a response-cache hit's row stores 0 provider cost, its catalog cost in metadata

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 16:30:00

A hit charged at catalog price (CHARGE_CACHE_HITS) kept that catalog cost in `base_cost_usd`, the provider-cost
column, while analytics, Spend and exports count a hit at 0 provider cost with its catalog cost as the cache saving:
two figures for one call. New rows store 0 and the catalog cost in metadata `catalog_cost_usd` (where a free hit's
already was, and where the cache saving is read from); this moves older hits' figure there too. Nothing is lost or
double counted: the credits, the ledger and the charged USD are untouched, and the figure only changes column.
The downgrade moves it back for the hits that were charged (free hits had 0 there before).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BATCH = 5_000
NANO = Decimal('0.000000001')  # the column's places: what the ORM reads back on both databases
NEW_COMMENT = (
    "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost; 0 for a "
    "response-cache hit, which no provider billed: its catalog cost is in metadata catalog_cost_usd)"
)
OLD_COMMENT = (
    "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost; for a "
    "response-cache hit, which no provider billed, the catalog cost it was charged at, else 0)"
)

usage = sa.table(
    'ai_usage_log',
    sa.column('id', sa.BigInteger),
    sa.column('base_cost_usd', sa.Numeric(18, 9)),
    sa.column('cache_hit', sa.Boolean),
    sa.column('cost_credits', sa.BigInteger),
    sa.column('accrued_nano', sa.BigInteger),
    sa.column('metadata', sa.JSON(none_as_null=True)),
)


def _comment(text: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"COMMENT ON COLUMN ai_usage_log.base_cost_usd IS '{text}'")  # no quote in either text


def _rewrite(where: sa.ColumnElement[bool], change: Callable[[Any, dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite the matching rows a batch at a time, by id, with bound parameters."""
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(
            sa.select(usage.c.id, usage.c.base_cost_usd, usage.c.metadata.label('meta'))
            .where(where, usage.c.id > after)
            .order_by(usage.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            usage.update().where(usage.c.id == sa.bindparam('row_id')),
            [{'row_id': r.id, **change(r.base_cost_usd, dict(r.meta or {}))} for r in rows],
        )
        after = rows[-1].id


def _to_metadata(base_cost: Any, meta: dict[str, Any]) -> dict[str, Any]:
    meta.setdefault('catalog_cost_usd', format(Decimal(str(base_cost)).quantize(NANO), 'f'))
    return {'base_cost_usd': Decimal(0), 'metadata': meta}


def _to_base_cost(base_cost: Any, meta: dict[str, Any]) -> dict[str, Any]:
    catalog = meta.pop('catalog_cost_usd', None)
    return {'base_cost_usd': Decimal(catalog or 0), 'metadata': meta or None}


def upgrade() -> None:
    _rewrite(sa.and_(usage.c.cache_hit == sa.true(), usage.c.base_cost_usd != 0), _to_metadata)
    _comment(NEW_COMMENT)


def downgrade() -> None:
    charged = sa.or_(usage.c.cost_credits > 0, sa.func.coalesce(usage.c.accrued_nano, 0) > 0)
    _rewrite(sa.and_(usage.c.cache_hit == sa.true(), charged), _to_base_cost)
    _comment(OLD_COMMENT)
