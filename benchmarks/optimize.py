"""Benchmark: Optimize's savings list and the pricing lab's what-if on the spend benchmark's history.

    python benchmarks/optimize.py --rows 10000000      # the issue's figure (the 10M history is built once, cached)
    python benchmarks/optimize.py --quick              # 200,000 rows
    python benchmarks/optimize.py --quick --json

Steps: build (or reuse) the cached SQLite history of benchmarks/spend_history.py, sync it into an analytics store kept
beside it (benchmarks/.cache/optimize-N.analytics; a later run syncs nothing new), then time over the last 30 days of
the history and over all of it: the whole savings list (`find_savings`, p50 of several runs, with each part's time)
and what-ifs (as billed, everyone at 80%, accrual rounding, a credit price of $0.05), and check that the as-billed
replay gives back the Spend page's revenue for the same days exactly. The goal: the savings list within 2 s at 10M
usage rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.spend_history import CACHE, build_history  # noqa: E402
from benchmarks.spend_queries import p50  # noqa: E402
from core.analytics import SpendFilter, SpendQueries  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.optimize import find_savings  # noqa: E402
from core.optimize.pricing import PricingScenario, what_if  # noqa: E402
from tests.support.analytics import store_for, sync_store  # noqa: E402

GOAL_S = 2.0


def _period(
    q: SpendQueries, rt: Database, label: str, since: date, until: date, runs: int, log: Callable[..., None]
) -> dict[str, Any]:
    """The savings list and four what-ifs over local days `since`..`until`, timed."""
    con = q.store.connect()
    n = con.execute(
        "SELECT count(*) FROM ai_usage_log WHERE created_at >= ? AND created_at < ?", [since, until + timedelta(days=1)]
    ).fetchall()[0][0]
    con.close()
    log(f"{label} ({since} to {until}, {n:,} usage rows)")

    def savings() -> Any:
        with rt.session() as s:
            return find_savings(q, s, since=since, until=until)

    savings_ms, found = p50(savings, runs)
    parts = {k: round(v * 1000, 1) for k, v in found.seconds.items()}
    log(f"  savings list: p50 {savings_ms:,.0f} ms ({len(found.opportunities)} opportunities); {parts}")
    for o in found.opportunities[:5]:
        log(f"    ${o.monthly_saving_usd:>10,.2f}/month  {o.kind.value:12s} {o.action[:100]}")
    scenarios = {
        "as billed": PricingScenario(),
        "everyone at 80%": PricingScenario(markup_pct=Decimal(80)),
        "accrual rounding": PricingScenario(rounding="accrual"),
        "credit at $0.05": PricingScenario(credit_usd=Decimal("0.05")),
    }
    whatifs = []
    for name, scenario in scenarios.items():
        ms, result = p50(lambda scenario=scenario: what_if(q, scenario, since=since, until=until), runs)
        whatifs.append(
            {
                "scenario": name,
                "p50_ms": round(ms, 1),
                "billed_revenue_usd": f"{result.billed.revenue_usd:.2f}",
                "what_if_revenue_usd": f"{result.what_if.revenue_usd:.2f}",
            }
        )
        log(f"  what-if {name:18s} p50 {ms:7.1f} ms   revenue ${result.what_if.revenue_usd:,.2f}")
        if name == "as billed":
            spend = q.totals(SpendFilter.dates(since, until))[0]
            exact = result.what_if.revenue_usd == result.billed.revenue_usd == spend.revenue_usd
            log(f"    as billed = the Spend page's revenue for these days: {exact} (${spend.revenue_usd:,.2f})")
            if not exact:
                raise SystemExit("the as-billed replay does not give back the billed revenue")
    return {
        "label": label,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "usage_rows": n,
        "savings_p50_ms": round(savings_ms, 1),
        "savings_parts_ms": parts,
        "opportunities": len(found.opportunities),
        "what_if": whatifs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="200,000 rows")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per question (default 5)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = 200_000 if args.quick else args.rows
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print

    log(f"history: {rows:,} usage rows (cached under {CACHE})")
    h = build_history(rows)
    store_path = CACHE / f"optimize-{rows}.analytics" / "analytics.duckdb"
    store_path.parent.mkdir(parents=True, exist_ok=True)
    rt = Database(Settings(database_url=f"sqlite:///{h.path}", analytics_path=store_path, reporting_tz="UTC"))
    t0 = time.perf_counter()
    report = sync_store(rt)
    log(f"sync ({report.mode}): {report.total_usage_rows:,} usage rows in the store, {time.perf_counter() - t0:.1f} s")

    q = SpendQueries(store_for(rt), credit_usd=Decimal("0.04"), reporting_tz="UTC")
    until = h.end.date() - timedelta(days=1)  # the last whole day of the history
    con = q.store.connect()
    first = con.execute("SELECT min(created_at) FROM ai_usage_log").fetchall()[0][0].date()
    con.close()
    periods = {"30 days": until - timedelta(days=29), f"all {(until - first).days + 1} days": first}
    results = []
    for label, since in periods.items():
        results.append(_period(q, rt, label, since, until, args.runs, log))

    out = {
        "rows": rows,
        "periods": results,
        "goal": f"the savings list in at most {GOAL_S:.0f} s at 10M usage rows",
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        lists = ", ".join(f"{r['label']} {r['savings_p50_ms']:,.0f} ms" for r in results)
        print(f"savings list: {lists} (goal {GOAL_S * 1000:,.0f} ms); {out['machine']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
