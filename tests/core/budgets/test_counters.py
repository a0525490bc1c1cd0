"""The budget counters the triggers keep, held to the ledger: after a random mix of calls, direct charges, uptime
debits, refunds, adjustments and team moves, every counter equals what a plain Python tally of the same operations
says, and `ledger check` (which recounts each open period from the ledger with budget_sql's scan) finds nothing."""

from __future__ import annotations

import random
from decimal import Decimal

from sqlalchemy import select, text

from core.billing import BillingService, Transaction
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, TeamDirectory
from core.catalog import ModelPrice
from core.db import Database
from core.db.models import BudgetPeriod
from tests.core.budgets.conftest import api_key_of, funded, spend_one


def test_counters_follow_the_ledger_through_a_random_mix(
    runtime: Database, billing: BillingService, book: BudgetBook, teams: TeamDirectory, gpt4o: ModelPrice
) -> None:
    rng = random.Random(15)
    people = [funded(runtime, billing, f"u{i}@example.com", credits=100_000) for i in range(4)]
    teams.add("red")
    teams.add("blue")
    team_of = {0: "red", 1: "red", 2: "blue"}  # person 3 has no team
    for i, name in team_of.items():
        teams.add_member(name, people[i].email)
    for p in people:
        book.set(user=p.id, credits=10**9, enforcement="soft")
    book.set(team="red", credits=10**9)
    book.set(team="blue", credits=10**9)
    # person 0's two API keys (a key's calls are its owner's); a budget on the first
    own_keys = [api_key_of(runtime, people[0], "first"), api_key_of(runtime, people[0], "second")]
    book.set(api_key_id=own_keys[0], credits=10**9)
    # (person index, api key or None, credits) of every credit that counts, refunds negative
    spent: list[tuple[int, int | None, int]] = []
    debits: list[tuple[Transaction, int, int | None]] = []
    for n in range(120):
        who = rng.randrange(4)
        key = rng.choice([None, None, *own_keys]) if who == 0 else None
        action = rng.choice(["call", "call", "release", "charge", "uptime", "refund", "adjust"])
        if action == "call":
            st = spend_one(billing, gpt4o, people[who], f"call-{n}", api_key_id=key)
            spent.append((who, key, 1))
            assert st.transaction is not None
            debits.append((st.transaction, who, key))
        elif action == "release":
            billing.release(billing.reserve(people[who].id, 3, f"rel-{n}", api_key_id=key))
        elif action in ("charge", "uptime"):
            tx = billing.charge(
                people[who].id,
                Decimal("0.08"),
                markup_pct=0,
                idempotency_key=f"{action}-{n}",
                description=action,
                kind="usage" if action == "charge" else "endpoint_uptime",
            )
            spent.append((who, None, 2))
            debits.append((tx, who, None))
        elif action == "refund" and debits:
            tx, owner, owner_key = debits.pop(rng.randrange(len(debits)))
            billing.refund(tx, "test")
            spent.append((owner, owner_key, tx.amount))  # tx.amount is negative: the refund takes it off
        elif action == "adjust":
            adj = billing.grant(people[who], -1, kind="adjustment", note="fix")
            billing.refund(adj, "undo")  # neither is spend
        if n == 60:  # person 1 moves to blue: team counters follow current members
            teams.add_member("blue", people[1].email)
            team_of[1] = "blue"

    expected = {("user", p.id): sum(c for w, _k, c in spent if w == i) for i, p in enumerate(people)}
    for name in ("red", "blue"):
        expected[("team", name)] = sum(c for w, _k, c in spent if team_of.get(w) == name)
    expected[("api_key", own_keys[0])] = sum(c for _w, k, c in spent if k == own_keys[0])
    found = {}
    for b in book.list_budgets():
        key = {"user": ("user", b.user_id), "team": ("team", b.team_name), "api_key": ("api_key", b.api_key_id)}
        found[key[b.scope]] = b.spent
    assert found == expected
    assert check_ledger(runtime.session_factory) == []


def test_ledger_check_reports_a_counter_that_disagrees(
    runtime: Database, billing: BillingService, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    budget = book.set(user=ana.id, credits=100)
    spend_one(billing, gpt4o, ana, "c1")
    with runtime.session() as s:
        row = s.scalars(
            select(BudgetPeriod).where(BudgetPeriod.budget_id == budget.id).order_by(BudgetPeriod.period_start)
        ).first()
        assert row is not None and row.spent == 1
        row.spent = 7
    found = check_ledger(runtime.session_factory)
    assert [v.check for v in found] == ["budget_counter"]
    assert "counts 7 credits spent" in found[0].message and "the ledger says 1" in found[0].message


def test_making_the_counters_says_how_many_it_made_on_both_databases(
    runtime: Database, billing: BillingService, book: BudgetBook
) -> None:
    """`alerts run --json` said "counters_made": -13 on PostgreSQL (its driver's rowcount of -1 per insert)."""
    ana = funded(runtime, billing, "ana@x.io")
    budget = book.set(user=ana.id, credits=100)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM budget_periods WHERE budget_id = :b"), {"b": budget.id})
    made = billing.ensure_budget_periods([budget.id])
    assert made >= 1  # the current period's counter, and the next one's when it is near
    assert billing.ensure_budget_periods([budget.id]) == 0
