"""A delivered call's settlement survives a passing database fault (a deadlock the server broke, a busy SQLite, a
dropped connection): the aborted transaction wrote nothing, so `settle` tries again and the call is charged once. A
fault that does not pass is raised after the last try, with nothing written."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

import core.billing.ledger as ledger_module
from core.billing import BillingService
from core.billing.accounts_sql import AccountsSQL
from core.billing.ledger_check import check_ledger
from core.db import Database
from core.usage import Usage
from tests.core.billing.conftest import catalog_model, make_user, record_for

SMALL = Usage(input_tokens=1000, output_tokens=500)  # gpt-4o: 1 credit -> 2 at 100%


def _failing(monkeypatch: pytest.MonkeyPatch, runtime: Database, name: str, times: int) -> list[int]:
    """Make AccountsSQL.`name` raise the driver's own OperationalError `times` times, then work."""
    real = getattr(AccountsSQL, name)
    error = runtime.engine.dialect.loaded_dbapi.OperationalError
    calls: list[int] = []

    def flaky(self: AccountsSQL, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise error("deadlock detected" if runtime.engine.dialect.name != "sqlite" else "database is locked")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AccountsSQL, name, flaky)
    monkeypatch.setattr(ledger_module, "SETTLE_RETRY_SECONDS", 0.0)
    return calls


@pytest.mark.parametrize("failures", [1, 3, 10])
def test_a_passing_fault_is_tried_again_and_charged_once(
    runtime: Database, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    calls = _failing(monkeypatch, runtime, "settle_state", failures)  # the general path's locked read
    st = billing.settle(replace(hold, markup_pct=None), record_for(catalog_model(runtime, "gpt-4o"), SMALL))
    assert len(calls) == failures + 1 and st.credits_charged == 2
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert billing.balance(user).held == 0 and check_ledger(runtime.session_factory) == []


def test_a_fault_that_does_not_pass_is_raised_with_nothing_written(
    runtime: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    error = runtime.engine.dialect.loaded_dbapi.OperationalError
    calls = _failing(monkeypatch, runtime, "settle_state", 99)
    with pytest.raises(error):
        billing.settle(replace(hold, markup_pct=None), record_for(catalog_model(runtime, "gpt-4o"), SMALL))
    assert len(calls) == ledger_module.SETTLE_ATTEMPTS
    assert [t.amount for t in billing.transactions(user)] == [100]
    assert billing.balance(user).held == 10  # the hold is still open: the caller decides (the flow releases it)


def test_the_one_statement_settle_is_tried_again_too(pg_runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    user = make_user(pg_runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    calls = _failing(monkeypatch, pg_runtime, "settle_at_once", 1)
    st = billing.settle(hold, record_for(catalog_model(pg_runtime, "gpt-4o"), SMALL))
    assert len(calls) == 2 and st.credits_charged == 2
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert check_ledger(pg_runtime.session_factory) == []


def test_connections_the_server_dropped_mid_call_do_not_lose_the_charge(pg_runtime: Database) -> None:
    """A PostgreSQL restart between the hold and the settlement: every pooled connection is dead. The first try meets
    one, SQLAlchemy invalidates the pool, and the next try settles on a new connection."""
    from sqlalchemy import create_engine, text

    billing = BillingService(pg_runtime.session_factory, pg_runtime.settings)
    user = make_user(pg_runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    record = record_for(catalog_model(pg_runtime, "gpt-4o"), SMALL)
    pool = pg_runtime.engine.pool
    pids = [rec.dbapi_connection.info.backend_pid for rec in list(pool._pool.queue)]  # type: ignore[attr-defined]
    assert pids, "the hold left its connection in the pool"
    with pg_runtime.engine.connect() as conn:  # checks out one of them: end it too, from a fresh one
        pids.append(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]
    other = create_engine(pg_runtime.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with other.connect() as conn:
            for pid in set(pids):
                assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    finally:
        other.dispose()
    st = billing.settle(hold, record)
    assert st.credits_charged == 2
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert billing.balance(user).held == 0 and check_ledger(pg_runtime.session_factory) == []


def test_a_cost_past_what_the_ledger_holds_is_refused_with_a_sentence(runtime: Database) -> None:
    """A usage whose cost is past the usage log's columns (and, marked up, past 64-bit credits) is refused before any
    write, with a typed error, not the database's."""
    from core.billing.errors import InvalidAmountError

    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    model = catalog_model(runtime, "gpt-4o")
    huge = replace(record_for(model, SMALL), base_cost_usd=Decimal("1e12"))
    with pytest.raises(InvalidAmountError, match="beyond any real cost"):
        billing.settle(hold, huge)
    with pytest.raises(InvalidAmountError, match="beyond any real cost"):
        billing.charge(user.id, Decimal("1e12"), idempotency_key="big", description="typo")
    assert [t.amount for t in billing.transactions(user)] == [100] and billing.balance(user).held == 10
    assert billing.settle(hold, record_for(model, SMALL)).credits_charged == 2  # the hold is intact


def test_the_tries_span_a_database_restart(runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The waits between tries add up to more than 20 s (a PostgreSQL restart or failover), none longer than 2 s."""
    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    _failing(monkeypatch, runtime, "settle_state", ledger_module.SETTLE_ATTEMPTS - 1)
    monkeypatch.setattr(ledger_module, "SETTLE_RETRY_SECONDS", 0.05)
    waits: list[float] = []
    monkeypatch.setattr(ledger_module.time, "sleep", waits.append)
    st = billing.settle(replace(hold, markup_pct=None), record)
    assert st.credits_charged == 2 and len(waits) == ledger_module.SETTLE_ATTEMPTS - 1
    assert sum(waits) > 20 and max(waits) <= 2.0 and waits == sorted(waits)


@pytest.mark.parametrize("general_path", [True, False])
def test_a_try_that_committed_before_its_answer_was_lost_returns_its_settlement(
    runtime: Database, monkeypatch: pytest.MonkeyPatch, general_path: bool
) -> None:
    """The COMMIT went through, then the connection died before its answer: the next try finds the hold settled.
    Before, that "already settled" reached the caller as an error (the flow then dropped the call's output though it
    was charged); now the caller gets the settlement that was written, charged once."""
    from core.billing.ledger_sql import LedgerWriter

    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    if general_path:
        hold = replace(hold, markup_pct=None)
    error = runtime.engine.dialect.loaded_dbapi.OperationalError
    lost: list[int] = []

    def then_lost(real: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            done = real(*args, **kwargs)
            if not lost:
                lost.append(1)
                raise error("server closed the connection unexpectedly")
            return done

        return wrapped

    monkeypatch.setattr(LedgerWriter, "run", then_lost(LedgerWriter.run))
    monkeypatch.setattr(AccountsSQL, "settle_at_once", then_lost(AccountsSQL.settle_at_once))
    monkeypatch.setattr(ledger_module, "SETTLE_RETRY_SECONDS", 0.0)
    st = billing.settle(hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL))
    assert lost == [1]
    assert (st.credits_charged, st.base_credits, st.markup_pct, st.balance_after) == (2, 1, Decimal(100), 98)
    assert st.transaction is not None and st.transaction.amount == -2 and st.usage_id > 0
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert billing.balance(user).held == 0 and check_ledger(runtime.session_factory) == []


def test_already_settled_without_a_fault_is_still_an_error(runtime: Database) -> None:
    from core.billing.errors import HoldStateError

    billing = BillingService(runtime.session_factory, runtime.settings)
    user = make_user(runtime)
    billing.grant(user, 100)
    hold = billing.reserve(user.id, 10, "call")
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    billing.settle(hold, record)
    with pytest.raises(HoldStateError, match="already settled"):
        billing.settle(hold, record)
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
