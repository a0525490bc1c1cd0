"""Build (once) and cache a large SQLite history for the spend benchmark, with the demo generator.

`core.demo.generate` holds a whole history in memory (about 2.6 GB per million rows), so a 10M-row history is
written as consecutive 1M-row windows, each generated into a scratch database and appended to the cached one with
its ids shifted (usage ids, ledger ids and the links between them stay consistent; each window starts with its own
welcome grants, so running balances restart per window: this history is for timing queries, not for a ledger check).

The cache lives under benchmarks/.cache/ (git-ignored) and is reused while its manifest matches.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core.config import Settings
from core.db import Database
from core.demo import write_demo_history

CACHE = Path(__file__).resolve().parent / ".cache"
CHUNK_ROWS = 1_000_000
CHUNK_DAYS = 36  # ten 1M-row windows cover 360 days
USAGE_COLS = (
    "id, created_at, user_id, ai_model_id, provider, category, deployment_type, endpoint_id, input_tokens, "
    "output_tokens, cached_tokens, cache_write_tokens, characters, duration_seconds, images, requests_count, "
    "base_cost_usd, markup_pct, cost_credits, charged_usd, status, error, latency_ms, cache_hit, sandbox, request_id, "
    "idempotency_key, transaction_id, metadata, request_fingerprint, accrued_nano"
)
TX_COLS = "id, created_at, user_id, amount, transaction_type, description, idempotency_key, balance_after, metadata"


@dataclass(frozen=True)
class History:
    path: Path
    rows: int
    end: datetime  # the history's "now": queries are timed relative to it
    base_max_id: int  # usage ids above this belong to a pending incremental delta
    base_max_tx_id: int


def _log(msg: str) -> None:
    print(f"[history {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _scratch(rows: int, days: int, seed: int, end: datetime, workdir: Path) -> Path:
    path = workdir / f"chunk-{seed}.db"
    for p in workdir.glob(f"chunk-{seed}.db*"):
        p.unlink()
    rt = Database(Settings(database_url=f"sqlite:///{path}", analytics_path=workdir / "unused.duckdb"))
    rt.init()
    write_demo_history(rt, rows=rows, days=days, seed=seed, end=end)
    rt.dispose()
    return path


def append_window(target: Path, rows: int, days: int, seed: int, end: datetime) -> None:
    """Generate `rows` events over `days` days ending at `end` and append them to `target` with shifted ids."""
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        chunk = _scratch(rows, days, seed, end, Path(tmp))
        con = sqlite3.connect(target, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA cache_size=-262144")
            con.execute("ATTACH DATABASE ? AS c", (str(chunk),))
            con.execute("BEGIN IMMEDIATE")
            # the people (the first window's; every window numbers its users the same way), so names resolve and the
            # Spend page has someone signed in
            con.execute("INSERT OR IGNORE INTO main.users SELECT * FROM c.users")
            uoff = con.execute("SELECT coalesce(max(id), 0) FROM main.ai_usage_log").fetchone()[0]
            toff = con.execute("SELECT coalesce(max(id), 0) FROM main.credit_transactions").fetchone()[0]
            con.execute(
                f"INSERT INTO main.credit_transactions ({TX_COLS}) "
                f"SELECT id + {toff}, created_at, user_id, amount, transaction_type, description, idempotency_key, "
                f"balance_after, CASE WHEN json_extract(metadata, '$.usage_id') IS NULL THEN metadata "
                f"ELSE json_set(metadata, '$.usage_id', json_extract(metadata, '$.usage_id') + {uoff}) END "
                f"FROM c.credit_transactions ORDER BY id"
            )
            shifted = USAGE_COLS.replace("id, created_at", f"id + {uoff}, created_at", 1)
            shifted = shifted.replace("transaction_id", f"transaction_id + {toff}")
            con.execute(
                f"INSERT INTO main.ai_usage_log ({USAGE_COLS}) SELECT {shifted} FROM c.ai_usage_log ORDER BY id"
            )
            con.execute("COMMIT")
            con.execute("DETACH DATABASE c")
        finally:
            con.close()


def _create_base(path: Path) -> None:
    rt = Database(Settings(database_url=f"sqlite:///{path}", analytics_path=path.with_suffix(".unused.duckdb")))
    rt.init()
    rt.dispose()


def build_history(rows: int, *, seed: int = 7, end: datetime | None = None) -> History:
    """The cached history of `rows` usage events (built on first use; minutes at 10M rows)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"spend-{rows}-{seed}.db"
    manifest = path.with_suffix(".json")
    if path.exists() and manifest.exists():
        m = json.loads(manifest.read_text())
        h = History(path, rows, datetime.fromisoformat(m["end"]), m["base_max_id"], m["base_max_tx_id"])
        drop_delta(h)
        _ensure_users(h)
        return h
    for p in CACHE.glob(f"spend-{rows}-{seed}.db*"):
        p.unlink()
    end = (end or datetime.now()).replace(microsecond=0, second=0, minute=0)
    _create_base(path)
    chunk = min(CHUNK_ROWS, rows)
    n_chunks = -(-rows // chunk)
    days = CHUNK_DAYS if n_chunks > 1 else 90
    t0 = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
        "AND tbl_name IN ('ai_usage_log', 'credit_transactions')"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    con.close()
    written = 0
    for k in range(n_chunks):
        n = min(chunk, rows - written)
        w_end = end - timedelta(days=days * (n_chunks - 1 - k))
        append_window(path, n, days, seed + k, w_end)
        written += n
        _log(f"{written:,}/{rows:,} rows ({time.perf_counter() - t0:.0f} s)")
    con = sqlite3.connect(path, isolation_level=None)
    for _, sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    base_max = con.execute("SELECT max(id) FROM ai_usage_log").fetchone()[0]
    base_tx = con.execute("SELECT max(id) FROM credit_transactions").fetchone()[0]
    con.close()
    _log(f"built {rows:,} rows in {time.perf_counter() - t0:.0f} s -> {path}")
    manifest.write_text(
        json.dumps(
            {"rows": rows, "seed": seed, "end": end.isoformat(), "base_max_id": base_max, "base_max_tx_id": base_tx}
        )
    )
    return History(path, rows, end, base_max, base_tx)


def _ensure_users(h: History) -> None:
    """Caches built before the history carried its users get them from a small window of the first seed."""
    con = sqlite3.connect(h.path, isolation_level=None)
    try:
        if con.execute("SELECT count(*) FROM users").fetchone()[0]:
            return
    finally:
        con.close()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        chunk = _scratch(1_000, 3, 7, h.end, Path(tmp))
        con = sqlite3.connect(h.path, isolation_level=None)
        try:
            con.execute("ATTACH DATABASE ? AS c", (str(chunk),))
            con.execute("INSERT OR IGNORE INTO main.users SELECT * FROM c.users")
            con.execute("DETACH DATABASE c")
        finally:
            con.close()
    _log("added the users to a history cached without them")


def add_delta(h: History, rows: int, *, seed: int = 1_000) -> float:
    """Append `rows` newer events (the next days after the history's end); returns the seconds it took."""
    t0 = time.perf_counter()
    append_window(h.path, rows, 3, seed, h.end + timedelta(days=3))
    return time.perf_counter() - t0


def drop_delta(h: History) -> None:
    """Remove rows a previous run appended beyond the cached history, so each run starts from the same state."""
    con = sqlite3.connect(h.path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("DELETE FROM ai_usage_log WHERE id > ?", (h.base_max_id,))
        con.execute("DELETE FROM credit_transactions WHERE id > ?", (h.base_max_tx_id,))
        con.execute("COMMIT")
    finally:
        con.close()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="build the cached spend benchmark history")
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    print(build_history(args.rows))
