"""Engine and session factory for the configured database (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.db.sqlite_pg_time import before_cursor_execute, register_now
from core.errors import ConfigError

SUPPORTED_SCHEMES = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution options of a connection whose transaction must hold the write lock from its first statement (the ledger):
# on SQLite it begins with BEGIN IMMEDIATE; PostgreSQL ignores the option (it locks rows with SELECT ... FOR UPDATE).
WRITE_LOCK = {"sqlite_begin": "IMMEDIATE"}
PG_POOL_RECYCLE_SECONDS = 1800
PG_POOL_SIZE = 32  # kept open per process (opened as needed); two gateway workers keep at most 64 of the server's 100
PG_POOL_OVERFLOW = 16


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # isolation_level=None: the engine issues BEGIN itself (BEGIN IMMEDIATE for writes that must not race).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    register_now(dbapi_conn)


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off; start the transaction the way SQLAlchemy expects. A deferred BEGIN
    # that reads and later writes can fail at once with "database is locked" (the busy timeout cannot help once its
    # snapshot is stale), so read-then-write paths ask for BEGIN IMMEDIATE through the WRITE_LOCK execution option.
    # Issued on the driver connection: the same statement as conn.exec_driver_sql(...) without SQLAlchemy's
    # per-statement machinery, which cost ~17% of a ledger charge's CPU (measured with benchmarks/billing.py).
    # A ledger write transaction (core.billing.ledger_sql) begins on the driver connection itself; a Core statement
    # run inside it joins that transaction.
    db = conn.connection.driver_connection
    if db.in_transaction:
        return
    mode = conn.get_execution_options().get("sqlite_begin")
    db.execute("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def _pg_read_committed(dbapi_conn: Any, _record: Any) -> None:
    # The ledger's locking reads assume READ COMMITTED: after waiting for an account's row lock, the next statement
    # must see every hold committed meanwhile (REPEATABLE READ would keep the older snapshot: an overdraft). A server,
    # database or role may default to a stricter level (default_transaction_isolation), and a statement in autocommit
    # (the one-round-trip hold and settle) runs at that session default, so each connection sets it; transactions the
    # engine begins name the level too (isolation_level in make_engine).
    was = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        dbapi_conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
    finally:
        dbapi_conn.autocommit = was


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine, refusing unknown schemes with one clear sentence."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"DATABASE_URL {url!r} is not a database URL; use sqlite:///path or postgresql+psycopg://..."
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL scheme {parsed.drivername!r} is not supported; use sqlite:///path or postgresql+psycopg://..."
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            try:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"DATABASE_URL {url!r}: cannot create the folder {Path(db).parent} ({exc.strerror or exc}); "
                    "choose a path you can write."
                ) from exc
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    else:
        # No pre-ping: it is a SELECT 1 round trip on every checkout (~10% of a ledger charge's CPU, measured with
        # benchmarks/billing.py). Connections are recycled before server or proxy idle timeouts instead; a connection
        # the server dropped anyway (a restart) fails the one call that meets it, and SQLAlchemy then invalidates the
        # whole pool so the next call reconnects. Pass pool_pre_ping=True to make_engine to trade the round trip back.
        kwargs.setdefault("pool_pre_ping", False)
        kwargs.setdefault("pool_recycle", PG_POOL_RECYCLE_SECONDS)
        # Connections a process keeps open: a connection opened past them is closed on its return, and opening one
        # starts a server process (milliseconds of CPU on both sides). At 64 clients on two gateway workers, a pool
        # of 10 opened and closed connections all the time and served 250 calls/s on two idle cores instead of 600.
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_POOL_OVERFLOW)
        kwargs.setdefault("isolation_level", "READ COMMITTED")  # see _pg_read_committed
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(f"No driver for {parsed.drivername!r}; use postgresql+psycopg://...") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        # PostgreSQL's NOW() - INTERVAL '30 days' (the specification's spend SQL) runs on SQLite too.
        event.listen(engine, "before_cursor_execute", before_cursor_execute, retval=True)
    else:
        event.listen(engine, "connect", _pg_read_committed)
    return engine


def check_connection(engine: Engine) -> None:
    """Fail with one line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise ConfigError(database_problem(exc, engine)) from exc


def database_problem(exc: DBAPIError, engine: Engine) -> str:
    """One sentence for a database error: where the database is, what it said, what to do."""
    reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip()
    reason = reason.splitlines()[0] if reason else type(exc).__name__
    where = engine.url.render_as_string(hide_password=True)
    if "database is locked" in reason or "lock timeout" in reason:
        return f"The database at {where} stayed busy (another command is writing); try again in a moment."
    if "readonly database" in reason or "read-only" in reason:
        return (
            f"The database at {where} is read-only ({reason}); nothing was written: make the file and its folder "
            "writable for this user, or point DATABASE_URL at a writable copy."
        )
    if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
        return (
            f"The database at {where} is not set up ({reason}): run `python -m core init` first, or point "
            "DATABASE_URL at your database."
        )
    if isinstance(exc, OperationalError):
        return f"Cannot reach the database at {where}: {reason}"
    return f"The database at {where} refused the operation ({reason}); nothing was written."


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction that holds the write lock from its first statement (SQLite: BEGIN IMMEDIATE, which
    waits for a concurrent writer up to the busy timeout; a deferred BEGIN that read first fails at once instead).
    Committed on success, rolled back on error. PostgreSQL ignores the option."""
    engine = session_factory.kw["bind"]
    with session_factory(bind=engine.execution_options(**WRITE_LOCK)) as s, s.begin():
        yield s


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def statement_reads(engine: Engine) -> Engine:
    """The engine for reads that need no transaction around them (each statement reads committed data alone): on
    PostgreSQL in autocommit, which saves the BEGIN and ROLLBACK round trips of a transaction; SQLite's engine as it
    is (no round trips to save, and its BEGIN is issued by an event that autocommit would not undo)."""
    return engine if is_sqlite(engine) else engine.execution_options(isolation_level="AUTOCOMMIT")
