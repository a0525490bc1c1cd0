"""The demo history is deterministic and exactly consistent with the ledger and the pricing rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

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
            if r.cache_hit:  # no provider cost; its catalog cost (what it was charged at) in metadata, as settle writes
                assert r.base_cost_usd == 0 and Decimal(r.meta["catalog_cost_usd"]) == cost, (m.key, r.id)
            else:
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


def test_the_demo_forks_its_writer_only_from_a_process_without_other_threads(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child forked while another thread holds a lock (SQLite's memory mutex during an alert timer's query) hung
    forever in sqlite3.connect: with another thread alive the demo is written in this process, and comes out the
    same as the forked writer's."""
    import multiprocessing
    import threading

    from tests.conftest import make_runtime

    forks: list[object] = []
    real = multiprocessing.get_context

    def counting(method: str | None = None):  # type: ignore[no-untyped-def]
        forks.append(method)
        return real(method)

    monkeypatch.setattr(multiprocessing, "get_context", counting)

    def usage(name: str) -> list[tuple]:
        rt = make_runtime(f"sqlite:///{tmp_path / name}", tmp_path)
        write_demo_history(rt, rows=1500, days=20, seed=42, end=END)
        with rt.session() as s:
            out = s.execute(select(AIUsageLog.created_at, AIUsageLog.cost_credits).order_by(AIUsageLog.id)).all()
        rt.dispose()
        return [tuple(r) for r in out]

    alone = usage("alone.db") if threading.active_count() == 1 else None
    forked = len(forks)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        beside_a_thread = usage("beside.db")
    finally:
        stop.set()
        other.join()
    assert len(forks) == forked  # no fork with the other thread alive
    assert beside_a_thread and (alone is None or alone == beside_a_thread)


def test_demo_refuses_to_mix_histories(sqlite_runtime: Database) -> None:
    write_demo_history(sqlite_runtime, rows=500, days=10, seed=1, end=END)
    with pytest.raises(InvalidInputError, match="--replace"):
        write_demo_history(sqlite_runtime, rows=500, days=10, seed=1, end=END)
    with sqlite_runtime.session() as s:  # an accrual remainder left by a call before the replace
        s.execute(text("UPDATE users SET credit_remainder_nano = 997975000 WHERE id = (SELECT MIN(id) FROM users)"))
    write_demo_history(sqlite_runtime, rows=700, days=10, seed=2, end=END, replace=True)
    assert sqlite_runtime.usage_count() == 700
    with sqlite_runtime.session() as s:  # wiped with the ledger it came from: `ledger check` stays clean
        assert s.scalar(text("SELECT COALESCE(SUM(credit_remainder_nano), 0) FROM users")) == 0


def _teams_and_budgets(services) -> tuple[dict[str, tuple], list[tuple]]:
    from core.services import SYSTEM

    teams = {
        t.name: (t.owner_email, tuple(m.email for m in services.budgets.members(SYSTEM, t.id)))
        for t in services.budgets.teams(SYSTEM)
    }
    budgets = [(b.target, b.period, b.enforcement, b.credits) for b in services.budgets.budgets(SYSTEM)]
    return teams, budgets


def test_the_demo_writes_two_teams_and_four_budgets_and_the_ledger_check_holds(runtime: Database) -> None:
    """What `python -m core demo` writes: the Budgets & alerts page has teams and budgets of each kind to show, the
    budget counters equal the ledger's spend (the ledger check counts them), and `--replace` recounts them."""
    from core.services import SYSTEM, Services

    services = Services(runtime)
    try:
        report = services.demo.write_history(SYSTEM, rows=4000, days=40, seed=5)
        assert (report.teams, report.budgets) == (2, 4)
        teams, budgets = _teams_and_budgets(services)
        assert set(teams) == {"product", "research"}
        owner, members = teams["product"]
        assert len(members) == 10 and owner in members and owner.endswith("@demo.example")
        assert len(teams["research"][1]) == 7
        assert {(t.split(" ")[0] == "team", e) for t, _p, e, _c in budgets} == {
            (True, "hard"),
            (True, "soft"),
            (False, "hard"),
            (False, "soft"),
        }
        assert all(p == "monthly" and c >= 100 for _t, p, _e, c in budgets)
        covered = {t for t, *_ in budgets if "@" in t}
        assert covered <= set(teams["product"][1]) | set(teams["research"][1])
        assert services.ledger.check(SYSTEM) == []
        spent = [b.spent for b in services.budgets.budgets(SYSTEM)]
        assert sum(spent) > 0  # this month's spend is counted (the history ends now)

        again = services.demo.write_history(SYSTEM, rows=3000, days=40, seed=6, replace=True)
        assert (again.teams, again.budgets) == (2, 4)
        assert len(services.budgets.budgets(SYSTEM)) == 4  # the same budgets, changed: not four more
        assert services.ledger.check(SYSTEM) == []  # the counters were made again from the new ledger
        assert [b.spent for b in services.budgets.budgets(SYSTEM)] != spent
    finally:
        services.close()


def test_the_demos_teams_and_budgets_are_the_same_for_the_same_seed(tmp_path) -> None:
    from core.demo import write_demo_budgets
    from core.services import Services
    from tests.conftest import make_runtime

    def snapshot(name: str) -> tuple[dict[str, tuple], list[tuple]]:
        rt = make_runtime(f"sqlite:///{tmp_path / name}", tmp_path)
        write_demo_history(rt, rows=2000, days=40, seed=42, end=END)
        write_demo_budgets(rt, end=END)
        services = Services(rt)
        try:
            return _teams_and_budgets(services)
        finally:
            services.close()
            rt.dispose()

    first = snapshot("a.db")
    assert first == snapshot("b.db")
    assert sorted(c for *_rest, c in first[1]) != [100] * 4  # limits follow the history's spend, not a floor


def test_round_up_gives_limits_a_person_would_type() -> None:
    from core.demo.budgets import round_up

    cases = {"0": 100, "99.2": 100, "101": 110, "1234": 1300, "12345": 13000, "13000": 13000, "13000.5": 14000}
    assert {k: round_up(Decimal(k)) for k in cases} == cases
