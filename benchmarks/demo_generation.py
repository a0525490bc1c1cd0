"""How fast `python -m core demo` writes history: rows per second into a fresh SQLite (or --database-url), the
history and then the demo's teams and budgets over it (timed apart: `budgets_seconds`).

    .venv/bin/python benchmarks/demo_generation.py --rows 1000000 [--repeat 3] [--json]

Goal (issue #2): 1,000,000 usage events in at most 30 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import Settings
from core.db import Database
from core.demo import write_demo_budgets, write_demo_history


def run_once(rows: int, url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        rt = Database(Settings(database_url=db, analytics_path=Path(tmp) / "a.duckdb"))
        rt.init()
        end = datetime.now(UTC)
        t0 = time.perf_counter()
        report = write_demo_history(rt, rows=rows, days=90, seed=7, end=end, replace=url is not None)
        t1 = time.perf_counter()
        write_demo_budgets(rt, end=end)
        seconds = time.perf_counter() - t0
        rt.dispose()
    return {
        "seconds": seconds,
        "budgets_seconds": seconds - (t1 - t0),
        "rows_per_s": rows / seconds,
        "ledger_rows": report.transactions,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--database-url", help="benchmark another database (its usage and ledger are replaced!)")
    p.add_argument("--quick", action="store_true", help="100,000 rows once")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = 100_000 if args.quick else args.rows
    runs = [run_once(rows, args.database_url) for _ in range(max(1, args.repeat))]
    secs = [r["seconds"] for r in runs]
    result = {
        "rows": rows,
        "runs": len(runs),
        "median_seconds": round(statistics.median(secs), 2),
        "min_seconds": round(min(secs), 2),
        "median_rows_per_s": round(rows / statistics.median(secs)),
        "median_budgets_seconds": round(statistics.median(r["budgets_seconds"] for r in runs), 3),
        "ledger_rows": runs[0]["ledger_rows"],
        "goal_seconds_for_1m": 30,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"demo generation: {rows:,} usage events (+{result['ledger_rows']:,} ledger rows)")
        print(f"  median {result['median_seconds']} s over {len(runs)} run(s), min {result['min_seconds']} s")
        print(f"  of which teams and budgets: median {result['median_budgets_seconds']} s")
        print(f"  {result['median_rows_per_s']:,} usage events/s  (goal: 1,000,000 in <= 30 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
