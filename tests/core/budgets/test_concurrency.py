"""A hard budget under concurrent calls, on SQLite and PostgreSQL: 16 threads and 4 separate processes, calls of two
team members spread over them, can never spend past the team's limit together, and every credit is accounted for.
The limit is far below the members' credits, so it is the budget, not the balance, that refuses."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

from core.billing import BillingService
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, BudgetExceededError, TeamDirectory
from core.catalog import ModelPrice
from core.config import Settings
from core.db import Database
from tests.core.billing.conftest import catalog_model, record_for
from tests.core.budgets.conftest import ONE_CREDIT, funded

LIMIT = 100  # credits: one per call, so exactly 100 calls may pass


def calls(billing: BillingService, model: ModelPrice, user_ids: list[int], prefix: str, n: int) -> tuple[int, int]:
    """(passed, refused) of `n` one-credit calls (reserve, then settle), alternating between the users."""
    passed = refused = 0
    rec = record_for(model, ONE_CREDIT)
    for i in range(n):
        try:
            hold = billing.reserve(user_ids[i % len(user_ids)], 1, f"{prefix}-{i}")
        except BudgetExceededError:
            refused += 1
            continue
        billing.settle(hold, rec)
        passed += 1
    return passed, refused


def team_with_budget(rt: Database, billing: BillingService) -> list[int]:
    ana, ben = funded(rt, billing, "ana@example.com"), funded(rt, billing, "ben@example.com")
    teams = TeamDirectory(rt.session_factory)
    teams.add("research")
    teams.add_member("research", ana.email)
    teams.add_member("research", ben.email)
    BudgetBook(rt.session_factory, rt.settings).set(team="research", credits=LIMIT)
    return [ana.id, ben.id]


def assert_exactly_the_limit(rt: Database, billing: BillingService, user_ids: list[int], passed: int) -> None:
    assert passed == LIMIT
    budget = BudgetBook(rt.session_factory, rt.settings).list_budgets()[0]
    assert budget.spent == LIMIT and budget.in_flight == 0
    assert sum(10_000 - billing.balance(uid).total for uid in user_ids) == LIMIT
    assert check_ledger(rt.session_factory) == []


def test_16_threads_never_pass_a_team_budget(runtime: Database, billing: BillingService, gpt4o: ModelPrice) -> None:
    user_ids = team_with_budget(runtime, billing)
    book = BudgetBook(runtime.session_factory, runtime.settings)
    highest: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # spend plus holds in flight, sampled while the calls run, never above the limit
        while not stop.is_set():
            b = book.list_budgets()[0]
            highest.append(b.spent + b.in_flight)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda t: calls(billing, gpt4o, user_ids, f"t{t}", 12), range(16)))
    finally:
        stop.set()
        watcher.join()
    assert sum(p for p, _ in results) + sum(r for _, r in results) == 16 * 12
    assert max(highest) <= LIMIT
    assert_exactly_the_limit(runtime, billing, user_ids, sum(p for p, _ in results))


def _process_worker(url: str, user_ids: list[int], prefix: str, n: int) -> tuple[int, int]:
    rt = Database(Settings(database_url=url))
    try:
        billing = BillingService(rt.session_factory, rt.settings)
        return calls(billing, catalog_model(rt, "gpt-4o"), user_ids, prefix, n)
    finally:
        rt.dispose()


def test_4_processes_never_pass_a_team_budget(runtime: Database, billing: BillingService) -> None:
    user_ids = team_with_budget(runtime, billing)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap_async(  # with a timeout: a child that dies is replaced and its task never answers
            _process_worker, [(runtime.settings.database_url, user_ids, f"p{p}", 40) for p in range(4)]
        ).get(300)
    assert sum(p for p, _ in results) + sum(r for _, r in results) == 4 * 40
    assert_exactly_the_limit(runtime, billing, user_ids, sum(p for p, _ in results))


def test_concurrent_first_calls_of_a_month_make_one_counter(
    runtime: Database, billing: BillingService, gpt4o: ModelPrice
) -> None:
    """When the period's counter is missing (no call yet this month), 16 threads' first calls race to make it: one
    counter is made, nothing counted twice, and the limit holds."""
    from sqlalchemy import delete

    from core.db.models import BudgetPeriod

    user_ids = team_with_budget(runtime, billing)
    with runtime.session() as s:
        s.execute(delete(BudgetPeriod))
    start = threading.Barrier(16)

    def first(t: int) -> tuple[int, int]:
        start.wait()
        return calls(billing, gpt4o, user_ids, f"f{t}", 8)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(first, range(16)))
    assert_exactly_the_limit(runtime, billing, user_ids, sum(p for p, _ in results))
    with runtime.session() as s:
        assert s.query(BudgetPeriod).count() == 2  # this month and the next, once each


def test_at_the_edge_of_the_limit_one_of_16_simultaneous_calls_passes(
    runtime: Database, billing: BillingService
) -> None:
    """The budget has room for one more credit; 16 threads (both members) ask at the same instant, 20 rounds."""
    user_ids = team_with_budget(runtime, billing)
    billing.reserve(user_ids[0], LIMIT - 1, "fill")
    start = threading.Barrier(16)

    def ask(t: int, rnd: int) -> int | None:
        start.wait()
        try:
            return billing.reserve(user_ids[t % 2], 1, f"r{rnd}-{t}").id
        except BudgetExceededError:
            return None

    with ThreadPoolExecutor(16) as pool:
        for rnd in range(20):
            passed = [h for h in pool.map(lambda t, r=rnd: ask(t, r), range(16)) if h is not None]
            assert len(passed) == 1, f"round {rnd}: {len(passed)} calls passed a budget with room for one"
            billing.release(passed[0])
