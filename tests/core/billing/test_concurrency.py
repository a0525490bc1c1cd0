"""The ledger under concurrent use, on SQLite and PostgreSQL: threads, separate processes, one key from many threads,
and a failure in the middle of a settle."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.billing import BillingService, InsufficientCreditsError
from core.billing.accounts_sql import AccountsSQL
from core.billing.ledger_check import check_ledger
from core.config import Settings
from core.db import Database
from core.db.models import AIUsageLog, CreditHold, CreditTransaction
from core.usage import Usage
from core.users import UserView
from tests.core.billing.conftest import make_user, record_for

COST_USD = Decimal("0.12")  # 3 credits at 0% markup
COST_CREDITS = 3
BALANCE = 1000  # covers floor(1000 / 3) = 333 of the attempts


def charge_many(billing: BillingService, user_id: int, prefix: str, n: int) -> tuple[int, int]:
    """(succeeded, refused) out of `n` charges with distinct keys."""
    ok = refused = 0
    for i in range(n):
        try:
            billing.charge(
                user_id, COST_USD, markup_pct=Decimal(0), idempotency_key=f"{prefix}-{i}", description="load test"
            )
            ok += 1
        except InsufficientCreditsError:
            refused += 1
    return ok, refused


def assert_exact(rt: Database, billing: BillingService, user: UserView, succeeded: int) -> None:
    assert succeeded == BALANCE // COST_CREDITS
    bal = billing.balance(user)
    assert bal.total == BALANCE - succeeded * COST_CREDITS == BALANCE % COST_CREDITS
    with rt.session() as s:
        total = s.scalar(select(func.sum(CreditTransaction.amount)).where(CreditTransaction.user_id == user.id))
        lowest = s.scalar(select(func.min(CreditTransaction.balance_after)))
        debits = s.scalar(select(func.count()).where(CreditTransaction.amount < 0))
    assert total == bal.total and lowest >= 0 and debits == succeeded
    assert check_ledger(rt.session_factory) == []


def test_16_threads_never_overdraw(runtime: Database, billing: BillingService) -> None:
    user = make_user(runtime)
    billing.grant(user, BALANCE)
    lowest_available: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # a reader sampling the balance while the writers run
        while not stop.is_set():
            lowest_available.append(billing.balance(user).available)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda t: charge_many(billing, user.id, f"t{t}", 200), range(16)))
    finally:
        stop.set()
        watcher.join()
    assert sum(r for r, _ in results) + sum(f for _, f in results) == 16 * 200
    assert min(lowest_available) >= 0
    assert_exact(runtime, billing, user, sum(r for r, _ in results))


def _process_worker(url: str, user_id: int, prefix: str, n: int) -> tuple[int, int]:
    rt = Database(Settings(database_url=url))
    try:
        return charge_many(BillingService(rt.session_factory, rt.settings), user_id, prefix, n)
    finally:
        rt.dispose()


def test_4_processes_never_overdraw(runtime: Database, billing: BillingService) -> None:
    user = make_user(runtime)
    billing.grant(user, BALANCE)
    ctx = multiprocessing.get_context("spawn")
    url = runtime.settings.database_url
    with ctx.Pool(4) as pool:
        # with a timeout: a child that dies is replaced by the pool and its task never answers
        results = pool.starmap_async(_process_worker, [(url, user.id, f"p{p}", 200) for p in range(4)]).get(300)
    assert sum(r for r, _ in results) + sum(f for _, f in results) == 4 * 200
    assert_exact(runtime, billing, user, sum(r for r, _ in results))


def test_one_key_from_8_threads_posts_once(runtime: Database, billing: BillingService) -> None:
    user = make_user(runtime)
    billing.grant(user, BALANCE)
    start = threading.Barrier(8)

    def same_charge(_: int) -> int:
        start.wait()
        return billing.charge(user.id, COST_USD, markup_pct=Decimal(0), idempotency_key="same", description="x").id

    def same_hold(_: int) -> int:
        start.wait()
        return billing.reserve(user.id, 5, "same-hold").id

    with ThreadPoolExecutor(8) as pool:
        tx_ids = set(pool.map(same_charge, range(8)))
        hold_ids = set(pool.map(same_hold, range(8)))
    assert len(tx_ids) == 1 and len(hold_ids) == 1
    assert billing.balance(user).total == BALANCE - COST_CREDITS and billing.balance(user).held == 5
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(CreditTransaction)) == 2  # the grant and one debit
        assert s.scalar(select(func.count()).select_from(CreditHold)) == 1


def test_concurrent_settles_and_charges_stay_exact(runtime: Database, billing: BillingService) -> None:
    """Holds, settles, releases and direct charges interleaved from 8 threads on one account."""
    from tests.core.billing.conftest import catalog_model

    user = make_user(runtime)
    billing.grant(user, 300)
    model = catalog_model(runtime, "gpt-4o")
    rec = record_for(model, Usage(input_tokens=1000, output_tokens=500))  # $0.0075 -> 1 -> 2 credits

    def work(t: int) -> None:
        for i in range(25):
            try:
                hold = billing.reserve(user.id, 2, f"h{t}-{i}")
            except InsufficientCreditsError:
                continue
            if i % 5 == 0:
                billing.release(hold)
            else:
                billing.settle(hold, rec)
            with contextlib.suppress(InsufficientCreditsError):
                billing.charge(user.id, Decimal("0.04"), idempotency_key=f"c{t}-{i}", description="x")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    bal = billing.balance(user)
    assert bal.held == 0 and bal.total >= 0
    assert check_ledger(runtime.session_factory) == []


@pytest.mark.parametrize("fail_after_debit", [False, True], ids=["before-debit", "after-debit"])
def test_failure_inside_settle_leaves_neither_write(
    runtime: Database, billing: BillingService, monkeypatch: pytest.MonkeyPatch, fail_after_debit: bool
) -> None:
    from tests.core.billing.conftest import catalog_model

    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user, 10, "req-1")
    # SQLite writes the usage row, then posts the debit; PostgreSQL writes both (and closes the hold) in one
    # statement, settle_write: the crash comes before that write, or after it and before the commit.
    name = "post" if runtime.engine.dialect.name == "sqlite" else "settle_write"
    real = getattr(AccountsSQL, name)

    def broken(self: AccountsSQL, conn: object, *args: object, **fields: object) -> object:
        if fail_after_debit:
            real(self, conn, *args, **fields)  # the debit and the new balance are written, then the crash
        raise RuntimeError("injected: the process died between the usage row and the debit")

    monkeypatch.setattr(AccountsSQL, name, broken)
    rec = record_for(catalog_model(runtime, "gpt-4o"), Usage(input_tokens=1000, output_tokens=500))
    with pytest.raises(RuntimeError, match="injected"):  # the general path's transaction (PostgreSQL settles a
        billing.settle(replace(hold, markup_pct=None), rec)  # hold with its markup in one atomic statement)
    monkeypatch.setattr(AccountsSQL, name, real)
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(AIUsageLog)) == 0
        assert s.scalar(select(func.count()).select_from(CreditTransaction)) == 1
        assert s.get(CreditHold, hold.id).status == "held"
    assert billing.balance(user).total == 100 and billing.balance(user).held == 10
    # the hold is intact: a retry settles it normally
    st = billing.settle(hold, rec)
    assert st.credits_charged == 2 and billing.balance(user).total == 98
    assert check_ledger(runtime.session_factory) == []


def test_sqlite_writes_take_the_write_lock_at_begin(sqlite_runtime: Database) -> None:
    """A ledger transaction holds SQLite's write lock from BEGIN, before its first write; a read does not."""
    import sqlite3

    from core.billing.ledger_sql import read_transaction, write_engine, write_transaction

    make_user(sqlite_runtime)
    other = sqlite3.connect(sqlite_runtime.engine.url.database, timeout=0, isolation_level=None)
    try:
        with write_transaction(write_engine(sqlite_runtime.engine)) as conn:
            conn.exec_driver_sql("SELECT 1")  # nothing written yet
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with read_transaction(sqlite_runtime.engine) as conn:
            conn.exec_driver_sql("SELECT count(*) FROM users").scalar()
            other.execute("BEGIN IMMEDIATE")  # a reader leaves the write lock free
            other.execute("ROLLBACK")
    finally:
        other.close()
