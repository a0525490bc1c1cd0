"""A database error becomes one sentence that says what is wrong with the database and what to do about it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from core.db.engine import database_problem


def _error(engine_url: str, statement: str) -> DBAPIError:
    engine = create_engine(engine_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_a_read_only_database_says_so(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    sqlite3.connect(path).execute("CREATE TABLE users (id INTEGER)").connection.commit()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"  # what a file the user may not write behaves like
    exc = _error(url, "INSERT INTO users VALUES (1)")
    assert isinstance(exc, OperationalError)
    message = database_problem(exc, create_engine(url))
    assert (
        message.startswith("The database at sqlite:///file") and "is read-only (attempt to write a readonly" in message
    )
    assert message.endswith("or point DATABASE_URL at a writable copy.")


@pytest.mark.parametrize("statement", ["SELECT * FROM users", "INSERT INTO users VALUES (1)"])
def test_a_database_never_initialised_says_to_run_init(tmp_path: Path, statement: str) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    message = database_problem(_error(url, statement), create_engine(url))
    assert message == (
        f"The database at {url} is not set up (no such table: users): run `python -m core init` first, or point "
        "DATABASE_URL at your database."
    )
