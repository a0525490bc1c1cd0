"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set).

With CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.config import Settings
from core.db import Database
from core.services import Services

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


# Streamlit's script runner (the AppTest page tests) installs the page as sys.modules["__main__"] and leaves it there;
# a later test in the same process that starts a "spawn" child would then have the child run that page as its main
# module, fail, and be replaced by the pool forever (a hang, seen when the suite was split across two processes).
_MAIN_MODULE = sys.modules.get("__main__")


@pytest.fixture(autouse=True)
def _the_real_main_module() -> Iterator[None]:
    if _MAIN_MODULE is not None and sys.modules.get("__main__") is not _MAIN_MODULE:
        sys.modules["__main__"] = _MAIN_MODULE
    yield
    if _MAIN_MODULE is not None and sys.modules.get("__main__") is not _MAIN_MODULE:
        sys.modules["__main__"] = _MAIN_MODULE


@pytest.fixture(autouse=True)
def _scratch_analytics_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the checkout's data/analytics.duckdb: a page or command run against a test database syncs a
    scratch store unless the test names one (a test that sets ANALYTICS_PATH itself overrides this)."""
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path_factory.mktemp("analytics") / "analytics.duckdb"))


def _pg_available() -> bool:
    if not PG_URL:
        return False
    try:
        eng = create_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        if IN_CI:
            raise
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    if IN_CI and not PG_URL:
        pytest.fail("CI=true but TEST_DATABASE_URL is not set: the ledger tests must run on PostgreSQL too.")
    return _pg_available()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the gateway's rate limits are shared through (REDIS_URL, else the local one); skipped when it does
    not answer, except with CI=true, where that fails."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if IN_CI:
            raise
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def make_runtime(url: str, tmp_path: Path, **settings: object) -> Database:
    if not url.startswith("sqlite"):  # SQLite's is beside its file; PostgreSQL's never in the repository's data/
        settings.setdefault("settle_spool_dir", tmp_path / "settle-spool")
    rt = Database(Settings(database_url=url, analytics_path=tmp_path / "analytics.duckdb", **settings))
    rt.init()
    return rt


def services_of(db: Database, **kwargs: object) -> Services:
    """The services container over a test database (as a page, the CLI or the gateway builds it)."""
    return Services(db, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Database]:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    yield rt
    rt.dispose()


@pytest.fixture
def pg_runtime(tmp_path: Path, pg_available: bool) -> Iterator[Database]:
    if not pg_available:
        pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    rt = make_runtime(f"{PG_URL}{sep}options=-csearch_path%3D{schema}", tmp_path)
    yield rt
    rt.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest) -> Database:
    """The same test on both databases."""
    name = "sqlite_runtime" if request.param == "sqlite" else "pg_runtime"
    return request.getfixturevalue(name)
