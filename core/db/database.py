"""The system of record for one process: settings -> engine -> session factory, and bringing it up to date.

`core.services.Services` owns one `Database` and hands its session factory to the engine's parts; pages and the
command line never open a session themselves. Tests build their own against a temporary database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, load_settings
from core.db.engine import check_connection, make_engine, make_session_factory, write_session
from core.db.migrate import upgrade
from core.db.models import AIUsageLog

if TYPE_CHECKING:
    from core.catalog.loader import LoadReport


@dataclass
class Database:
    settings: Settings = field(default_factory=load_settings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url())

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.session_factory.begin() as s:
            yield s

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for a read-then-write: on SQLite its transaction takes the write lock first (BEGIN IMMEDIATE), so
        a concurrent writer makes it wait (the busy timeout) instead of failing at once with "database is locked"."""
        with write_session(self.session_factory) as s:
            yield s

    def init(self) -> LoadReport:
        """Migrate the schema and load the catalogs into it; running it twice changes nothing."""
        from core.catalog.loader import load_catalogs  # the catalog sits on the database, not under it

        check_connection(self.engine)
        upgrade(self.engine)
        with self.session() as s:
            return load_catalogs(s)

    def usage_count(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(AIUsageLog)) or 0)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
