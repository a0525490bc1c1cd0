"""How long the hourly meter takes over a month of endpoint history, on SQLite and PostgreSQL.

Each run seeds N endpoints with D days of state history (a change every 10-90 minutes: running with 1-3 replicas,
scaled to zero, paused, initializing), then times:
- the first `UptimeMeter.meter` (every hour priced from the events and charged through `BillingService.charge`),
- a second run over the same period (must charge nothing: idempotency),
- `endpoint_costs` for the month (what the page and `endpoints list` compute),
and checks that the debits equal the bucket rows and the pure arithmetic's total.

    python benchmarks/endpoints_metering.py            # full: 10 endpoints x 30 days, 3 repeats, medians
    python benchmarks/endpoints_metering.py --quick    # 5 endpoints x 3 days, one repeat
    python benchmarks/endpoints_metering.py --json
PostgreSQL is used when --pg-url, BENCH_DATABASE_URL or TEST_DATABASE_URL names one (each run in its own schema).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text

from core.billing import BillingService
from core.catalog.lookup import get_hardware
from core.config import Settings
from core.db import Database
from core.db.models import CreditTransaction, EndpointEvent, EndpointUptimeBucket, InferenceEndpoint
from core.endpoints.costs import endpoint_costs
from core.endpoints.metering import UptimeMeter
from core.endpoints.uptime import StateChange, hourly_buckets
from core.users import add_user

START = datetime(2026, 11, 1)
HARDWARE = ("T4", "L4", "A10G", "A100")


@dataclass
class Result:
    backend: str
    endpoints: int
    days: int
    events: int
    hours_charged: int
    meter_s: float
    hours_per_s: float
    remeter_s: float
    costs_s: float
    consistent: bool


def seed(rt: Database, endpoints: int, days: int, rng: random.Random) -> tuple[int, dict[int, list[StateChange]]]:
    end = START + timedelta(days=days)
    histories: dict[int, list[StateChange]] = {}
    with rt.session() as s:
        owner = add_user(s, email="owner@example.com", name="Owner", role="engineer")
        for i in range(endpoints):
            row = InferenceEndpoint(
                name=f"bench-{i}",
                owner_id=owner.id,
                model_repo="facebook/mms-tts-eng",
                hardware_id=HARDWARE[i % len(HARDWARE)],
                min_replicas=0,
                max_replicas=3,
                scale_to_zero_minutes=15,
                state="running",
                replicas=1,
                created_at=START,
                observed_at=end,
            )
            s.add(row)
            s.flush()
            t, changes = START, []
            while t < end:
                state = rng.choice(("running", "running", "scaledToZero", "paused", "initializing"))
                replicas = rng.randint(1, 3) if state in ("running", "initializing") else 0
                changes.append(StateChange(at=t, state=state, replicas=replicas))
                t += timedelta(minutes=rng.randint(10, 90), seconds=rng.randint(0, 59))
            s.add_all(EndpointEvent(endpoint_id=row.id, at=c.at, state=c.state, replicas=c.replicas) for c in changes)
            histories[row.id] = changes
    return sum(len(c) for c in histories.values()), histories


def run(backend: str, url: str, tmp: Path, endpoints: int, days: int) -> Result:
    rt = Database(Settings(database_url=url, analytics_path=tmp / "a.duckdb"))
    rt.init()
    try:
        events, histories = seed(rt, endpoints, days, random.Random(7))
        until = START + timedelta(days=days)
        billing = BillingService(rt.session_factory, rt.settings)
        meter = UptimeMeter(rt.session_factory, billing, rt.settings)
        t0 = time.perf_counter()
        report = meter.meter(until)
        meter_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = meter.meter(until)
        remeter_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with rt.session() as s:
            costs = endpoint_costs(s, START, until)
        costs_s = time.perf_counter() - t0
        with rt.session() as s:
            debits = s.scalar(
                select(func.count())
                .select_from(CreditTransaction)
                .where(CreditTransaction.transaction_type == "endpoint_uptime")
            )
            buckets = s.scalar(select(func.count()).select_from(EndpointUptimeBucket))
            expected = Decimal(0)
            for endpoint_id, changes in histories.items():
                hourly = get_hardware(s, s.get(InferenceEndpoint, endpoint_id).hardware_id).hourly_usd
                expected += sum(b.base_cost_usd for b in hourly_buckets(changes, START, until, hourly))
        total = sum((c.metered_usd for c in costs.values()), Decimal(0))
        consistent = debits == buckets == report.hours_charged and again.hours_charged == 0 and total == expected
        return Result(
            backend=backend,
            endpoints=endpoints,
            days=days,
            events=events,
            hours_charged=report.hours_charged,
            meter_s=round(meter_s, 3),
            hours_per_s=round(report.hours_charged / meter_s, 1),
            remeter_s=round(remeter_s, 3),
            costs_s=round(costs_s, 3),
            consistent=consistent,
        )
    finally:
        rt.dispose()


def pg_database(pg_url: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}options=" + quote(f"-csearch_path={schema}"), schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"))
    args = ap.parse_args()
    endpoints, days, repeats = (5, 3, 1) if args.quick else (10, 30, 3)
    backends = ["sqlite"] + (["postgresql"] if args.pg_url else [])
    medians: list[Result] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for backend in backends:
            runs = []
            for _ in range(repeats):
                schema = ""
                if backend == "sqlite":
                    url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
                else:
                    url, schema = pg_database(args.pg_url)
                try:
                    runs.append(run(backend, url, tmp, endpoints, days))
                finally:
                    if schema:
                        with create_engine(args.pg_url, isolation_level="AUTOCOMMIT").connect() as c:
                            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            mid = sorted(runs, key=lambda r: r.meter_s)[len(runs) // 2]
            mid.remeter_s = round(statistics.median(r.remeter_s for r in runs), 3)
            mid.costs_s = round(statistics.median(r.costs_s for r in runs), 3)
            mid.consistent = all(r.consistent for r in runs)
            medians.append(mid)
    if args.json:
        print(json.dumps([asdict(r) for r in medians], indent=2))
        return
    print(f"metering {endpoints} endpoints x {days} days of history (median of {repeats})")
    for r in medians:
        print(
            f"  {r.backend:<10} {r.events:>6} events -> {r.hours_charged:>6} hourly debits in {r.meter_s:7.2f} s "
            f"({r.hours_per_s:,.0f} hours/s); re-meter (no-op) {r.remeter_s:.2f} s; month costs {r.costs_s:.2f} s; "
            f"consistent: {r.consistent}"
        )


if __name__ == "__main__":
    main()
