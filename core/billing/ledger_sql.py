"""The ledger's SQL that is not on the hot path (Core statements built once: their compiled form is cached), and the
transactions every ledger write runs in (`write_transaction`, `LedgerWriter`).

The hot path (lock the account, read its state, append a ledger row, move the cached balance) is in accounts_sql.py.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime
from decimal import Decimal
from typing import Any

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
    """Where a `BillingService` runs its write transactions (`transaction()`, as `write_transaction` does).

    On a SQLite file the process's ledger writers take turns anyway (the writers' queue), so they share one kept
    connection instead of checking one out of the pool and back in for every transaction (~40 us of a write's ~60 us
    outside its statements, twice per billed call). The connection is taken again from the pool when it was
    closed or invalidated, after a fork (a child does not use its parent's), and after a transaction whose end
    could not be made clean (then it is closed). Elsewhere (PostgreSQL, in-memory SQLite, whose pool gives each
    thread its own database) every transaction checks a connection out, as `write_transaction` does.

    `engine` is the database's engine; the writer runs its transactions on its `write_engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = write_engine(engine)
        self._kept = engine.dialect.name == "sqlite" and _on_disk(engine)
        self._queue = _writer_queue(engine)  # looked up once: naming it renders the engine's URL (~5 us)
        self._conn: Connection | None = None
        self._pid = 0
        if self._kept:  # the engine's dispose() closes what its pool lent out, which the kept connection is not
            event.listen(engine, "engine_disposed", _closer(weakref.ref(self)))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if not self._kept:
            with write_transaction(self._engine) as conn:
                yield conn
            return
        with self._queue:
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated or self._pid != os.getpid():
                conn = self._conn = self._engine.connect()  # a forked child leaves its parent's connection alone
                self._pid = os.getpid()
            try:
                with _sqlite_transaction(self._engine, conn):
                    yield conn
            except BaseException:
                if not _clean(conn):
                    self._conn = None
                    with suppress(Exception):
                        conn.close()
                raise

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
