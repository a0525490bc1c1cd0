"""Benchmark: the standard spend questions on the DuckDB analytics store against the same questions on SQLite.

    python benchmarks/spend_queries.py --rows 10000000      # the issue's figure (history built once, cached)
    python benchmarks/spend_queries.py --quick              # 200,000 rows, a minute or two
    python benchmarks/spend_queries.py --quick --json

Steps: build (or reuse) a SQLite history of N usage events with the demo generator (benchmarks/.cache/), sync it into
a fresh analytics store (the initial sync time), time each standard question on both engines (p50 of several runs,
after one warm-up) and check both engines give the same answer, time the Spend page's data and the page script itself,
then append N/10 (at most 1M) newer rows and time the incremental sync (the appended rows are removed again at the
end so the cached history stays as built).

The SQLite side answers from `ai_usage_log` alone with its indexes (created_at; user_id, created_at) and computes the
same measures per group (requests, credits, base cost, base credits, failed calls, cache hits and saving) and, for the
drill-down's transactions, the same names; the analytics side also folds in the ledger's endpoint uptime debits and
refunds (none in the demo), so SQLite still does slightly less work. Both bucket days in UTC.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.spend_history import CACHE, add_delta, build_history, drop_delta  # noqa: E402
from core.analytics import SpendFilter, SpendQueries  # noqa: E402
from core.analytics.forecast import forecast_month  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.services.spend import PageQuery, spend_page, user_drill  # noqa: E402
from tests.support.analytics import store_for, sync_store  # noqa: E402

CREDIT_NANO = 40_000_000


def p50(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()  # warm-up (and the answer)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


# ---- the same questions on SQLite -----------------------------------------------------------------------------------
# The measures the analytics engine gives for every group: requests, credits, base cost (a cache hit has none), the
# base credits behind the rounding uplift (of the cost each call was priced at), failed calls, cache hits and the
# catalog cost they saved (core/analytics/schema.py).
MEASURES = (
    "sum(coalesce(requests_count, 1)) AS requests, sum(cost_credits) AS credits, "
    "sum(CASE WHEN cache_hit THEN 0 ELSE base_cost_usd END) AS base_cost, "
    f"sum((CAST(round(base_cost_usd * 1000000000) AS INTEGER) + {CREDIT_NANO - 1}) / {CREDIT_NANO}) AS base_credits, "
    "sum(status = 'failed') AS failed, sum(cache_hit) AS cache_hits, "
    "coalesce(sum(CASE WHEN cache_hit THEN coalesce(json_extract(metadata, '$.catalog_cost_usd'), base_cost_usd) END), "
    "0) AS cache_saving"
)


def sqlite_top(con: sqlite3.Connection, key: str, start: str, end: str) -> list[tuple]:
    return con.execute(
        f"SELECT {key}, {MEASURES} FROM ai_usage_log WHERE created_at >= ? AND created_at < ? AND sandbox = 0 "
        f"GROUP BY {key} ORDER BY credits DESC LIMIT 10",
        (start, end),
    ).fetchall()


def sqlite_daily_by_provider(con: sqlite3.Connection, start: str, end: str) -> list[tuple]:
    return con.execute(
        f"SELECT substr(created_at, 1, 10) AS day, provider, {MEASURES} FROM ai_usage_log "
        "WHERE created_at >= ? AND created_at < ? AND sandbox = 0 GROUP BY day, provider ORDER BY day",
        (start, end),
    ).fetchall()


def sqlite_drill(con: sqlite3.Connection, user_id: int, start: str, end: str) -> tuple[list, list, list]:
    where = "user_id = ? AND created_at >= ? AND created_at < ? AND sandbox = 0"
    a = con.execute(
        f"SELECT ai_model_id, {MEASURES} FROM ai_usage_log WHERE {where} GROUP BY ai_model_id ORDER BY credits DESC",
        (user_id, start, end),
    ).fetchall()
    b = con.execute(
        f"SELECT substr(created_at, 1, 10) AS day, ai_model_id, {MEASURES} FROM ai_usage_log WHERE {where} "
        "GROUP BY day, ai_model_id ORDER BY day",
        (user_id, start, end),
    ).fetchall()
    c = con.execute(
        "SELECT t.created_at, t.provider, m.model_id, u.email, t.category, t.status, t.sandbox, t.cache_hit, "
        "t.requests_count, t.cost_credits, t.base_cost_usd, t.id, t.transaction_id "
        "FROM (SELECT * FROM ai_usage_log "
        f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 500) t "
        "LEFT JOIN ai_models m ON m.id = t.ai_model_id LEFT JOIN users u ON u.id = t.user_id "
        "ORDER BY t.created_at DESC, t.id DESC",
        (user_id, start, end),
    ).fetchall()
    return a, b, c


def sqlite_forecast(con: sqlite3.Connection, now: datetime) -> float:
    today = now.date()
    start = min(today.replace(day=1), today - timedelta(days=56))
    rows = con.execute(
        "SELECT substr(created_at, 1, 10), sum(cost_credits) FROM ai_usage_log "
        "WHERE created_at >= ? AND created_at < ? AND sandbox = 0 GROUP BY 1",
        (start.isoformat(), (today + timedelta(days=1)).isoformat()),
    ).fetchall()
    import calendar

    import pandas as pd

    series = pd.Series({datetime.fromisoformat(d).date(): c * 0.04 for d, c in rows})
    end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    frac = (now - datetime.combine(today, datetime.min.time())).total_seconds() / 86400
    return forecast_month(
        series, today=today, today_fraction=frac, month_end=end, month_start=today.replace(day=1)
    ).forecast


# ---- main -----------------------------------------------------------------------------------------------------------
def page_script_ms(db: Path, store: Path, runs: int) -> tuple[float, float]:
    """p50 of the Spend page script run by AppTest (every query, chart and table; caches cleared before each run),
    and p50 of AppTest running an empty page (its own overhead, to subtract)."""
    import logging

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    os.environ.update({"DATABASE_URL": f"sqlite:///{db}", "ANALYTICS_PATH": str(store), "REPORTING_TZ": "UTC"})

    def run(make: Callable[[], AppTest]) -> float:
        times = []
        for i in range(runs + 1):
            st.cache_data.clear()
            at = make()
            t0 = time.perf_counter()
            at.run()
            if at.exception:
                raise RuntimeError(at.exception)
            if i:
                times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000

    page = run(lambda: AppTest.from_file(str(ROOT / "pages" / "spend.py"), default_timeout=300))
    empty = run(lambda: AppTest.from_string("import streamlit as st\nst.title('empty')", default_timeout=300))
    return page, empty


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="200,000 rows and fewer runs")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per DuckDB question (default 15, quick 7)")
    ap.add_argument("--sqlite-runs", type=int, default=None, help="timed runs per SQLite question (default 3)")
    ap.add_argument("--delta", type=int, default=None, help="rows for the incremental sync (default rows/10, <= 1M)")
    ap.add_argument("--no-page", action="store_true", help="skip timing the page script")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = 200_000 if args.quick else args.rows
    runs = args.runs or (7 if args.quick else 15)
    sqlite_runs = args.sqlite_runs or 3
    delta = args.delta or min(1_000_000, rows // 10)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print

    log(f"history: {rows:,} usage rows (cached under {CACHE})")
    h = build_history(rows)
    store_path = CACHE / f"spend-{rows}.analytics" / "analytics.duckdb"
    shutil.rmtree(store_path.parent, ignore_errors=True)
    store_path.parent.mkdir(parents=True)
    rt = Database(Settings(database_url=f"sqlite:///{h.path}", analytics_path=store_path, reporting_tz="UTC"))

    log("initial sync ...")
    t0 = time.perf_counter()
    initial = sync_store(rt)
    initial_s = time.perf_counter() - t0
    size_mb = store_for(rt).current_file().stat().st_size / 1e6
    log(
        f"  {initial.total_usage_rows:,} usage + {initial.total_ledger_rows:,} ledger rows in {initial_s:.1f} s "
        f"({(initial.total_usage_rows + initial.total_ledger_rows) / initial_s:,.0f} rows/s), store {size_mb:.0f} MB"
    )

    q = SpendQueries(store_for(rt), credit_usd=Decimal("0.04"), reporting_tz="UTC")
    now = h.end
    today = now.date()
    d30 = SpendFilter.dates(today - timedelta(days=29), today)
    d90 = SpendFilter.dates(today - timedelta(days=89), today)
    s30, e30 = (today - timedelta(days=29)).isoformat(), (today + timedelta(days=1)).isoformat()
    s90 = (today - timedelta(days=89)).isoformat()
    top_user_id = int(q.breakdown("user", d30, top=1).frame["user_id"].iloc[0])
    one = SpendFilter.dates(today - timedelta(days=29), today, user_ids=(top_user_id,))

    def drill() -> Any:  # what the Spend page does for a selected user
        return user_drill(q, one, str(top_user_id))

    questions: list[tuple[str, Callable[[], Any], Callable[[sqlite3.Connection], Any]]] = [
        ("top users, 30 days", lambda: q.breakdown("user", d30, top=10), lambda c: sqlite_top(c, "user_id", s30, e30)),
        (
            "top models, 30 days",
            lambda: q.breakdown("model", d30, top=10),
            lambda c: sqlite_top(c, "ai_model_id", s30, e30),
        ),
        (
            "daily by provider, 90 days",
            lambda: q.series("day", d90, split="provider"),
            lambda c: sqlite_daily_by_provider(c, s90, e30),
        ),
        ("one user's drill-down, 30 days", drill, lambda c: sqlite_drill(c, top_user_id, s30, e30)),
        ("month-end forecast", lambda: q.forecast(now=now), lambda c: sqlite_forecast(c, now)),
    ]
    con = sqlite3.connect(f"file:{h.path}?mode=ro", uri=True)
    con.execute("PRAGMA cache_size=-262144")
    results = []
    for name, duck, lite in questions:
        duck_ms, duck_answer = p50(duck, runs)
        lite_ms, lite_answer = p50(lambda lite=lite: lite(con), sqlite_runs)
        same = _same(name, duck_answer, lite_answer)
        results.append(
            {
                "query": name,
                "duckdb_p50_ms": round(duck_ms, 2),
                "sqlite_p50_ms": round(lite_ms, 1),
                "ratio": round(lite_ms / duck_ms, 1),
                "same_answer": same,
            }
        )
        log(
            f"  {name:32s} duckdb {duck_ms:8.1f} ms   sqlite {lite_ms:9.1f} ms   x{lite_ms / duck_ms:7.1f}"
            f"   same answer: {same}"
        )
    con.close()

    page_ms, _ = p50(lambda: spend_page(q, PageQuery(since=today - timedelta(days=29), until=today), now=now), runs)
    log(f"  Spend page data (every query the page makes)  {page_ms:8.1f} ms")
    script_ms = empty_ms = None
    if not args.no_page:
        script_ms, empty_ms = page_script_ms(h.path, store_path, 3)
        log(
            f"  Spend page script (AppTest, charts included)  {script_ms:8.1f} ms "
            f"(AppTest's own overhead on an empty page: {empty_ms:.0f} ms)"
        )

    log(f"incremental: appending {delta:,} newer rows to the SQLite history ...")
    try:
        add_delta(h, delta)
        t0 = time.perf_counter()
        inc = sync_store(rt)
        inc_s = time.perf_counter() - t0
        log(f"  incremental sync of {inc.usage_rows:,} usage + {inc.ledger_rows:,} ledger rows in {inc_s:.1f} s")
    finally:
        drop_delta(h)

    out = {
        "rows": rows,
        "history_end": now.isoformat(),
        "initial_sync": {
            "usage_rows": initial.total_usage_rows,
            "ledger_rows": initial.total_ledger_rows,
            "seconds": round(initial_s, 1),
            "store_mb": round(size_mb),
        },
        "queries": results,
        "page_data_p50_ms": round(page_ms, 1),
        "page_script_p50_ms": None if script_ms is None else round(script_ms, 1),
        "apptest_empty_page_p50_ms": None if empty_ms is None else round(empty_ms, 1),
        "incremental_sync": {"usage_rows": inc.usage_rows, "ledger_rows": inc.ledger_rows, "seconds": round(inc_s, 1)},
        "goal": "each query <= 100 ms p50 and >= 30x faster than SQLite; page <= 1500 ms",
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        worst = max(r["duckdb_p50_ms"] for r in results)
        least = min(r["ratio"] for r in results)
        print(f"slowest DuckDB question p50 {worst:.1f} ms; smallest speed-up x{least:.0f}; {out['machine']}")
    return 0


def _same(name: str, duck: Any, lite: Any) -> bool:
    """Do both engines give the same answer (credits per key, in order)?"""
    if name == "month-end forecast":
        return abs(float(duck.revenue_forecast_usd) - lite) < 0.01
    if name.startswith("one user"):
        models = [int(x) for x in duck.models.frame["credits"]]
        newest = [int(x) for x in duck.transactions.frame["source_id"]]
        return models == [int(r[2]) for r in lite[0]] and newest == [int(r[11]) for r in lite[2]]
    frame = duck.frame
    if "bucket" in frame.columns:
        got = {
            (str(b), p): int(c) for b, p, c in zip(frame["bucket"], frame["provider"], frame["credits"], strict=True)
        }
        return got == {(d, p): int(c) for d, p, _n, c, *_ in lite}
    return [int(x) for x in frame["credits"]] == [int(r[2]) for r in lite]


if __name__ == "__main__":
    raise SystemExit(main())
