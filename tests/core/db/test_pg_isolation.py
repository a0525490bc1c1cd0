"""The ledger's locking reads assume READ COMMITTED on PostgreSQL (core/db/engine.py, _pg_read_committed): every
connection the engine opens runs at that level, in its transactions and in autocommit statements alike, even when the
server, database or role defaults to a stricter level."""

from __future__ import annotations

from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db.engine import make_engine, statement_reads
from tests.conftest import PG_URL

STRICT = "-cdefault_transaction_isolation=serializable"


def _strict_url() -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=" + quote(STRICT)


def _level(conn) -> str:
    return conn.execute(text("SHOW transaction_isolation")).scalar_one()


def test_a_stricter_server_default_is_what_a_plain_connection_gets(pg_available: bool) -> None:
    """The setup below means something: without the engine's setting, this URL's sessions run SERIALIZABLE."""
    url = make_url(_strict_url()).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("serializable",)


def test_transactions_and_autocommit_statements_run_read_committed(pg_available: bool) -> None:
    engine = make_engine(_strict_url(), pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            assert _level(conn) == "read committed"
        with statement_reads(engine).connect() as conn:  # the one-round-trip hold and settle run like this
            assert _level(conn) == "read committed"
        with engine.begin() as conn:  # the same pooled connection, back from autocommit
            assert _level(conn) == "read committed"
        engine.dispose()  # and a connection opened anew
        with statement_reads(engine).connect() as conn:
            assert _level(conn) == "read committed"
        with engine.connect() as conn:
            assert _level(conn) == "read committed"
    finally:
        engine.dispose()


def test_sqlite_is_left_alone(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.fixture
def pg_available(pg_available: bool) -> bool:  # type: ignore[no-redef]
    if not pg_available:
        pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
    return pg_available
