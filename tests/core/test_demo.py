"""The demo history is deterministic and exactly consistent with the ledger and the pricing rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.billing import apply_markup, price_usage, usd_to_credits
from core.catalog import get_model_by_pk
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction, User
from core.demo import write_demo_history
from core.errors import InvalidInputError
from core.usage import Usage

END = datetime(2026, 11, 15, 12, 0, 0)


def usage_of(row: AIUsageLog) -> Usage:
    meta = row.meta or {}
    return Usage(
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cached_tokens=row.cached_tokens,
        cache_write_tokens=row.cache_write_tokens,
        characters=row.characters,
        seconds=Decimal(str(row.duration_seconds)),
        images=row.images,
        image_size=meta.get("size"),
        image_quality=meta.get("quality"),
        requests=row.requests_count,
    )


def test_demo_is_consistent(runtime: Database) -> None:
    report = write_demo_history(runtime, rows=4000, days=30, seed=5, end=END)
    assert report.usage_rows == 4000 and report.users == 50
    with runtime.session() as s:
        users = {u.id: u for u in s.scalars(select(User))}
        assert {u.role for u in users.values()} == {"admin", "finance", "engineer", "pm"}
        # cached balance == sum of transactions == last balance_after, never below zero
        sums = dict(
            s.execute(
                select(CreditTransaction.user_id, func.sum(CreditTransaction.amount)).group_by(
                    CreditTransaction.user_id
                )
            ).all()
        )
        for uid, u in users.items():
            assert u.credit_balance == sums.get(uid, 0) >= 0
        assert s.scalar(select(func.min(CreditTransaction.balance_after))) >= 0
        last = {}
        for t in s.scalars(select(CreditTransaction).order_by(CreditTransaction.id)):
            assert t.balance_after == last.get(t.user_id, 0) + t.amount, "balance_after must run in id order"
            last[t.user_id] = t.balance_after
        txs = {
            t.id: t for t in s.scalars(select(CreditTransaction).where(CreditTransaction.transaction_type == "usage"))
        }
        rows = list(s.scalars(select(AIUsageLog)))
        models = {}
        debited = set()
        failed = sandbox = 0
        for r in rows:
            if r.status == "failed":
                failed += 1
                assert r.cost_credits == 0 and r.transaction_id is None and r.base_cost_usd == 0
                continue
            m = models.setdefault(r.ai_model_id, get_model_by_pk(s, r.ai_model_id))
            cost = price_usage(m, usage_of(r))
            assert Decimal(str(r.base_cost_usd)) == cost, (m.key, r.id)
            if r.sandbox:
                sandbox += 1
                assert r.cost_credits == 0 and r.transaction_id is None
                continue
            credits = apply_markup(usd_to_credits(cost), r.markup_pct)
            assert r.cost_credits == credits
            assert r.charged_usd == Decimal(credits) * Decimal("0.04")
            tx = txs[r.transaction_id]
            assert tx.amount == -credits and tx.user_id == r.user_id and tx.created_at == r.created_at
            debited.add(tx.id)
        assert debited == set(txs), "every usage debit pays for exactly one usage row"
        assert 0.005 < failed / len(rows) < 0.04
        assert sandbox > 0


def test_demo_is_deterministic(tmp_path) -> None:
    from tests.conftest import make_runtime

    def snapshot(name: str) -> list[tuple]:
        rt = make_runtime(f"sqlite:///{tmp_path / name}", tmp_path)
        write_demo_history(rt, rows=1500, days=20, seed=42, end=END)
        with rt.session() as s:
            out = s.execute(
                select(
                    AIUsageLog.created_at, AIUsageLog.user_id, AIUsageLog.ai_model_id, AIUsageLog.cost_credits
                ).order_by(AIUsageLog.id)
            ).all()
        rt.dispose()
        return [tuple(r) for r in out]

    assert snapshot("a.db") == snapshot("b.db")


def test_demo_refuses_to_mix_histories(sqlite_runtime: Database) -> None:
    write_demo_history(sqlite_runtime, rows=500, days=10, seed=1, end=END)
    with pytest.raises(InvalidInputError, match="--replace"):
        write_demo_history(sqlite_runtime, rows=500, days=10, seed=1, end=END)
    write_demo_history(sqlite_runtime, rows=700, days=10, seed=2, end=END, replace=True)
    assert sqlite_runtime.usage_count() == 700
