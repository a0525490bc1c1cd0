"""A ledger write transaction (`write_transaction`): everything in it, statements sent to the driver and Core
statements alike, is committed together or not at all, on both databases; on SQLite it holds the write lock from its
first statement (BEGIN IMMEDIATE) and its failures raise the errors they raised before."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from core.billing.ledger_sql import LedgerWriter, users, write_engine, write_transaction
from core.db import Database
from core.db import engine as engine_module
from core.db.engine import make_engine
from core.users import UserView, add_user


def _user(rt: Database) -> UserView:
    with rt.session() as s:
        return add_user(s, email="tx@example.com", name="tx", role="pm")


def _set_raw(conn: object, rt: Database, user_id: int, balance: int) -> None:
    db = conn.connection.driver_connection  # type: ignore[attr-defined]
    sql = "UPDATE users SET credit_balance = {} WHERE id = {}"
    marks = ("?", "?") if rt.engine.dialect.name == "sqlite" else ("%s", "%s")
    db.execute(sql.format(*marks), (balance, user_id))


def _balance(rt: Database, user_id: int) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(users.c.credit_balance).where(users.c.id == user_id)).scalar_one()


def test_driver_and_core_statements_commit_together(runtime: Database) -> None:
    u = _user(runtime)
    with write_transaction(write_engine(runtime.engine)) as conn:
        _set_raw(conn, runtime, u.id, 7)
        conn.execute(update(users).where(users.c.id == u.id).values(credit_balance=users.c.credit_balance + 1))
    assert _balance(runtime, u.id) == 8
    with write_transaction(write_engine(runtime.engine)) as conn:  # the connection went back clean
        _set_raw(conn, runtime, u.id, 9)
    assert _balance(runtime, u.id) == 9


@pytest.mark.parametrize("with_core", [False, True])
def test_an_error_rolls_back_everything(runtime: Database, with_core: bool) -> None:
    u = _user(runtime)
    with pytest.raises(RuntimeError), write_transaction(write_engine(runtime.engine)) as conn:
        _set_raw(conn, runtime, u.id, 5)
        if with_core:
            conn.execute(update(users).where(users.c.id == u.id).values(name="changed"))
        raise RuntimeError("refused")
    assert _balance(runtime, u.id) == 0
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(users.c.name == "changed")).scalar_one() == 0


def test_sqlite_takes_the_write_lock_first_and_a_busy_database_fails_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 50)  # the busy database fails in 50 ms, not 30 s
    path = tmp_path / "lock.db"
    engine = make_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 0.05})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER)")
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        # IMMEDIATE: another writer cannot begin meanwhile
        with write_transaction(write_engine(engine)), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # the lock was let go
        with pytest.raises(sqlite3.OperationalError, match="locked"), write_transaction(write_engine(engine)):
            pass  # the BEGIN fails with the driver's error, as the engine's begin event raised it
        other.execute("INSERT INTO t VALUES (1)")
        other.execute("COMMIT")
        with write_transaction(write_engine(engine)) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1
    finally:
        other.close()
        engine.dispose()


def test_sqlite_a_failed_commit_raises_sqlalchemys_error_and_writes_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'commit.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE c (p_id INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    try:
        with pytest.raises(IntegrityError) as caught, write_transaction(write_engine(engine)) as conn:
            conn.connection.driver_connection.execute("INSERT INTO c VALUES (42)")  # checked at COMMIT
        assert isinstance(caught.value.orig, sqlite3.IntegrityError)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM c").scalar_one() == 0
    finally:
        engine.dispose()


def _file_writer(tmp_path: Path) -> tuple[Engine, LedgerWriter]:
    engine = make_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER)")
    return engine, LedgerWriter(engine)


def _driver(conn: Connection) -> object:
    return conn.connection.driver_connection


def _insert(a: int) -> Callable[[Connection], object]:
    """A write inserting `a` with the driver; it returns the driver connection it ran on."""

    def op(conn: Connection) -> object:
        _driver(conn).execute(f"INSERT INTO t VALUES ({a})")  # type: ignore[attr-defined]
        return _driver(conn)

    return op


def _refused(conn: Connection, *, invalidate: bool = False) -> None:
    _driver(conn).execute("INSERT INTO t VALUES (2)")  # type: ignore[attr-defined]
    if invalidate:
        conn.invalidate()  # as a driver fault would leave it
    raise RuntimeError("refused")


def test_sqlite_ledger_writes_share_one_kept_connection_and_leave_it_clean(tmp_path: Path) -> None:
    engine, writer = _file_writer(tmp_path)
    try:

        def core_insert(conn: Connection) -> object:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")  # a Core-level statement joins the transaction
            return _driver(conn)

        first = writer.run(core_insert)
        with pytest.raises(RuntimeError):
            writer.run(_refused)  # rolled back; the connection stays fit for the next write
        assert writer.run(_insert(3)) is first
        assert engine.pool.checkedout() == 1  # kept between transactions, not given back to the pool
        with engine.connect() as conn:
            assert [r[0] for r in conn.exec_driver_sql("SELECT a FROM t ORDER BY a")] == [1, 3]
        writer.close()
        assert engine.pool.checkedout() == 0
    finally:
        writer.close()
        engine.dispose()


def test_sqlite_a_connection_that_went_bad_is_replaced(tmp_path: Path) -> None:
    engine, writer = _file_writer(tmp_path)
    try:
        first = writer.run(lambda conn: _driver(conn))
        with pytest.raises(RuntimeError):
            writer.run(lambda conn: _refused(conn, invalidate=True))
        assert writer.run(_insert(1)) is not first
        writer.close()  # given back; a later write takes one again
        writer.run(_insert(2))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2
    finally:
        writer.close()
        engine.dispose()


def _open_files_under(folder: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith(str(folder)):
            found.append(str(target))
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_disposing_of_the_engine_closes_every_file_the_ledger_kept_open(tmp_path: Path) -> None:
    """The kept connection (the database, its -wal and -shm) and the writers' queue file are closed when the engine is
    disposed of, with no close() called and no garbage collection: a process opening many databases (the test suite
    ran out of descriptors) keeps none of them open."""
    engine, writer = _file_writer(tmp_path)
    writer.run(_insert(1))
    assert any(name.endswith("-writers") for name in _open_files_under(tmp_path))
    engine.dispose()
    assert _open_files_under(tmp_path) == []
    writer.run(_insert(2))  # a later write opens what it needs again
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2
    writer.close()
    engine.dispose()
    assert _open_files_under(tmp_path) == []


def test_in_memory_sqlite_checks_out_a_connection_per_transaction() -> None:
    engine = make_engine("sqlite://")
    writer = LedgerWriter(engine)
    writer.run(lambda conn: conn.exec_driver_sql("CREATE TABLE t (a INTEGER)"))
    assert writer.run(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()) == 0
    assert writer._conn is None  # nothing kept: the pool gives each thread its own in-memory database
    engine.dispose()
