"""Migration 0012 on SQLite and PostgreSQL: a response-cache hit written before it (its catalog cost in
`base_cost_usd`) stores 0 provider cost afterwards, its catalog cost in metadata `catalog_cost_usd`; other rows and
every charge stay as they were, and the downgrade puts the figure back."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from sqlalchemy import select

from core.db import Database
from core.db.migrate import alembic_config
from core.db.models import AIUsageLog
from core.users import add_user


def migrate(rt: Database, direction: str, revision: str) -> None:
    cfg = alembic_config()
    with rt.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


def rows(rt: Database) -> dict[str, tuple[Decimal, dict | None, int]]:
    with rt.session() as s:
        found = s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)).all()
        return {r.request_id or "": (r.base_cost_usd, r.meta, r.cost_credits) for r in found}


def test_old_cache_hits_keep_their_catalog_cost_in_metadata_and_no_provider_cost(runtime: Database) -> None:
    with runtime.session() as s:
        uid = add_user(s, email="ana@example.com", name="Ana", role="pm").id
    migrate(runtime, "downgrade", "0011")
    old = {  # as rows were written before 0012: (cache hit, base cost, credits, metadata)
        "charged-hit": (True, "0.006", 2, None),
        "charged-hit-meta": (True, "0.123456789", 8, {"usage_estimated": True}),
        "free-hit": (True, "0", 0, {"catalog_cost_usd": "0.003000000"}),
        "call": (False, "0.006", 2, None),
    }
    with runtime.session() as s:
        for name, (hit, base, credits, meta) in old.items():
            s.add(
                AIUsageLog(
                    user_id=uid, provider="openai", category="tts", deployment_type="serverless", status="success",
                    request_id=name, cache_hit=hit, base_cost_usd=Decimal(base), cost_credits=credits, meta=meta,
                )
            )  # fmt: skip
    migrate(runtime, "upgrade", "head")
    after = rows(runtime)
    assert after["charged-hit"] == (0, {"catalog_cost_usd": "0.006000000"}, 2)
    assert after["charged-hit-meta"] == (0, {"usage_estimated": True, "catalog_cost_usd": "0.123456789"}, 8)
    assert after["free-hit"] == (0, {"catalog_cost_usd": "0.003000000"}, 0)  # already so
    assert after["call"] == (Decimal("0.006"), None, 2)  # a provider call keeps its cost

    migrate(runtime, "downgrade", "0011")
    back = rows(runtime)
    assert back["charged-hit"] == (Decimal("0.006"), None, 2)
    assert back["charged-hit-meta"] == (Decimal("0.123456789"), {"usage_estimated": True}, 8)
    assert back["free-hit"] == (0, {"catalog_cost_usd": "0.003000000"}, 0)
    migrate(runtime, "upgrade", "head")
