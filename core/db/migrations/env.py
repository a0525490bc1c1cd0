"""Alembic environment: runs against the connection handed in by core.db.migrate (or DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from core.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from core.config import load_settings
        from core.db.engine import make_engine

        engine = make_engine(load_settings().resolved_database_url())
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
