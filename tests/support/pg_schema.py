"""A scratch PostgreSQL schema: created, handed out as a database URL whose search_path is that schema, dropped."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from sqlalchemy import create_engine, text


@contextlib.contextmanager
def scratch_schema(pg_url: str, prefix: str = "t") -> Iterator[str]:
    """The URL of a new, empty schema on the PostgreSQL at `pg_url`; the schema and all it holds are dropped after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=" + quote(f"-csearch_path={schema}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
