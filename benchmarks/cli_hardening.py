"""How the command line meets malformed input: every case of tests/support/cli_cases.py on SQLite and PostgreSQL.

A case is handled cleanly when it exits 2 with exactly one line on stderr, no traceback, and every table's row count
unchanged. Prints the table issue 16's closing note asks for (cases tried, handled cleanly, left) and each case left.

    python benchmarks/cli_hardening.py            # SQLite, and PostgreSQL when TEST_DATABASE_URL/--pg-url names one
    python benchmarks/cli_hardening.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine

from tests.support.cli_cases import Outcome, RowCounter, cases, environment, seed, try_case
from tests.support.pg_schema import scratch_schema


def run_on(url: str, folder: Path) -> tuple[list[Outcome], float]:
    with environment(url, folder):
        seed()
        engine = create_engine(url)
        t0 = time.perf_counter()
        try:
            counts = RowCounter(engine)
            outcomes = [try_case(c, counts) for c in cases()]
        finally:
            engine.dispose()
        return outcomes, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, tuple[list[Outcome], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sqlite").mkdir()
        results["SQLite"] = run_on(f"sqlite:///{folder / 'sqlite' / 'app.db'}", folder / "sqlite")
        if args.pg_url:
            (folder / "pg").mkdir()
            with scratch_schema(args.pg_url, "cli") as url:
                results["PostgreSQL"] = run_on(url, folder / "pg")
    if args.json:
        print(
            json.dumps(
                {
                    db: {
                        "tried": len(o),
                        "clean": sum(x.clean for x in o),
                        "seconds": round(s, 1),
                        "left": [{"case": x.case.label, "problems": x.problems} for x in o if not x.clean],
                    }
                    for db, (o, s) in results.items()
                },
                indent=2,
            )
        )
    else:
        print(f"{'database':<12} {'cases tried':>11} {'handled cleanly':>15} {'left':>5} {'seconds':>8}")
        for db, (o, s) in results.items():
            clean = sum(x.clean for x in o)
            print(f"{db:<12} {len(o):>11} {clean:>15} {len(o) - clean:>5} {s:>8.1f}")
        for db, (o, _) in results.items():
            for x in o:
                if not x.clean:
                    last = (x.stderr.strip().splitlines() or [""])[-1][:150]
                    print(f"  {db}: {x.case.label}: {'; '.join(x.problems)} :: {last}")
    return 0 if all(x.clean for o, _ in results.values() for x in o) else 1


if __name__ == "__main__":
    sys.exit(main())
