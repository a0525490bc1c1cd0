"""The Alembic migrations and the ORM models describe the same tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import Database
from core.db.models import Base


def test_migrated_schema_matches_the_models(runtime: Database) -> None:
    with runtime.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
