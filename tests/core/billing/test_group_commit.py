"""The ledger's group commit on SQLite (LedgerWriter.run): writes that arrive while another is being written are
committed together, each in its own savepoint, in the order they came; one that fails is undone alone; a failed
commit fails them all with nothing written; each runs with its caller's context variables."""

from __future__ import annotations

import contextvars
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from core.billing.ledger_sql import GROUP_MAX, LedgerWriter
from core.db.engine import make_engine

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[tuple[Engine, LedgerWriter]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, who TEXT)")
        conn.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE c (p_id INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    writer = LedgerWriter(engine)
    yield engine, writer
    writer.close()
    engine.dispose()


def _insert(a: int) -> Callable[[Connection], int]:
    def op(conn: Connection) -> int:
        conn.connection.driver_connection.execute("INSERT INTO t VALUES (?, ?)", (a, CALLER.get()))
        return a

    return op


def _noting(ran_in: list[int]) -> Callable[[int], Callable[[Connection], int]]:
    """`_insert`, noting the thread each write ran in."""

    def noting(a: int) -> Callable[[Connection], int]:
        def op(conn: Connection) -> int:
            ran_in.append(threading.get_ident())
            return _insert(a)(conn)

        return op

    return noting


def _rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT a, who FROM t ORDER BY rowid")]


def _behind_a_slow_write(writer: LedgerWriter, ops: list[Callable[[Connection], object]]) -> list[object]:
    """Start a write that waits inside its transaction, queue `ops` from threads behind it (in this order), let the
    slow one finish, and return each op's result or exception: the queued ops then run as one group."""
    inside, go_on = threading.Event(), threading.Event()

    def slow(conn: Connection) -> str:
        inside.set()
        assert go_on.wait(10)
        return "slow"

    first = threading.Thread(target=writer.run, args=(slow,))
    first.start()
    assert inside.wait(10)
    answers: list[object] = [None] * len(ops)

    def call(i: int) -> None:
        CALLER.set(f"caller {i}")
        try:
            answers[i] = writer.run(ops[i])
        except Exception as exc:
            answers[i] = exc

    threads = []
    for i in range(len(ops)):
        threads.append(threading.Thread(target=call, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while len(writer._waiting) < i + 1 and time.monotonic() < deadline:  # queued in this order
            time.sleep(0.001)
    go_on.set()
    for t in [first, *threads]:
        t.join(10)
    return answers


def test_writes_queued_behind_another_are_committed_together_in_order(kept: tuple[Engine, LedgerWriter]) -> None:
    engine, writer = kept
    ran_in: list[int] = []
    noting = _noting(ran_in)
    answers = _behind_a_slow_write(writer, [noting(a) for a in range(1, 9)])
    assert answers == list(range(1, 9))
    assert len(set(ran_in)) == 1  # one thread, the group's leader, ran all eight
    assert _rows(engine) == [(a, f"caller {a - 1}") for a in range(1, 9)]  # in order, each in its caller's context
    assert writer._leading is False and writer._waiting == []


def test_a_failed_write_is_undone_alone_and_its_caller_gets_its_error(kept: tuple[Engine, LedgerWriter]) -> None:
    engine, writer = kept

    def half_then_refuse(conn: Connection) -> None:
        conn.connection.driver_connection.execute("INSERT INTO t VALUES (99, 'half')")
        raise ValueError("refused after writing")

    def core_statement(conn: Connection) -> int:  # a Core statement joins the group's transaction
        conn.exec_driver_sql("INSERT INTO t VALUES (3, 'core')")
        return 3

    def parent(conn: Connection) -> int:
        conn.exec_driver_sql("INSERT INTO p VALUES (1)")
        return 1

    def same_parent_again(conn: Connection) -> None:  # the database refuses a Core statement: IntegrityError
        conn.exec_driver_sql("INSERT INTO t VALUES (98, 'before the refusal')")
        conn.exec_driver_sql("INSERT INTO p VALUES (1)")

    answers = _behind_a_slow_write(
        writer, [_insert(1), half_then_refuse, core_statement, parent, same_parent_again, _insert(4)]
    )
    assert answers[0] == 1 and answers[2] == 3 and answers[3] == 1 and answers[5] == 4
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "refused after writing"
    assert isinstance(answers[4], IntegrityError)
    assert [a for a, _ in _rows(engine)] == [1, 3, 4]  # each refused write's rows were rolled back to its savepoint
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM p").scalar_one() == 1


def test_a_failed_commit_fails_the_whole_group_and_writes_nothing(kept: tuple[Engine, LedgerWriter]) -> None:
    engine, writer = kept

    def orphan(conn: Connection) -> None:  # a deferred foreign key: refused only at COMMIT
        conn.connection.driver_connection.execute("INSERT INTO c VALUES (42)")

    def refused(conn: Connection) -> None:
        raise ValueError("its own refusal")

    answers = _behind_a_slow_write(writer, [_insert(1), orphan, refused, _insert(2)])
    assert isinstance(answers[2], ValueError)  # a write that failed keeps its own error
    for i in (0, 1, 3):
        assert isinstance(answers[i], IntegrityError), answers[i]
        assert isinstance(answers[i].orig, sqlite3.IntegrityError)  # type: ignore[union-attr]
    assert len({id(answers[i]) for i in (0, 1, 3)}) == 3  # each caller raises its own copy
    assert _rows(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM c").scalar_one() == 0
    assert writer.run(_insert(5)) == 5  # the kept connection is fit for the next write
    assert [a for a, _ in _rows(engine)] == [5]


def test_a_database_that_cannot_be_opened_fails_the_group_with_its_own_error(
    kept: tuple[Engine, LedgerWriter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every caller gets the database's error (a settlement retries on it), not a stand-in."""
    engine, writer = kept
    unable = OperationalError("connect", None, sqlite3.OperationalError("unable to open database file"))
    opened = writer._connection

    def refuse() -> Connection:
        if threading.current_thread() is not threading.main_thread():
            raise unable
        return opened()

    inside, go_on = threading.Event(), threading.Event()
    answers: list[object] = []

    def slow(conn: Connection) -> None:
        monkeypatch.setattr(writer, "_connection", refuse)  # the next group cannot open the database
        inside.set()
        assert go_on.wait(10)

    first = threading.Thread(target=writer.run, args=(slow,))
    first.start()
    assert inside.wait(10)

    def call(a: int) -> None:
        try:
            answers.append(writer.run(_insert(a)))
        except Exception as exc:
            answers.append(exc)

    threads = [threading.Thread(target=call, args=(a,)) for a in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(writer._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    go_on.set()
    for t in [first, *threads]:
        t.join(10)
    assert len(answers) == 3 and all(isinstance(a, OperationalError) for a in answers), answers
    monkeypatch.setattr(writer, "_connection", opened)
    assert writer.run(_insert(9)) == 9 and [a for a, _ in _rows(engine)] == [9]


def test_a_group_is_at_most_group_max_writes_and_every_write_is_answered(kept: tuple[Engine, LedgerWriter]) -> None:
    engine, writer = kept
    ran_in: list[int] = []
    noting = _noting(ran_in)
    count = GROUP_MAX + 5
    answers = _behind_a_slow_write(writer, [noting(a) for a in range(count)])
    assert answers == list(range(count))
    assert len(set(ran_in[:GROUP_MAX])) == 1 and ran_in[GROUP_MAX] != ran_in[0]  # the 33rd led the next group
    assert len(_rows(engine)) == count


def test_many_threads_writing_at_once_lose_nothing(kept: tuple[Engine, LedgerWriter]) -> None:
    engine, writer = kept
    errors: list[BaseException] = []

    def worker(base: int) -> None:
        try:
            for i in range(50):
                assert writer.run(_insert(base + i)) == base + i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(1000 * n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(a for a, _ in _rows(engine)) == sorted(1000 * n + i for n in range(12) for i in range(50))
    assert writer._leading is False and writer._waiting == []


def test_a_caller_interrupted_while_waiting_is_not_written_and_the_lead_passes_on(
    kept: tuple[Engine, LedgerWriter],
) -> None:
    """A waiting caller that is interrupted (Ctrl-C reaches the main thread) withdraws its write; had the lead been
    handed to it, the next waiting write takes it, so no writer waits forever."""
    engine, writer = kept
    from core.billing import ledger_sql

    interrupted = ledger_sql._Write(_insert(7))
    interrupted.follow()
    interrupted.lead = True  # as if the previous leader had just woken it to lead
    after = ledger_sql._Write(_insert(8))
    after.follow()
    with writer._group:
        writer._waiting[:] = [interrupted, after]
        writer._leading = True
    writer._withdraw(interrupted)
    assert writer._waiting == [after] and after.lead and after.done.is_set()
    writer._lead(after)
    assert after.outcome() == 8 and writer._leading is False
    assert [a for a, _ in _rows(engine)] == [8]
