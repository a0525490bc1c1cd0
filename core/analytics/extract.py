"""Read rows out of the system of record as Arrow, fast: the ADBC drivers for SQLite and PostgreSQL.

The big tables are read by id range in chunks, two chunks at a time on their own connections (the drivers release the
GIL while they fetch), in a child process for SQLite (see `Source.read`), and handed back in id order, so the
analytics store keeps rows in time order (DuckDB's min/max zone maps then skip whole row groups for a date range).

Values are normalised on the way out so every chunk has the same Arrow types whatever the driver infers: money as a
double plus a text column (SQLite keeps Numeric as REAL, INTEGER or TEXT; PostgreSQL's numeric comes as text; DuckDB
turns either into DECIMAL(18,9), rounding to 9 places), timestamps as text on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff',
naive UTC), nullable text as '' and a nullable count as -1 (ADBC's SQLite driver fixes a column's type from its first
batch, which may be all NULL); markups as whole 1/10,000 percents, and a request fingerprint's first 16 hex digits.
Of a cache hit's metadata only its `catalog_cost_usd` is read (what a hit that was not charged would have cost).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.ipc
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from core.config import REPO_ROOT
from core.errors import ConfigError, CoreError

CHUNK_IDS = 500_000
# A SQLite read of at most this many ids is done in this process with the standard library's sqlite3 (the same SQLite
# copy SQLAlchemy uses): starting the child costs about a second, more than such a read takes.
SMALL_READ_IDS = 50_000
SQLITE_BUSY_TIMEOUT_MS = 30_000
READERS = 2

USAGE_COLUMNS = (
    "id, created_at, user_id, ai_model_id, provider, category, deployment_type, endpoint_id, requests_count, "
    "{base_real} AS base_cost_real, {base_text} AS base_cost_text, cost_credits, status, {cache_hit} AS cache_hit, "
    "{sandbox} AS sandbox, transaction_id, {markup_bp} AS markup_bp, "
    "coalesce(substr(request_fingerprint, 1, 16), '') AS request_fp, coalesce(accrued_nano, -1) AS accrued_nano, "
    "api_key_id, coalesce(source, '') AS source, {catalog} AS catalog_cost_text"
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

            con = sqlite_dbapi.connect(self.uri)
            # wait for a writer (or another reader recovering the WAL index) instead of failing at once
            cur = con.cursor()
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.fetchall()
            cur.close()
            return con
        import adbc_driver_postgresql.dbapi as pg_dbapi

        return pg_dbapi.connect(self.uri)

    def _param(self, n: int) -> str:
        return "?" if self.dialect == "sqlite" else f"${n}"

    def usage_sql(self) -> str:
        if self.dialect == "sqlite":
            # a REAL as a double (exact binary; DuckDB rounds it to 9 places), TEXT as text: CAST(REAL AS TEXT) would
            # keep only 15 significant digits
            cols = USAGE_COLUMNS.format(
                base_real="CASE WHEN typeof(base_cost_usd) IN ('integer', 'real') THEN CAST(base_cost_usd AS REAL) "
                "ELSE 0.0 END",
                base_text="CASE WHEN typeof(base_cost_usd) = 'text' THEN base_cost_usd ELSE '' END",
                cache_hit="cache_hit",
                sandbox="sandbox",
                markup_bp="CAST(round(coalesce(markup_pct, 0) * 10000) AS INTEGER)",
                catalog="CASE WHEN cache_hit AND json_valid(metadata) THEN "
                "coalesce(CAST(json_extract(metadata, '$.catalog_cost_usd') AS TEXT), '') ELSE '' END",
            )
        else:
            cols = USAGE_COLUMNS.format(
                base_real="0.0::float8",
                base_text="base_cost_usd::text",
                cache_hit="cache_hit::int",
                sandbox="sandbox::int",
                markup_bp="round(coalesce(markup_pct, 0) * 10000)::bigint",
                catalog="CASE WHEN cache_hit THEN coalesce(metadata->>'catalog_cost_usd', '') ELSE '' END",
            )
        return self._range_sql("ai_usage_log", cols)

    def ledger_sql(self) -> str:
        meta = "metadata" if self.dialect == "sqlite" else "metadata::text"
        return self._range_sql("credit_transactions", LEDGER_COLUMNS.format(metadata=meta))

    def _range_sql(self, table: str, cols: str) -> str:
        return f"SELECT {cols} FROM {table} WHERE id > {self._param(1)} AND id <= {self._param(2)} ORDER BY id"  # noqa: S608

    # ---- reads ---------------------------------------------------------------------------------------------------
    def read(self, jobs: Sequence[Job]) -> Iterator[tuple[int, pa.Table]]:
        """For each job (in order), its rows as Arrow tables in id order: (job index, table).

        SQLite is read in a child process: the ADBC driver links its own copy of SQLite, and two copies of SQLite in
        one process lose each other's POSIX locks when either closes the file (sqlite.org/howtocorrupt.html, 2.2),
        which corrupts reads of a WAL database the app is writing. The child streams Arrow IPC back on a pipe, so
        reading (child) and inserting into DuckDB (parent) also run on both cores at once. A small read (at most
        SMALL_READ_IDS ids, e.g. the few rows written since the last sync) is done here with the standard library
        instead, which has no second SQLite and no child to start."""
        todo = [(i, j) for i, j in enumerate(jobs) if j.hi > j.lo]
        if not todo:
            return
        if self.dialect != "sqlite":
            for i, job in todo:
                for table in _chunks(self, job):
                    yield i, table
            return
        if sum(j.hi - j.lo for _, j in todo) <= SMALL_READ_IDS:
            yield from self._read_here(todo)
            return
        yield from self._read_in_child(todo)

    def _read_here(self, todo: list[tuple[int, Job]]) -> Iterator[tuple[int, pa.Table]]:
        import sqlite3

        con = sqlite3.connect(self.uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            for i, job in todo:
                for lo in range(job.lo, job.hi, job.chunk):
                    cur = con.execute(job.sql, (lo, min(lo + job.chunk, job.hi)))
                    names = [d[0] for d in cur.description]
                    rows = cur.fetchall()
                    if rows:
                        yield i, pa.table({n: [r[k] for r in rows] for k, n in enumerate(names)})
        finally:
            con.close()

    def _read_in_child(self, todo: list[tuple[int, Job]]) -> Iterator[tuple[int, pa.Table]]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        spec = json.dumps({"uri": self.uri, "dialect": self.dialect, "jobs": [dataclasses.asdict(j) for _, j in todo]})
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core.analytics.extract"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(spec.encode())
                proc.stdin.close()
                for i, _job in todo:
                    for batch in pa.ipc.open_stream(proc.stdout):
                        yield i, pa.Table.from_batches([batch])
            except (pa.ArrowInvalid, OSError) as exc:
                proc.kill()
                proc.wait()
                err.seek(0)
                raise SourceReadError(f"Reading the database for analytics failed: {_last_line(err.read())}") from exc
            finally:
                if proc.poll() is None and proc.stdout is not None:
                    proc.stdout.close()
                rc = proc.wait()
            if rc != 0:
                err.seek(0)
                raise SourceReadError(f"Reading the database for analytics failed: {_last_line(err.read())}")


class SourceReadError(CoreError):
    """The system of record could not be read for the analytics sync."""


@dataclass(frozen=True)
class Job:
    """Rows of one range query: lo < id <= hi, fetched `readers` chunks of CHUNK_IDS ids at a time."""

    sql: str
    lo: int
    hi: int
    readers: int = READERS
    chunk: int = CHUNK_IDS


def _last_line(data: bytes) -> str:
    """The error the reader process died of (ADBC puts the query on a line after the reason: keep both)."""
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln.split(":")[0] or ln.startswith(("adbc", "pyarrow", "OSError"))]
    picked = errors[-1] if errors else (lines[-1] if lines else "the reader process exited without a message")
    return picked[:500]


def _chunks(source: Source, job: Job) -> Iterator[pa.Table]:
    """The job's rows as Arrow tables in id order, `job.readers` chunks fetched at a time on their own connections."""
    bounds = [(a, min(a + job.chunk, job.hi)) for a in range(job.lo, job.hi, job.chunk)]
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def work(a: int, b: int) -> pa.Table:
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = source.connect()
            with lock:
                opened.append(con)
        return _fetch(con, job.sql, (a, b), source.dialect)

    pool = ThreadPoolExecutor(max_workers=job.readers, thread_name_prefix="analytics-read")
    pending: deque[Future[pa.Table]] = deque()
    try:
        it = iter(bounds)
        for a, b in it:
            pending.append(pool.submit(work, a, b))
            if len(pending) >= job.readers + 1:
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


def _child_main() -> None:
    """`python -m core.analytics.extract`: read the jobs given as JSON on stdin, write one Arrow IPC stream per job
    on stdout (every chunk cast to the job's first schema)."""
    spec = json.loads(sys.stdin.read())
    source = Source(spec["dialect"], spec["uri"], "")
    out = sys.stdout.buffer
    for raw in spec["jobs"]:
        writer = schema = None
        for table in _chunks(source, Job(**raw)):
            if writer is None:
                schema = table.schema
                writer = pa.ipc.new_stream(out, schema)
            elif table.schema != schema:
                table = table.cast(schema)
            for batch in table.to_batches(max_chunksize=262_144):
                writer.write_batch(batch)
        if writer is None:  # no rows in the range: an empty stream keeps the parent in step
            writer = pa.ipc.new_stream(out, pa.schema([("id", pa.int64())]))
        writer.close()
    out.flush()


if __name__ == "__main__":
    _child_main()
