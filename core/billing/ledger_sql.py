"""The ledger's SQL that is not on the hot path (Core statements built once: their compiled form is cached), and the
transactions every ledger write runs in (`write_transaction`, `LedgerWriter`).

The hot path (lock the account, read its state, append a ledger row, move the cached balance) is in accounts_sql.py.
"""

from __future__ import annotations

import contextvars
import copy
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, event, func, insert, select
from sqlalchemy.exc import DBAPIError

from core.billing.types import Transaction
from core.db.engine import WRITE_LOCK
from core.db.models import AIUsageLog, AuditLog, CreditHold, CreditTransaction, User, utcnow
from core.db.write_queue import WriteQueue
from core.redaction import redact_value

users = User.__table__
ledger = CreditTransaction.__table__
holds = CreditHold.__table__
usage_log = AIUsageLog.__table__
audit = AuditLog.__table__

T = TypeVar("T")
# At most this many writes share one transaction (a group commit): the writer that runs them answers its own call
# only after all of them, so its wait is bounded.
GROUP_MAX = 32

_ACCOUNT_COLUMNS = (users.c.id, users.c.email, users.c.credit_balance, users.c.developer_markup_pct)
READ_BY_ID = select(*_ACCOUNT_COLUMNS).where(users.c.id == bindparam("uid"))
READ_BY_EMAIL = select(*_ACCOUNT_COLUMNS).where(users.c.email == bindparam("email"))
HELD = (
    select(func.coalesce(func.sum(holds.c.credits), 0))
    .where(holds.c.user_id == bindparam("uid"), holds.c.status == "held", holds.c.expires_at > bindparam("now"))
    .scalar_subquery()
)
HELD_ONLY = select(HELD.label("held"))
TX_BY_ID = select(ledger).where(ledger.c.id == bindparam("tx_id"))

HOLD_BY_ID = select(holds).where(holds.c.id == bindparam("hold_id"))

INSERT_USAGE = insert(usage_log).returning(usage_log.c.id)
INSERT_AUDIT = insert(audit)


def write_engine(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions hold the write lock from their first statement."""
    return engine.execution_options(**WRITE_LOCK)


# SQLite lets one writer in at a time: the ledger's writers queue for it (core.db.write_queue), in this process and
# across processes, instead of sleeping in SQLite's busy handler.
_SQLITE_WRITERS: dict[str, WriteQueue] = {}
_WRITERS_GUARD = threading.Lock()


def _on_disk(engine: Engine) -> bool:
    database = engine.url.database
    return bool(database) and database != ":memory:" and not database.startswith("file::memory:")


def _writer_queue(engine: Engine) -> WriteQueue | nullcontext[None]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_GUARD:
        queue = _SQLITE_WRITERS.get(str(engine.url))
        if queue is None:
            queue = _SQLITE_WRITERS[str(engine.url)] = WriteQueue(engine.url.database if _on_disk(engine) else None)
        return queue


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One database transaction on a `write_engine`: committed on success, rolled back (nothing written) on error."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn, conn.begin():
            yield conn
        return
    with _writer_queue(engine), engine.connect() as conn, _sqlite_transaction(engine, conn):
        yield conn


class LedgerWriter:
    """Where a `BillingService` runs its write transactions (`run(op)`, as `write_transaction` would).

    On a SQLite file the process's ledger writers take turns anyway (the writers' queue), so they share one kept
    connection instead of checking one out of the pool and back in for every transaction (~40 us of a write's ~60 us
    outside its statements, twice per billed call). The connection is taken again from the pool when it was
    closed or invalidated, after a fork (a child does not use its parent's), and after a transaction whose end
    could not be made clean (then it is closed). Elsewhere (PostgreSQL, in-memory SQLite, whose pool gives each
    thread its own database) every transaction checks a connection out, as `write_transaction` does.

    `engine` is the database's engine; the writer runs its transactions on its `write_engine`.

    `run(op)` is how the ledger writes. On a kept SQLite connection the writes that arrive while another is being
    written are committed together (a group commit): the first caller to find no write under way leads, takes the
    waiting writes (up to GROUP_MAX), runs each in its own SAVEPOINT of one transaction, in the order they came, and
    commits once; then it hands the lead to the first write that arrived meanwhile. A write that fails is rolled back
    to its savepoint alone and its caller gets its error; a failed BEGIN or COMMIT fails every write of the group,
    none of which was written. Each write runs with its caller's context variables. Why: with one writer at a time,
    16 concurrent gateway calls spent most of their hold and settlement waiting for the writers ahead of them, each
    of which, on waking, had to wait for the GIL between its statements; a group runs back to back in one thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = write_engine(engine)
        self._kept = engine.dialect.name == "sqlite" and _on_disk(engine)
        self._queue = _writer_queue(engine)  # looked up once: naming it renders the engine's URL (~5 us)
        self._conn: Connection | None = None
        self._pid = 0
        self._group = threading.Lock()  # guards the waiting writes and whether one leads
        self._waiting: list[_Write] = []
        self._leading = False
        self._group_pid = os.getpid()
        if self._kept:  # the engine's dispose() closes what its pool lent out, which the kept connection is not
            event.listen(engine, "engine_disposed", _closer(weakref.ref(self)))

    def run(self, op: Callable[[Connection], T], *, one_statement: bool = False) -> T:
        """`op(conn)` in a write transaction, committed before this returns (with others, on a kept SQLite
        connection: see the class); its exception, with nothing of it written, when it raises.

        `one_statement`: `op` runs a single statement, which SQLite makes a transaction of its own (taking the write
        lock before it reads): on a kept connection, when no other write waits, it runs so, without BEGIN and COMMIT
        (two statements fewer, each of which gave the GIL away and waited to take it back under load)."""
        if not self._kept:
            with write_transaction(self._engine) as conn:
                return op(conn)
        write = _Write(op, one_statement)
        with self._group:
            if self._group_pid != os.getpid():  # a forked child: its parent's writers are not its own
                self._waiting, self._leading, self._group_pid = [], False, os.getpid()
            lead = not self._leading
            if not lead:
                write.follow()
            self._waiting.append(write)
            self._leading = True
        if not lead:
            try:
                write.done.wait()  # type: ignore[union-attr]
            except BaseException:  # interrupted while waiting: not written, and a lead handed to it is passed on
                self._withdraw(write)
                raise
            if not write.lead:
                return write.outcome()
        self._lead(write)
        return write.outcome()

    def _lead(self, mine: _Write) -> None:
        """Run the waiting writes (`mine` first among them) in one transaction, then pass the lead on."""
        group: list[_Write] = []
        try:
            with self._queue:
                with self._group:
                    group = self._waiting[:GROUP_MAX]
                    del self._waiting[:GROUP_MAX]
                self._run_group(group)
        finally:
            with self._group:
                if mine in self._waiting:  # the queue could not be entered: `mine` fails with that error
                    self._waiting.remove(mine)
                self._pass_lead()
            for write in group:
                if not write.answered:  # the leader was interrupted before this write was answered
                    write.fail(RuntimeError("The ledger write was interrupted before it was committed; try again."))
                if write.done is not None:
                    write.done.set()

    def _withdraw(self, write: _Write) -> None:
        with self._group:
            if write not in self._waiting:
                return  # in a group already: it is answered as the others
            self._waiting.remove(write)
            if write.lead:
                self._pass_lead()

    def _pass_lead(self) -> None:
        """(Under the group lock.) Wake the first waiting write to lead the next group, or note that none leads."""
        if self._waiting:
            self._waiting[0].lead = True
            self._waiting[0].done.set()  # type: ignore[union-attr]  (a waiting write follows)
        else:
            self._leading = False

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated or self._pid != os.getpid():
            conn = self._conn = self._engine.connect()  # a forked child leaves its parent's connection alone
            self._pid = os.getpid()
        return conn

    def _run_group(self, group: list[_Write]) -> None:
        alone = len(group) == 1
        conn: Connection | None = None
        try:
            conn = self._connection()  # a database that cannot be opened fails the group with its own error
            db = conn.connection.driver_connection
            if alone and group[0].one_statement:  # its own transaction (see run)
                group[0].result = group[0].call(conn)
                group[0].answered = True
                return
            with _sqlite_transaction(self._engine, conn):
                for write in group:
                    if alone:
                        write.result = write.call(conn)
                        continue
                    db.execute("SAVEPOINT ledger_write")
                    try:
                        write.result = write.call(conn)
                    except Exception as exc:
                        write.error = exc
                        db.execute("ROLLBACK TO ledger_write")  # fails when SQLite ended the transaction: all fail
                    db.execute("RELEASE ledger_write")
        except BaseException as exc:
            if conn is not None and not _clean(conn):
                self._conn = None
                with suppress(Exception):
                    conn.close()
            # nothing of the group was written: a write that failed keeps its own error, the others get this one
            # (each its own copy: one exception raised in several threads at once would share its traceback)
            first = True
            for write in group:
                if write.error is None:
                    write.fail(exc if first else _copied(exc))
                    first = False
                write.answered = True
            return
        for write in group:
            write.answered = True

    def close(self, *, disposed: bool = False) -> None:
        """Give the kept connection back (Services.close does; so does disposing of the engine), and the writers'
        queue its file (opened again by the next writer): a process that opens many databases (the test suite, a
        server that reconfigures) would otherwise keep their files open until it ran out of descriptors."""
        with self._queue:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                if disposed:  # its pool is gone: back there it would stay open until garbage-collected
                    with suppress(Exception):
                        conn.invalidate()
                conn.close()
        if isinstance(self._queue, WriteQueue):
            self._queue.close_file()


class _Write:
    """One write waiting for, or in, a group: its operation, its caller's context, and its answer."""

    __slots__ = ("answered", "context", "done", "error", "lead", "one_statement", "op", "result")

    def __init__(self, op: Callable[[Connection], Any], one_statement: bool = False) -> None:
        self.op = op
        self.one_statement = one_statement
        self.context: contextvars.Context | None = None  # a write that leads runs in its own thread and context
        self.done: threading.Event | None = None
        self.lead = False  # woken to lead the next group rather than with its answer
        self.answered = False
        self.result: Any = None
        self.error: BaseException | None = None

    def follow(self) -> None:
        """Made to wait for a leader: it will run in the leader's thread, with this caller's context variables."""
        self.context = contextvars.copy_context()
        self.done = threading.Event()

    def call(self, conn: Connection) -> Any:
        return self.op(conn) if self.context is None else self.context.run(self.op, conn)

    def fail(self, exc: BaseException) -> None:
        self.result, self.error = None, exc

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _copied(exc: BaseException) -> BaseException:
    """A copy of `exc` (same type and fields) caused by it; `exc` itself when it cannot be copied."""
    try:
        twin = copy.copy(exc)
    except Exception:
        return exc
    twin.__cause__, twin.__traceback__ = exc, None
    return twin


def _closer(ref: weakref.ReferenceType[LedgerWriter]) -> Callable[[Engine], None]:
    def on_dispose(_engine: Engine) -> None:
        writer = ref()
        if writer is not None:
            writer.close(disposed=True)

    return on_dispose


def _clean(conn: Connection) -> bool:
    """Whether a connection is fit for the next transaction: open, valid and in no transaction."""
    try:
        return not (conn.closed or conn.invalidated or conn.in_transaction()) and not (
            conn.connection.driver_connection.in_transaction
        )
    except Exception:
        return False


@contextmanager
def _sqlite_transaction(engine: Engine, conn: Connection) -> Iterator[None]:
    """SQLite: the transaction begun, committed and rolled back on the driver connection, without SQLAlchemy's
    per-transaction machinery (its Transaction objects and begin and commit events took ~35 us of the ~70 us a
    ledger write spent outside its own statements, twice per billed call). The BEGIN is the one the engine's
    `_sqlite_begin` would issue (IMMEDIATE on a `write_engine`) and fails as that one does (the driver's error). A
    Core statement run inside begins SQLAlchemy's transaction on top of it (`_sqlite_begin` then issues nothing, the
    driver being in this transaction already), and SQLAlchemy then commits or rolls back. A failed COMMIT or ROLLBACK
    raises SQLAlchemy's error for it, as `Connection.commit` did."""
    db = conn.connection.driver_connection
    mode = engine.get_execution_options().get("sqlite_begin")
    db.execute("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction():
            conn.rollback()
        elif not conn.invalidated and db.in_transaction:  # an invalidated connection was closed: nothing to undo
            _driver_end(engine, db.rollback)
        raise
    if conn.in_transaction():
        conn.commit()
    else:
        _driver_end(engine, db.commit)


def _driver_end(engine: Engine, end: Callable[[], None]) -> None:
    try:
        end()
    except engine.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect) from exc


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


def to_transaction(row: Any) -> Transaction:
    m = row._mapping
    return Transaction(
        id=m["id"],
        user_id=m["user_id"],
        created_at=m["created_at"],
        amount=m["amount"],
        transaction_type=m["transaction_type"],
        description=m["description"],
        idempotency_key=m["idempotency_key"],
        balance_after=m["balance_after"],
        metadata=m["metadata"],
    )


def write_audit(conn: Connection, *, actor: str, action: str, target: str | None, details: dict[str, Any]) -> None:
    row = {"at": utcnow(), "actor": actor, "action": action, "target": target, "details": details}
    conn.execute(INSERT_AUDIT, redact_value(row))


def json_safe(value: Any) -> Any:
    """Metadata goes into a JSON column: Decimals become exact strings, tuples lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
