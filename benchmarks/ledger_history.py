"""How long a heavy user's Ledger history takes to read: the whole of it (what the Ledger page read before issue 17)
against one keyset page (newest first, 200 rows), a page deep in the history, and the count shown beside it.

A fresh database gets one heavy user with `--transactions` ledger rows (default 22,000, the case the issue measured)
among `--others` users with 2,000 rows each, written in bulk with consistent running balances. Each figure is the
median of `--repeats` timed calls through the services door (`LedgerService.history` / `history_page`).

    python benchmarks/ledger_history.py            # SQLite, and PostgreSQL when TEST_DATABASE_URL names one
    python benchmarks/ledger_history.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text, update

from benchmarks.billing import ScratchDatabase
from core.access import SYSTEM
from core.db import Database
from core.db.models import CreditTransaction, User
from core.services import Services
from core.users import add_user


def fill(rt: Database, heavy: int, others: int) -> int:
    """The heavy user's id, after writing every user's rows (a grant, then 1-credit debits, a minute apart)."""
    with rt.session() as s:
        users = [add_user(s, email=f"u{i}@bench.io", name=f"u{i}", role="pm").id for i in range(others + 1)]
    start = datetime(2026, 1, 1)
    with rt.engine.begin() as conn:
        for uid in users:
            n = heavy if uid == users[0] else 2_000
            rows = [
                {
                    "user_id": uid,
                    "created_at": start + timedelta(minutes=i),
                    "amount": n if i == 0 else -1,
                    "transaction_type": "grant" if i == 0 else "usage",
                    "description": "bench",
                    "idempotency_key": f"b{uid}-{i}",
                    "balance_after": n - i,
                }
                for i in range(n)
            ]
            conn.execute(insert(CreditTransaction.__table__), rows)
            conn.execute(update(User.__table__).where(User.__table__.c.id == uid).values(credit_balance=1))
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # what autovacuum (PostgreSQL) or a routine ANALYZE leaves after a bulk load
    return users[0]


def median_ms(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def measure(backend: str, pg_url: str, tmp: Path, heavy: int, others: int, repeats: int) -> dict[str, object]:
    with ScratchDatabase(backend, pg_url, tmp) as rt:
        uid = fill(rt, heavy, others)
        ledger = Services(rt).ledger
        first = ledger.history_page(SYSTEM, uid)
        deep_before = ledger.history(SYSTEM, uid).transactions[300].id  # near the oldest end
        return {
            "backend": backend,
            "transactions": heavy,
            "whole_history_ms": median_ms(lambda: ledger.history(SYSTEM, uid), repeats),
            "first_page_ms": median_ms(lambda: ledger.history_page(SYSTEM, uid), repeats),
            "deep_page_ms": median_ms(lambda: ledger.history_page(SYSTEM, uid, before=deep_before), repeats),
            "usage_only_page_ms": median_ms(lambda: ledger.history_page(SYSTEM, uid, kinds=("usage",)), repeats),
            "page_rows": len(first.transactions),
            "matching": first.matching,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transactions", type=int, default=22_000)
    ap.add_argument("--others", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql") if args.pg_url else ("sqlite",):
            results.append(measure(backend, args.pg_url or "", Path(tmp), args.transactions, args.others, args.repeats))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"{r['backend']:>10}: {r['transactions']:,} transactions; whole history {r['whole_history_ms']} ms, "
            f"first page ({r['page_rows']} rows + count of {r['matching']:,}) {r['first_page_ms']} ms, "
            f"deep page {r['deep_page_ms']} ms, usage-only page {r['usage_only_page_ms']} ms"
        )


if __name__ == "__main__":
    main()
