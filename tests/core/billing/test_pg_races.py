"""PostgreSQL ledger races, forced rather than hoped for: an operation is held open inside its transaction (its
account lock taken, or its hold row written) while another queues behind it, then let go, so the second one runs on a
snapshot taken before the first committed. The one-statement settle and the one-round-trip reserve must then do what
the general path does; and the account lock must not deadlock with the writers of rows that name the user.
A many-thread run of every ledger operation on two accounts of one team checks the same invariants at random."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

import core.billing.ledger as ledger_module
from core.billing import BillingService, Hold, InsufficientCreditsError
from core.billing.accounts_sql import AccountsSQL
from core.billing.errors import HoldStateError
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, BudgetExceededError
from core.budgets.teams import TeamDirectory
from core.db import Database
from core.db.models import AIUsageLog, CreditHold, CreditTransaction, utcnow
from core.errors import InvalidInputError
from core.usage import Usage
from core.users import UserView
from tests.core.billing.conftest import catalog_model, make_user, record_for

SMALL = Usage(input_tokens=1000, output_tokens=500)  # gpt-4o: $0.0075 -> 1 credit -> 2 at 100%
BIG = Usage(input_tokens=100_000, output_tokens=10_000)  # $0.35 -> 9 credits -> 18 at 100%

# Backends waiting, directly or in a queue, for backend :b to let a lock go.
_BLOCKED_BY = text(
    "WITH RECURSIVE w(pid) AS (SELECT pid FROM pg_stat_activity WHERE CAST(:b AS integer) = ANY(pg_blocking_pids(pid))"
    " UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid)))"
    " SELECT count(*) FROM w"
)


class Held:
    """Holds the first call of `method` (a function taking the SQLAlchemy connection first) open just after it ran,
    inside its transaction, until `release()`; `pid` is its server process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, *, before: bool = False) -> None:
        self.reached = threading.Event()
        self._go = threading.Event()
        self.pid = 0
        self._first = threading.Lock()
        real = getattr(owner, name)

        def held(*args: Any, **kw: Any) -> Any:
            conn = next(a for a in args if hasattr(a, "connection"))
            if before:
                self._hold(conn)
            out = real(*args, **kw)
            if not before:
                self._hold(conn)
            return out

        monkeypatch.setattr(owner, name, held)

    def _hold(self, conn: Any) -> None:
        if not self._first.acquire(blocking=False):
            return
        self.pid = conn.connection.driver_connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.reached.set()
        assert self._go.wait(60), "the test never let the held transaction go"

    def release(self) -> None:
        self._go.set()


def _blocked(rt: Database, pid: int) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(_BLOCKED_BY, {"b": pid}).scalar_one())


def wait_until_queued(rt: Database, pid: int, n: int = 1, *, or_done: Future[Any] | None = None) -> None:
    """Until `n` backends wait behind `pid` (or `or_done` finished without waiting)."""
    for _ in range(600):
        if (or_done is not None and or_done.done()) or _blocked(rt, pid) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} backends ever waited behind {pid}")


def _behind(
    rt: Database, held: Held, first: Callable[[], Any], then: Callable[[], Any], *, may_pass: bool = False
) -> tuple[Any, Any]:
    """Run `first` until `held` holds it, queue `then` behind it (or let it pass, if it `may_pass` and does), let
    `first` finish: both results (or errors)."""
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(first)
        assert held.reached.wait(30)
        b = pool.submit(then)
        wait_until_queued(rt, held.pid, or_done=b if may_pass else None)
        held.release()
        return _outcome(a), _outcome(b)


def _outcome(f: Future[Any]) -> Any:
    try:
        return f.result()
    except Exception as exc:  # the caller asserts which
        return exc


@pytest.fixture
def billing(pg_runtime: Database) -> BillingService:
    return BillingService(pg_runtime.session_factory, pg_runtime.settings)


@pytest.fixture
def funded(pg_runtime: Database, billing: BillingService) -> UserView:
    u = make_user(pg_runtime)
    billing.grant(u, 100)
    return u


def _record(rt: Database, usage: Usage = SMALL, **kw: Any) -> Any:
    return record_for(catalog_model(rt, "gpt-4o"), usage, **kw)


@pytest.mark.parametrize("free", [True, False], ids=["free", "paid"])
def test_a_settle_refuses_a_key_charged_while_it_waited_for_the_account(
    pg_runtime: Database, billing: BillingService, funded: UserView, monkeypatch: pytest.MonkeyPatch, free: bool
) -> None:
    """A charge posts a debit under the hold's key while the one-statement settle waits for the account: the
    general path refuses such a hold, and so must the statement, whose own read of the key predates that debit
    (a free call writes no debit for the unique index to refuse)."""
    hold = billing.reserve(funded.id, 10, "k")
    assert hold.markup_pct is not None  # the one-statement settle is tried
    held = Held(monkeypatch, AccountsSQL, "charge_if_available")
    charged, settled = _behind(
        pg_runtime,
        held,
        lambda: billing.charge(funded.id, Decimal("0.04"), idempotency_key="k", description="the same key"),
        lambda: billing.settle(hold, _record(pg_runtime, sandbox=free)),
    )
    assert isinstance(settled, HoldStateError) and "already has transaction" in str(settled), settled
    assert billing.balance(funded).total == 100 - charged.amount * -1
    with pg_runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(AIUsageLog)) == 0
        assert s.get(CreditHold, hold.id).status == "held"
    assert check_ledger(pg_runtime.session_factory) == []


@pytest.mark.parametrize("meanwhile", ["grant", "release", "expire", "extend", "general_settle"])
def test_a_settle_waiting_for_the_account_sees_what_committed_meanwhile(
    pg_runtime: Database, billing: BillingService, funded: UserView, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """The one-statement settle queues behind a transaction holding the account (a grant, or the general path
    settling the same hold); while it waits, the hold is released, expired or extended. It must act on the rows as
    they are once it has the lock, as the general path does: re-read under their locks, not from its snapshot."""
    hold = billing.reserve(funded.id, 10, "k")
    rec = _record(pg_runtime)
    if meanwhile == "general_settle":
        held = Held(monkeypatch, AccountsSQL, "settle_state")
        first: Callable[[], Any] = lambda: billing.settle(replace(hold, markup_pct=None), rec)  # noqa: E731
    else:
        held = Held(monkeypatch, AccountsSQL, "post")
        first = lambda: billing.grant(funded, 5)  # noqa: E731
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(first)
        assert held.reached.wait(30)
        b = pool.submit(billing.settle, hold, rec)
        wait_until_queued(pg_runtime, held.pid)
        if meanwhile == "release":
            billing.release(hold)
        elif meanwhile == "expire":
            assert billing.expire_holds(utcnow() + timedelta(hours=1)) == 1
        elif meanwhile == "extend":
            assert billing.extend_hold(hold, until=utcnow() + timedelta(hours=1))
        held.release()
        first_done, settled = _outcome(a), _outcome(b)
    balance = billing.balance(funded)
    if meanwhile == "release":
        assert isinstance(settled, HoldStateError) and "released" in str(settled), settled
        assert (balance.total, balance.held) == (105, 0)
    elif meanwhile == "general_settle":
        assert first_done.credits_charged == 2
        assert isinstance(settled, HoldStateError) and "settled" in str(settled), settled
        assert (balance.total, balance.held) == (98, 0)
    else:  # charged once, on the balance the grant left, after the grant in the ledger's order
        assert settled.credits_charged == 2 and settled.balance_after == 103 == balance.total
        assert settled.transaction.id > first_done.id
        assert settled.transaction.metadata.get("hold_expired") is (True if meanwhile == "expire" else None)
    assert check_ledger(pg_runtime.session_factory) == []


def test_a_settle_waiting_for_the_account_charges_the_markup_it_finds(
    pg_runtime: Database, billing: BillingService, funded: UserView
) -> None:
    """The markup changes (to 4 decimals) in a transaction the settle waits for: the call is charged at the new
    markup, as the general path charges it, not at the one the hold was priced at."""
    hold = billing.reserve(funded.id, 10, "k")
    with pg_runtime.engine.connect() as blocker, ThreadPoolExecutor(1) as pool:
        blocker.execute(text("UPDATE users SET developer_markup_pct = 300.0001 WHERE id = :u"), {"u": funded.id})
        pid = blocker.execute(text("SELECT pg_backend_pid()")).scalar_one()
        settle = pool.submit(billing.settle, hold, _record(pg_runtime))
        wait_until_queued(pg_runtime, pid)
        blocker.commit()
        settled = settle.result()
    assert (settled.credits_charged, settled.markup_pct) == (5, Decimal("300.0001"))  # ceil(1 x 400.0001%)
    with pg_runtime.session() as s:
        assert s.get(AIUsageLog, settled.usage_id).markup_pct == Decimal("300.0001")
    assert check_ledger(pg_runtime.session_factory) == []


def test_a_reserve_waiting_for_the_account_counts_holds_made_meanwhile(
    pg_runtime: Database, billing: BillingService, funded: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two one-round-trip holds queue behind the general path holding 60 of 100 credits: the one under the same key
    gets that hold, the other finds 40 available, not 100."""
    held = Held(monkeypatch, AccountsSQL, "insert_hold")
    with ThreadPoolExecutor(3) as pool:
        general = pool.submit(billing.reserve, funded.email, 60, "a")  # by email: the general path
        assert held.reached.wait(30)
        same_key = pool.submit(billing.reserve, funded.id, 5, "a")
        other = pool.submit(billing.reserve, funded.id, 60, "b")
        wait_until_queued(pg_runtime, held.pid, 2)
        held.release()
        first = general.result()
        assert (same_key.result().id, same_key.result().reused) == (first.id, True)
        with pytest.raises(InsufficientCreditsError):
            other.result()
    assert billing.balance(funded).held == 60
    assert check_ledger(pg_runtime.session_factory) == []


@pytest.mark.parametrize("what", ["user_budget", "team_membership"])
def test_a_budget_or_team_for_a_user_mid_call_does_not_deadlock(
    pg_runtime: Database, billing: BillingService, funded: UserView, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """A budget set for a user, or the user put in a team, while a ledger write holds their account: the budget's
    write holds every ledger write off (SHARE on credit_transactions) and checks its row's user (FOR KEY SHARE). An
    account lock taken FOR UPDATE blocked that check: a deadlock, which PostgreSQL broke by failing one of the two."""
    held = Held(monkeypatch, AccountsSQL, "lock_account")
    book = BudgetBook(pg_runtime.session_factory, pg_runtime.settings)
    teams = TeamDirectory(pg_runtime.session_factory)
    team = teams.add("research") if what == "team_membership" else None

    def admin() -> Any:
        if team is not None:
            return teams.add_member(team.id, funded.id)
        return book.set(user=funded.id, credits=1000)

    granted, changed = _behind(pg_runtime, held, lambda: billing.grant(funded, 5), admin, may_pass=True)
    assert not isinstance(granted, Exception), granted
    assert not isinstance(changed, Exception), changed
    assert billing.balance(funded).total == 105
    assert check_ledger(pg_runtime.session_factory) == []


@pytest.mark.parametrize("path", ["one_statement", "general"])
def test_a_release_recording_its_failure_and_a_settle_of_the_same_hold_do_not_deadlock(
    pg_runtime: Database, billing: BillingService, funded: UserView, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """`release(hold, failure)` closes the hold, then writes the failed call's usage row (whose foreign key checks
    the user row); a settle of the same hold locks the account, then waits for the hold. The release wins, the settle
    is refused, and neither fails on a deadlock."""
    hold = billing.reserve(funded.id, 10, "k")
    held = Held(monkeypatch, ledger_module, "check_model", before=True)  # the hold is released, its usage row next
    to_settle = hold if path == "one_statement" else replace(hold, markup_pct=None)
    released, settled = _behind(
        pg_runtime,
        held,
        lambda: billing.release(hold, _record(pg_runtime, status="failed", error="upstream 500")),
        lambda: billing.settle(to_settle, _record(pg_runtime)),
    )
    assert released is None
    # refused: the statement finds the hold released; the general path read it open, then could not close it
    assert isinstance(settled, HoldStateError), settled
    assert billing.balance(funded).total == 100 and billing.balance(funded).held == 0
    assert check_ledger(pg_runtime.session_factory) == []


def test_a_one_statement_settlement_does_not_wait_for_a_foreign_key_check_on_its_user(
    pg_runtime: Database, billing: BillingService, funded: UserView
) -> None:
    """A row naming the user (a budget alert, a usage row) checks its foreign key with FOR KEY SHARE on the user row,
    and holds it until its transaction ends. The one-statement settlement locked the account FOR UPDATE, which waits
    for that: with two gateway workers on PostgreSQL, a budget alert written after another call's settlement
    deadlocked with it. It locks FOR NO KEY UPDATE now, as every other ledger statement does."""
    hold = billing.reserve(funded.id, 10, "fk")
    with pg_runtime.engine.connect() as other, ThreadPoolExecutor(1) as pool:
        other.execute(text("SELECT 1 FROM users WHERE id = :id FOR KEY SHARE"), {"id": funded.id})  # kept open
        settled = pool.submit(billing.settle, hold, _record(pg_runtime))
        try:
            done = settled.result(timeout=15)  # it waited until `other` ended: a TimeoutError here
        finally:
            other.rollback()  # so that a settlement still waiting can end, and the test with it
    assert done.usage_id and billing.balance(funded).held == 0
    assert check_ledger(pg_runtime.session_factory) == []


STRESS_OPS = (
    "reserve",
    "settle",
    "settle_general",
    "release",
    "extend",
    "expire",
    "grant",
    "charge",
    "refund",
    "markup",
)
EXPECTED_REFUSALS = (InsufficientCreditsError, HoldStateError, BudgetExceededError, InvalidInputError)


def test_twelve_threads_of_every_ledger_operation_keep_the_ledger_exact(
    pg_runtime: Database, billing: BillingService
) -> None:
    """Two accounts of one team; twelve threads reserve (both paths, some holds short-lived), settle (both paths,
    paid, over the hold, sandbox, failed, cache hits; a hold may be settled from two threads), release, extend,
    expire, grant, charge, refund and change markups; a team and user budget appear mid-run. Every refusal is a
    typed one, and afterwards the ledger is exact and every hold's rows agree with its status."""
    rt = pg_runtime
    users = [make_user(rt, f"u{i}@example.com") for i in range(2)]
    for u in users:
        billing.grant(u, 300)
    model = catalog_model(rt, "gpt-4o")
    records = [
        record_for(model, SMALL),
        record_for(model, BIG),
        record_for(model, SMALL, sandbox=True),
        record_for(model, SMALL, status="failed", error="upstream 500"),
        record_for(model, SMALL, cache_hit=True),
    ]
    holds: list[Hold] = []
    settled: list[tuple[int, Any]] = []
    debits: list[int] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    budgets_made = threading.Event()

    def budgets() -> None:
        team = TeamDirectory(rt.session_factory).add("team", members=[u.id for u in users])
        book = BudgetBook(rt.session_factory, rt.settings)
        book.set(team=team.id, credits=100_000)
        book.set(user=users[0].id, credits=100_000, enforcement="soft")

    def one(rnd: random.Random, t: int, i: int) -> None:
        u = users[rnd.randrange(2)]
        with lock:
            hold = rnd.choice(holds) if holds else None
        op = rnd.choices(STRESS_OPS, weights=(10, 8, 4, 3, 2, 1, 2, 3, 2, 1))[0]
        if op == "reserve":
            h = billing.reserve(
                u.id if rnd.random() < 0.7 else u.email,
                rnd.randint(0, 6),
                f"h{t}-{i}",
                ttl_seconds=rnd.choice([1, 600]),
            )
            with lock:
                holds.append(h)
        elif op.startswith("settle") and hold is not None:
            st = billing.settle(replace(hold, markup_pct=None) if op == "settle_general" else hold, rnd.choice(records))
            with lock:
                settled.append((hold.id, st))
        elif op == "release" and hold is not None:
            billing.release(hold, rnd.choice([None, records[3]]))
        elif op == "extend" and hold is not None:
            billing.extend_hold(hold, until=utcnow() + timedelta(seconds=600))
        elif op == "expire":
            billing.expire_holds()
        elif op == "grant":
            billing.grant(u, rnd.randint(1, 20))
        elif op == "charge":
            tx = billing.charge(u.id, Decimal("0.04"), idempotency_key=f"c{t}-{i}", description="direct")
            with lock:
                debits.append(tx.id)
        elif op == "refund":
            with lock:
                paid = [st.transaction.id for _, st in settled if st.transaction is not None] + debits
            if paid:
                billing.refund(rnd.choice(paid), "test", credits=1)
        elif op == "markup":
            with rt.engine.begin() as conn:
                pct = Decimal(rnd.choice(("100", "133.3333", "250.0001")))
                conn.execute(text("UPDATE users SET developer_markup_pct = :p WHERE id = :u"), {"p": pct, "u": u.id})
        if t == 0 and i == 10 and not budgets_made.is_set():
            budgets_made.set()
            budgets()

    def worker(t: int) -> None:
        rnd = random.Random(t)
        for i in range(40):
            try:
                one(rnd, t, i)
            except EXPECTED_REFUSALS:
                pass
            except Exception as exc:  # collected, shown by the assert below
                unexpected.append(exc)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(worker, range(12)))
    assert unexpected == [], "\n\n".join(f"{type(e).__name__}: {e}" for e in unexpected)
    assert budgets_made.is_set()
    assert check_ledger(rt.session_factory) == []
    assert len({h for h, _ in settled}) == len(settled), "a hold was settled twice"
    with rt.session() as s:
        for hold_id, st in settled:
            hold_row = s.get(CreditHold, hold_id)
            usage = s.get(AIUsageLog, st.usage_id)
            tx = st.transaction
            assert hold_row.status == "settled" and usage.idempotency_key == hold_row.idempotency_key
            assert usage.cost_credits == st.credits_charged and usage.markup_pct == st.markup_pct
            assert hold_row.transaction_id == usage.transaction_id == (tx.id if tx else None)
            if tx is not None:  # what was returned is what was written
                stored = s.get(CreditTransaction, tx.id)
                assert (stored.amount, stored.balance_after, stored.meta) == (tx.amount, tx.balance_after, tx.metadata)
                assert (stored.meta["hold_id"], stored.meta["usage_id"]) == (hold_id, st.usage_id)
        for h in s.scalars(select(CreditHold)):
            mine = (AIUsageLog.user_id == h.user_id, AIUsageLog.idempotency_key == h.idempotency_key)
            rows = s.scalar(select(func.count()).select_from(AIUsageLog).where(*mine))
            debits_n = s.scalar(
                select(func.count())
                .select_from(CreditTransaction)
                .where(CreditTransaction.user_id == h.user_id, CreditTransaction.idempotency_key == h.idempotency_key)
            )
            # settled: its one usage row (and at most one debit); released: a failure's row at most; else none
            assert rows == {"settled": 1, "released": rows if rows <= 1 else 1}.get(h.status, 0), (h.id, h.status)
            assert debits_n <= (1 if h.status == "settled" else 0), (h.id, h.status)
