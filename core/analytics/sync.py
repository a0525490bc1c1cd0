"""Sync the analytics store from the system of record: new rows only, by id watermark; a full rebuild on demand.

A sync is a full rebuild when asked, when nothing is published, when the store was written by another schema
version or from another database, or when the source no longer holds the row the watermark points at with the same
timestamp (the history was wiped and rewritten, e.g. `python -m core demo --replace`). Otherwise it is incremental:

- the small tables (users with their team, teams, ai_models, inference_endpoints, api_keys) are copied whole;
- `ai_usage_log` and `credit_transactions` rows with an id above the watermark are appended, and the last
  LOOKBACK_IDS ids below it are read again and inserted only when absent (on PostgreSQL a transaction that took a lower
  id may commit after a higher one; the anti-join means a row is never counted twice);
- the new endpoint uptime debits and refunds are attributed and appended to `ledger_spend`.

Rows are treated as immutable once written (the usage log and the ledger are append-only); an edited row is picked
up by a full rebuild (`python -m core spend sync --full`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, text

from core.analytics import extract
from core.analytics.extract import Job, Source
from core.analytics.filters import local_midnight_utc, zone
from core.analytics.schema import DERIVE_REFUNDS, DERIVE_UPTIME, ROLLUP, SCHEMA_VERSION, TABLES_DDL
from core.analytics.store import AnalyticsStore, StoreState

LOOKBACK_IDS = 10_000
INSERT_ROWS = 250_000  # rows gathered per INSERT into DuckDB
WRITE_MEMORY_LIMIT = "3GB"

# progress(done, total): source rows copied so far, of about `total` (ids above the watermarks; gaps make it an
# upper bound). Called after every chunk of a sync that copies rows, and once with done == total at the end.
Progress = Callable[[int, int], None]

# A cache hit's provider cost is 0 (the source row stores 0; migration 0012 moved older rows' figure into metadata).
# Its catalog cost (metadata catalog_cost_usd, else the source's base_cost_usd as rows before 0012 kept it) is its
# cache_saving_nano, and its priced_nano (the cost its credits were computed from) when it was charged anything
# (credits, or nano-credits under accrual), else 0: a free hit was priced at nothing.
USAGE_INSERT = """
INSERT INTO ai_usage_log
SELECT id, CAST(created_at AS TIMESTAMP), user_id, ai_model_id, provider, category, deployment_type, endpoint_id,
       coalesce(requests_count, 1), CASE WHEN hit THEN 0 ELSE usd END, CASE WHEN hit THEN 0 ELSE nano END,
       CASE WHEN NOT hit THEN nano WHEN coalesce(cost_credits, 0) > 0 OR accrued_nano > 0 THEN catalog_nano ELSE 0 END,
       CASE WHEN hit THEN catalog_nano ELSE 0 END,
       coalesce(cost_credits, 0), status, hit, CAST(sandbox AS BOOLEAN), transaction_id,
       markup_bp, TRY_CAST('0x' || NULLIF(request_fp, '') AS UBIGINT), NULLIF(accrued_nano, -1),
       CAST(api_key_id AS INTEGER), NULLIF(source, '')
FROM (
    SELECT *, CAST(CAST(usd AS DECIMAL(38, 9)) * 1000000000 AS BIGINT) AS nano,
           coalesce(CAST(CAST(catalog AS DECIMAL(38, 9)) * 1000000000 AS BIGINT),
                    CAST(CAST(usd AS DECIMAL(38, 9)) * 1000000000 AS BIGINT)) AS catalog_nano
    FROM (
        SELECT *, CASE WHEN base_cost_text <> '' THEN CAST(base_cost_text AS DECIMAL(18, 9))
                       ELSE CAST(base_cost_real AS DECIMAL(18, 9)) END AS usd,
               CAST(cache_hit AS BOOLEAN) AS hit, TRY_CAST(NULLIF(catalog_cost_text, '') AS DECIMAL(18, 9)) AS catalog
        FROM chunk
    )
) {where}
"""
LEDGER_INSERT = """
INSERT INTO credit_transactions
SELECT id, CAST(created_at AS TIMESTAMP), user_id, amount, transaction_type, NULLIF(description, ''), balance_after,
       NULLIF(metadata, '')
FROM chunk {where}
"""
SMALL_TABLES = {
    "users": (
        "SELECT u.id, u.email, u.name, u.role, m.team_id FROM users u LEFT JOIN team_members m ON m.user_id = u.id"
    ),
    "teams": "SELECT id, name, owner_id FROM teams",
    "ai_models": "SELECT id, provider, model_id, model_name, deployment_type, category FROM ai_models",
    "inference_endpoints": "SELECT id, name, owner_id, model_repo, ai_model_id, hardware_id FROM inference_endpoints",
    "api_keys": "SELECT id, user_id AS owner_id, name, prefix FROM api_keys",
}


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    mode: str  # full | incremental | none (the store was fresh, or the source had nothing new)
    reason: str
    usage_rows: int  # rows appended by this sync
    ledger_rows: int
    total_usage_rows: int
    total_ledger_rows: int
    seconds: float
    as_of: datetime  # naive UTC
    version: int


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _anchor(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.isoformat(sep=" ")


class _SourceProbe:
    """Small questions asked of the source through SQLAlchemy: watermarks and anchors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def max_id(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar() or 0)  # noqa: S608

    def count_above(self, table: str, lo: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE id > :lo"), {"lo": lo}).scalar() or 0)  # noqa: S608

    def anchor(self, table: str, row_id: int) -> str | None:
        if row_id <= 0:
            return None
        with self.engine.connect() as conn:
            value = conn.execute(text(f"SELECT created_at FROM {table} WHERE id = :id"), {"id": row_id}).scalar()  # noqa: S608
        return _anchor(value)

    def small_table(self, name: str) -> pa.Table:
        with self.engine.connect() as conn:
            result = conn.execute(text(SMALL_TABLES[name]))
            cols = list(result.keys())
            rows = result.fetchall()
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})


def _full_reason(state: StoreState | None, source: Source, probe: _SourceProbe, full: bool) -> str | None:
    if full:
        return "full rebuild requested"
    if state is None:
        return "no store yet"
    if state.schema_version != SCHEMA_VERSION:
        return f"store schema {state.schema_version} != {SCHEMA_VERSION}"
    if state.source != source.fingerprint:
        return "the store was built from another database"
    for table, wm, anchor in (
        ("ai_usage_log", state.usage_watermark, state.usage_anchor),
        ("credit_transactions", state.ledger_watermark, state.ledger_anchor),
    ):
        if wm and probe.anchor(table, wm) != anchor:
            return f"{table} was rewritten in the source (row {wm} changed or vanished)"
    return None


def sync(
    engine: Engine,
    store: AnalyticsStore,
    *,
    full: bool = False,
    max_age_seconds: float | None = None,
    reporting_tz: str = "UTC",
    credit_usd: Decimal = Decimal("0.04"),
    progress: Progress | None = None,
    lock_timeout: float | None = None,
) -> SyncReport:
    """Bring the store up to date with the source. With `max_age_seconds`, do nothing when the store is that fresh.
    `lock_timeout`: how long to wait for another process's sync (SyncBusyError after it; default the store's).

    A full rebuild sums `daily_spend` in `reporting_tz` at `credit_usd`; an incremental sync keeps the store's.
    `progress` hears how many rows have been copied (see `Progress`)."""
    t0 = time.perf_counter()
    zone(reporting_tz)
    credit_nano = int(Decimal(credit_usd) * 10**9)
    source = Source.from_engine(engine)
    probe = _SourceProbe(engine)
    with store.sync_lock() if lock_timeout is None else store.sync_lock(lock_timeout):
        state = store.state()
        if (
            max_age_seconds is not None
            and not full
            and state is not None
            and state.schema_version == SCHEMA_VERSION
            and state.source == source.fingerprint
            and _utcnow() - store.as_of(state) <= timedelta(seconds=max_age_seconds)
        ):
            return _report("none", "fresh enough", 0, 0, state, store, t0)
        reason = _full_reason(state, source, probe, full)
        started = _utcnow()
        hi_usage = probe.max_id("ai_usage_log")
        hi_ledger = probe.max_id("credit_transactions")
        if reason is None and state is not None and _nothing_new(store, probe, state, hi_usage, hi_ledger):
            store.mark_checked(state.version, started)
            return _report("none", "no new rows", 0, 0, state, store, t0)
        rollup = (reporting_tz, credit_nano) if reason is not None or state is None else None
        return _write(
            store,
            source,
            probe,
            state if reason is None else None,
            reason,
            started,
            (hi_usage, hi_ledger),
            rollup,
            t0,
            progress,
        )


def _nothing_new(store: AnalyticsStore, probe: _SourceProbe, state: StoreState, hi_usage: int, hi_ledger: int) -> bool:
    """No id above the watermarks and the same number of rows in the lookback windows as the store holds."""
    if hi_usage > state.usage_watermark or hi_ledger > state.ledger_watermark:
        return False
    con = store.connect()
    try:
        for table, wm in (("ai_usage_log", state.usage_watermark), ("credit_transactions", state.ledger_watermark)):
            lo = max(0, wm - LOOKBACK_IDS)
            held = con.execute(f"SELECT count(*) FROM {table} WHERE id > ?", [lo]).fetchall()[0][0]  # noqa: S608
            if probe.count_above(table, lo) != held:
                return False
    finally:
        con.close()
    return True


def _write(
    store: AnalyticsStore,
    source: Source,
    probe: _SourceProbe,
    state: StoreState | None,
    reason: str | None,
    started: datetime,
    hi: tuple[int, int],
    rollup: tuple[str, int] | None,
    t0: float,
    progress: Progress | None = None,
) -> SyncReport:
    incremental = state is not None
    hi_usage, hi_ledger = hi
    if state is not None:
        rollup_tz, rollup_nano = state.rollup_tz, state.rollup_credit_nano
    else:
        assert rollup is not None
        rollup_tz, rollup_nano = rollup
    target = store.new_version_file(copy_current=incremental)
    con = duckdb.connect(str(target), config={"memory_limit": WRITE_MEMORY_LIMIT})
    try:
        if not incremental:
            con.execute(TABLES_DDL)
        for name in SMALL_TABLES:
            tbl = probe.small_table(name)
            con.register("small", tbl)
            con.execute(f"DELETE FROM {name}")  # noqa: S608
            if tbl.num_rows:
                con.execute(f"INSERT INTO {name} SELECT * FROM small")  # noqa: S608
            con.unregister("small")
        usage_wm = state.usage_watermark if state else 0
        ledger_wm = state.ledger_watermark if state else 0
        new_usage, new_ledger = _copy(
            con,
            source,
            [
                (source.usage_sql(), USAGE_INSERT, "ai_usage_log", usage_wm, hi_usage),
                (source.ledger_sql(), LEDGER_INSERT, "credit_transactions", ledger_wm, hi_ledger),
            ],
            progress,
        )
        lo_ledger = max(0, ledger_wm - LOOKBACK_IDS) if incremental else 0
        con.execute(DERIVE_UPTIME, [lo_ledger])
        con.execute(DERIVE_REFUNDS, [lo_ledger])
        lo_usage = max(0, usage_wm - LOOKBACK_IDS) if incremental else 0
        _roll_up(con, incremental, lo_usage, lo_ledger, rollup_tz, rollup_nano)
        u_wm, u_rows, u_anchor = con.execute(
            "SELECT coalesce(max(id), 0), count(*), max(created_at) FILTER (WHERE id = (SELECT max(id) FROM "
            "ai_usage_log)) FROM ai_usage_log"
        ).fetchall()[0]
        l_wm, l_rows, l_anchor = con.execute(
            "SELECT coalesce(max(id), 0), count(*), max(created_at) FILTER (WHERE id = (SELECT max(id) FROM "
            "credit_transactions)) FROM credit_transactions"
        ).fetchall()[0]
        con.execute("DELETE FROM sync_state")
        con.execute(
            "INSERT INTO sync_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                SCHEMA_VERSION,
                source.fingerprint,
                started,
                u_wm,
                _anchor(u_anchor),
                l_wm,
                _anchor(l_anchor),
                u_rows,
                l_rows,
                rollup_tz,
                rollup_nano,
            ],
        )
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        _discard(target)
        raise
    con.close()
    store.publish(target)
    new_state = store.state()
    assert new_state is not None
    mode = "incremental" if incremental else "full"
    return _report(mode, reason or "new rows", new_usage, new_ledger, new_state, store, t0)


def _copy(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    states: list[tuple[str, str, str, int, int]],
    progress: Progress | None = None,
) -> list[int]:
    """Append source rows above each table's watermark, and re-read the lookback window below it, adding only ids the
    store lacks. `states`: (select SQL, insert SQL, table, watermark, source max id). Returns rows added per table."""
    jobs: list[Job] = []
    plan: list[tuple[int, str, str]] = []  # per job: (table index, insert SQL, where)
    before = []
    for t, (select_sql, insert_sql, table, wm, hi) in enumerate(states):
        before.append(int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]))  # noqa: S608
        if wm > 0:
            lo = max(0, wm - LOOKBACK_IDS)
            jobs.append(Job(select_sql, lo, wm, readers=1, chunk=extract.CHUNK_IDS))
            plan.append((t, insert_sql, f"WHERE id NOT IN (SELECT id FROM {table} WHERE id > {int(lo)})"))  # noqa: S608
        jobs.append(Job(select_sql, wm, hi, chunk=extract.CHUNK_IDS))
        plan.append((t, insert_sql, ""))
    pending: list[pa.Table] = []
    pending_job = -1
    total = sum(max(0, hi - wm) for _s, _i, _t, wm, hi in states)
    done = 0

    def flush() -> None:
        if not pending:
            return
        _t, insert_sql, where = plan[pending_job]
        # an all-NULL column of one chunk is typed null: promote it to the type the other chunks give it
        chunk = pa.concat_tables(pending, promote_options="default") if len(pending) > 1 else pending[0]
        con.register("chunk", chunk)
        con.execute(insert_sql.format(where=where))
        con.unregister("chunk")
        pending.clear()

    for i, table in source.read(jobs):
        if i != pending_job or sum(p.num_rows for p in pending) >= INSERT_ROWS:
            flush()
            pending_job = i
        if table.num_rows:
            pending.append(table)
            if not plan[i][2]:  # a job above a watermark (the lookback re-reads are not counted)
                done += table.num_rows
                if progress is not None:
                    progress(min(done, total), total)
    flush()
    if progress is not None:
        progress(total, total)
    return [
        int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]) - before[t]  # noqa: S608
        for t, (_s, _i, table, _w, _h) in enumerate(states)
    ]


def _roll_up(
    con: duckdb.DuckDBPyConnection, incremental: bool, lo_usage: int, lo_ledger: int, tz: str, nano: int
) -> None:
    """Re-sum daily_spend from the first local day any new row falls on (every day on a full build)."""
    start: datetime | None = None
    if incremental:
        first = con.execute(
            "SELECT least((SELECT min(created_at) FROM ai_usage_log WHERE id > ?), "
            "(SELECT min(ts) FROM ledger_spend WHERE source_id > ?))",
            [lo_usage, lo_ledger],
        ).fetchall()[0][0]
        if first is None:
            return
        local_day = first.replace(tzinfo=UTC).astimezone(zone(tz)).date()
        start = local_midnight_utc(local_day, tz)
        con.execute("DELETE FROM daily_spend WHERE day >= ?", [local_day])
    con.execute(ROLLUP, [tz, nano, start])


def _discard(target: Path) -> None:
    for p in (target, target.with_name(target.name + ".wal")):
        p.unlink(missing_ok=True)


def _report(
    mode: str, reason: str, usage: int, ledger: int, state: StoreState, store: AnalyticsStore, t0: float
) -> SyncReport:
    return SyncReport(
        mode=mode,
        reason=reason,
        usage_rows=usage,
        ledger_rows=ledger,
        total_usage_rows=state.usage_rows,
        total_ledger_rows=state.ledger_rows,
        seconds=time.perf_counter() - t0,
        as_of=store.as_of(state),
        version=state.version,
    )
