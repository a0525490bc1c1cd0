"""Read rows out of the system of record as Arrow, fast: the ADBC drivers for SQLite and PostgreSQL.

The big tables are read by id range in chunks, two chunks at a time on their own connections (the drivers release the
GIL while they fetch), and handed back in id order, so the analytics store keeps rows in time order (DuckDB's
min/max zone maps then skip whole row groups for a date range).

Values are normalised on the way out so every chunk has the same Arrow types whatever the driver infers:
money as text (SQLite keeps Numeric as REAL, INTEGER or TEXT; DuckDB turns the text into DECIMAL(18,9), rounding to
9 places), timestamps as text on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff', naive UTC), nullable text as '' (ADBC's
SQLite driver fixes a column's type from its first batch, which may be all NULL).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from core.errors import ConfigError

CHUNK_IDS = 500_000
READERS = 2

USAGE_COLUMNS = (
    "id, created_at, user_id, ai_model_id, provider, category, deployment_type, endpoint_id, requests_count, "
    "{base_cost} AS base_cost_usd, cost_credits, status, {cache_hit} AS cache_hit, {sandbox} AS sandbox, transaction_id"
)
LEDGER_COLUMNS = (
    "id, created_at, user_id, amount, transaction_type, "
    "CASE WHEN transaction_type = 'usage' THEN '' ELSE coalesce(description, '') END AS description, balance_after, "
    "CASE WHEN transaction_type = 'usage' THEN '' ELSE coalesce({metadata}, '') END AS metadata"
)


@dataclass(frozen=True)
class Source:
    """Where to read from: the dialect and an ADBC connection string, and a fingerprint without secrets."""

    dialect: str  # sqlite | postgresql
    uri: str
    fingerprint: str

    @classmethod
    def from_engine(cls, engine: Engine) -> Source:
        url = engine.url
        backend = url.get_backend_name()
        if backend == "sqlite":
            db = url.database or ""
            if not db or db == ":memory:" or db.startswith("file:"):
                raise ConfigError(
                    "Spend analytics reads the SQLite database file directly; an in-memory database cannot be synced."
                )
            return cls("sqlite", f"file:{db}?mode=ro", f"sqlite:{db}")
        if backend == "postgresql":
            libpq = url.set(drivername="postgresql")
            uri = libpq.render_as_string(hide_password=False)
            return cls("postgresql", uri, make_url(libpq.render_as_string(hide_password=True)).render_as_string())
        raise ConfigError(f"Spend analytics cannot read a {backend} database; use SQLite or PostgreSQL.")

    # ---- connections ---------------------------------------------------------------------------------------------
    def connect(self) -> Any:
        if self.dialect == "sqlite":
            import adbc_driver_sqlite.dbapi as sqlite_dbapi

            return sqlite_dbapi.connect(self.uri)
        import adbc_driver_postgresql.dbapi as pg_dbapi

        return pg_dbapi.connect(self.uri)

    def _param(self, n: int) -> str:
        return "?" if self.dialect == "sqlite" else f"${n}"

    def usage_sql(self) -> str:
        if self.dialect == "sqlite":
            cols = USAGE_COLUMNS.format(
                base_cost="CAST(base_cost_usd AS TEXT)", cache_hit="cache_hit", sandbox="sandbox"
            )
        else:
            cols = USAGE_COLUMNS.format(
                base_cost="base_cost_usd::text", cache_hit="cache_hit::int", sandbox="sandbox::int"
            )
        return self._range_sql("ai_usage_log", cols)

    def ledger_sql(self) -> str:
        meta = "metadata" if self.dialect == "sqlite" else "metadata::text"
        return self._range_sql("credit_transactions", LEDGER_COLUMNS.format(metadata=meta))

    def _range_sql(self, table: str, cols: str) -> str:
        return f"SELECT {cols} FROM {table} WHERE id > {self._param(1)} AND id <= {self._param(2)} ORDER BY id"  # noqa: S608

    # ---- reads ---------------------------------------------------------------------------------------------------
    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> pa.Table:
        con = self.connect()
        try:
            return _fetch(con, sql, params, self.dialect)
        finally:
            con.close()

    def chunks(
        self, sql: str, lo: int, hi: int, *, chunk: int = CHUNK_IDS, readers: int = READERS
    ) -> Iterator[pa.Table]:
        """Rows with lo < id <= hi as Arrow tables in id order, `readers` chunks fetched at a time in parallel."""
        if hi <= lo:
            return
        bounds = [(a, min(a + chunk, hi)) for a in range(lo, hi, chunk)]
        local = threading.local()
        opened: list[Any] = []
        lock = threading.Lock()

        def work(a: int, b: int) -> pa.Table:
            con = getattr(local, "con", None)
            if con is None:
                con = local.con = self.connect()
                with lock:
                    opened.append(con)
            return _fetch(con, sql, (a, b), self.dialect)

        pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="analytics-read")
        pending: deque[Future[pa.Table]] = deque()
        try:
            it = iter(bounds)
            for a, b in it:
                pending.append(pool.submit(work, a, b))
                if len(pending) >= readers + 1:
                    break
            while pending:
                table = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(work, *nxt))
                if table.num_rows:
                    yield table
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True)
            for con in opened:
                con.close()


def _fetch(con: Any, sql: str, params: tuple[Any, ...], dialect: str) -> pa.Table:
    cur = con.cursor()
    try:
        if dialect == "sqlite":
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
        cur.execute(sql, params or None)
        return cur.fetch_arrow_table()
    finally:
        cur.close()
