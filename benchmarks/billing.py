"""Charges per second through `BillingService.charge` on SQLite and PostgreSQL at 1, 8 and 32 threads, and what
budgets add to `BillingService.reserve` (p50, p95) and what the alert check after a settle costs.

Each run starts from a fresh database, funds the accounts, fires the charges from N threads, then runs the full
`check_ledger` (every invariant) and counts the debits: a run with a violation or a lost charge is reported as such.

Two workloads:
- many accounts (default 64): threads charge different users, the realistic mix;
- one hot account: every thread charges the same user, the worst case (all writers serialise on one row lock;
  on PostgreSQL each commit waits for its WAL flush while holding that lock).

    python benchmarks/billing.py            # full: 1, 8, 32 threads, 3 repeats, medians
    python benchmarks/billing.py --quick    # 1 and 8 threads, one repeat, fewer charges
    python benchmarks/billing.py --json     # the figures as JSON
PostgreSQL is used when --pg-url, BENCH_DATABASE_URL or TEST_DATABASE_URL names one (each run in its own schema).

Reserve latency: one thread reserves (and, untimed, releases) a credit `--reserves` times for a user no budget
covers, then for a user whom three budgets cover (their own, their team's and the API key's, given as api_key_id).
The hook that runs after each settle (`AlertHook.after_settle`, nothing due) is timed on the budgeted user.

PostgreSQL commits are durable (synchronous_commit=on): each waits for its WAL flush, which on a slow disk bounds
the rate far more than the code does. The full run adds one informative line with synchronous_commit=off (set per
connection through the URL's `options`), to show what the code itself sustains; the ledger does not use that mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text

from core.alerts import AlertHook
from core.billing import BillingService
from core.billing.ledger_check import check_ledger
from core.budgets import BudgetBook, TeamDirectory
from core.config import Settings
from core.db import Database
from core.db.models import CreditTransaction
from core.keys.store import KeyLimits
from core.keys.store import create as create_key
from core.users import add_user

COST = Decimal("0.003")  # the specification's example: 1 base credit, 2 at the default 100% markup


@dataclass
class Result:
    backend: str  # sqlite | postgresql | postgresql (synchronous_commit=off)
    threads: int
    accounts: int
    charges: int
    seconds: float
    charges_per_s: float
    cpu_ms_per_charge: float  # this process's CPU (all threads) per charge: the figure least bent by a busy machine
    violations: int
    debits_ok: bool


class ScratchDatabase:
    """A fresh, migrated database per run: a temp SQLite file, or a throwaway PostgreSQL schema."""

    def __init__(self, backend: str, pg_url: str, tmp: Path, pg_options: str = "") -> None:
        self.backend, self.pg_url, self.tmp, self.pg_options = backend, pg_url, tmp, pg_options
        self.schema = ""

    def __enter__(self) -> Database:
        if self.backend == "sqlite":
            url = f"sqlite:///{self.tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        else:
            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            with create_engine(self.pg_url, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            sep = "&" if "?" in self.pg_url else "?"
            url = f"{self.pg_url}{sep}options=" + quote(f"-csearch_path={self.schema} {self.pg_options}".strip())
        self.rt = Database(Settings(database_url=url, analytics_path=self.tmp / "a.duckdb"))
        self.rt.init()
        return self.rt

    def __exit__(self, *exc: object) -> None:
        self.rt.dispose()
        if self.schema:
            eng = create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            eng.dispose()


def run_once(db: Database, threads: int, accounts: int, charges: int, label: str | None = None) -> Result:
    with db as rt:
        with rt.session() as s:
            ids = [add_user(s, email=f"u{i}@bench.io", name=f"u{i}", role="pm").id for i in range(accounts)]
        billing = BillingService(rt.session_factory, rt.settings)
        for uid in ids:
            billing.grant(uid, charges * 2 + 10)
        per_thread = charges // threads

        def worker(t: int) -> None:
            for i in range(per_thread):
                uid = ids[(t + i * threads) % accounts]
                billing.charge(uid, COST, idempotency_key=f"t{t}-{i}", description="bench")

        with ThreadPoolExecutor(threads) as pool:
            start, cpu = time.perf_counter(), time.process_time()
            list(pool.map(worker, range(threads)))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        done = per_thread * threads
        violations = check_ledger(rt.session_factory)
        with rt.session() as s:
            debits = s.scalar(select(func.count()).where(CreditTransaction.amount < 0))
    return Result(
        backend=label or db.backend,
        threads=threads,
        accounts=accounts,
        charges=done,
        seconds=round(seconds, 3),
        charges_per_s=round(done / seconds, 1),
        cpu_ms_per_charge=round(cpu * 1000 / done, 3),
        violations=len(violations),
        debits_ok=debits == done,
    )


@dataclass
class ReserveLatency:
    backend: str
    budgets: int  # budgets covering each call
    reserves: int
    p50_ms: float
    p95_ms: float
    cpu_ms: float  # CPU per reserve
    hook_p50_ms: float | None = None  # the after-settle alert check (nothing due), budgeted user only
    hook_p95_ms: float | None = None


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        round(ordered[len(ordered) // 2] * 1000, 3),
        round(ordered[int(len(ordered) * 0.95)] * 1000, 3),
    )


def reserve_latency(db: Database, reserves: int) -> list[ReserveLatency]:
    """reserve p50/p95 for a user no budget covers and for one three budgets cover (user, team, API key)."""
    out = []
    with db as rt:
        with rt.session() as s:
            plain = add_user(s, email="plain@bench.io", name="plain", role="pm").id
            budgeted = add_user(s, email="budgeted@bench.io", name="budgeted", role="pm").id
        billing = BillingService(rt.session_factory, rt.settings)
        for uid in (plain, budgeted):
            billing.grant(uid, reserves * 10)
        teams = TeamDirectory(rt.session_factory)
        teams.add("bench")
        teams.add_member("bench", budgeted)
        # a real key of the budgeted user (a budget on a key that does not exist is refused)
        key_id = create_key(
            rt.engine, user_id=budgeted, name="bench", limits=KeyLimits(), expires_at=None, actor="bench"
        ).key.id
        book = BudgetBook(rt.session_factory, rt.settings)
        book.set(user=budgeted, credits=10**9)
        book.set(team="bench", credits=10**9)
        book.set(api_key_id=key_id, credits=10**9)
        hook = AlertHook(rt.session_factory, rt.settings)
        for label, uid, key, covering in (("none", plain, None, 0), ("three", budgeted, key_id, 3)):
            for i in range(100):  # warm the pool and the statement caches
                billing.release(billing.reserve(uid, 1, f"warm-{label}-{i}", api_key_id=key))
            samples: list[float] = []
            cpu = 0.0
            for i in range(reserves):
                c0, t0 = time.process_time(), time.perf_counter()
                hold = billing.reserve(uid, 1, f"{label}-{i}", api_key_id=key)
                samples.append(time.perf_counter() - t0)
                cpu += time.process_time() - c0
                billing.release(hold)
            p50, p95 = _quantiles(samples)
            result = ReserveLatency(
                backend=db.backend, budgets=covering, reserves=reserves, p50_ms=p50, p95_ms=p95,
                cpu_ms=round(cpu * 1000 / reserves, 3),
            )  # fmt: skip
            if covering:
                hook_samples = []
                for _ in range(reserves):
                    t0 = time.perf_counter()
                    hook.after_settle(uid, charged=1, balance_after=10**6, api_key_id=key)
                    hook_samples.append(time.perf_counter() - t0)
                result.hook_p50_ms, result.hook_p95_ms = _quantiles(hook_samples)
            out.append(result)
    return out


def pg_reachable(url: str) -> bool:
    if not url:
        return False
    try:
        eng = create_engine(url)
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 and 8 threads, one repeat, 500 charges per run")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"))
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--accounts", type=int, default=64, help="accounts in the many-accounts workload (default 64)")
    ap.add_argument("--reserves", type=int, help="reserves timed per case (default 3000; 1000 with --quick)")
    ap.add_argument("--only", choices=["charges", "reserve"], help="run one part only")
    args = ap.parse_args(argv)

    threads = [1, 8] if args.quick else [1, 8, 32]
    repeats = 1 if args.quick else 3
    charges = 500 if args.quick else 2000
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    notes: list[str] = []
    if "postgresql" in backends and not pg_reachable(args.pg_url or ""):
        backends.remove("postgresql")
        notes.append("PostgreSQL skipped: set --pg-url or TEST_DATABASE_URL to a reachable database")
    # (label, backend, server options, threads, accounts)
    plan = [(b, b, "", n, a) for b in backends for n in threads for a in (args.accounts, 1)]
    if "postgresql" in backends and not args.quick:
        plan.append(("postgresql (synchronous_commit=off)", "postgresql", "-csynchronous_commit=off", 8, args.accounts))

    medians: list[Result] = []
    latencies: list[ReserveLatency] = []
    reserves = args.reserves or (1000 if args.quick else 3000)
    with tempfile.TemporaryDirectory() as tmp:
        for label, backend, options, n, accounts in plan if args.only != "reserve" else []:
            db = ScratchDatabase(backend, args.pg_url or "", Path(tmp), options)
            runs = [run_once(db, n, accounts, charges, label) for _ in range(repeats)]
            rate = statistics.median(r.charges_per_s for r in runs)
            best = min(runs, key=lambda r: abs(r.charges_per_s - rate))
            best.violations = max(r.violations for r in runs)
            best.debits_ok = all(r.debits_ok for r in runs)
            medians.append(best)
            if not args.json:
                print(
                    f"{label:<36} threads={n:<3} accounts={accounts:<3} "
                    f"{best.charges_per_s:>8,.0f} charges/s (median of {repeats}: "
                    f"{', '.join(f'{r.charges_per_s:,.0f}' for r in runs)}; "
                    f"{best.cpu_ms_per_charge:.2f} ms CPU each)  "
                    f"violations={best.violations} debits_ok={best.debits_ok}",
                    flush=True,
                )
        for backend in backends if args.only != "charges" else []:
            for lat in reserve_latency(ScratchDatabase(backend, args.pg_url or "", Path(tmp)), reserves):
                latencies.append(lat)
                if not args.json:
                    hook = (
                        f"; after-settle alert check p50 {lat.hook_p50_ms:.3f} ms, p95 {lat.hook_p95_ms:.3f} ms"
                        if lat.hook_p50_ms is not None
                        else ""
                    )
                    print(
                        f"{lat.backend:<11} reserve with {lat.budgets} budgets covering the call: "
                        f"p50 {lat.p50_ms:.3f} ms, p95 {lat.p95_ms:.3f} ms, {lat.cpu_ms:.3f} ms CPU "
                        f"({lat.reserves:,} reserves){hook}",
                        flush=True,
                    )
    if args.json:
        print(
            json.dumps(
                {
                    "results": [asdict(r) for r in medians],
                    "reserve": [asdict(r) for r in latencies],
                    "notes": notes,
                },
                indent=2,
            )
        )
    else:
        for n in notes:
            print(n)
    bad = [r for r in medians if r.violations or not r.debits_ok]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
