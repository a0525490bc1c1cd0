"""Gateway load: async clients against `python -m core serve` with a loopback OpenAI-shaped upstream (its own
process), non-streaming and streaming chat, at 1, 16 and 64 concurrent clients (spread over 16 users, each with a key),
on SQLite (one worker, then two: they queue for the write lock through core.db.write_queue) and on PostgreSQL (two
workers, when TEST_DATABASE_URL or --pg-url is set).

For each run it prints requests/s through the gateway, the latency the gateway adds at p50 and p95 (the same requests
sent straight to the upstream at the same concurrency are the baseline), for streams the time to first token added,
and the ledger check afterwards (every balance proven from its transactions; zero violations expected).
Goal on the 2-core machine: >= 400 requests/s at 64 clients; added p50 <= 3 ms and p95 <= 10 ms at 16 clients;
time to first token added <= 5 ms; zero violations. The clients, the gateway and the upstream share the two cores,
so the figures include the clients' own CPU (kept small: `benchmarks/loadgen.py`) and the upstream's (kept small too:
`benchmarks/upstream.py`, an asyncio server with the test suite's OpenAI bodies, since a provider's servers are not on
the gateway's machine).

    python benchmarks/gateway_load.py               # 2,000 requests per run
    python benchmarks/gateway_load.py --quick       # 300 per run
    python benchmarks/gateway_load.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import Connection  # noqa: E402
from benchmarks.upstream import lean_upstream_process, set_upstream_delay  # noqa: E402
from core.access import SYSTEM  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.services import Services  # noqa: E402
from core.users import add_user  # noqa: E402
from tests.support.gateway import cpu_seconds, gateway_processes  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
LEVELS = (1, 16, 64)
# After the 16-client run, the same 16 clients again at half the requests/s it reached (Poisson arrivals): the latency
# the gateway adds when it is not saturated. Closed-loop clients keep it saturated, so there "added" is mostly queueing.
PACED_CLIENTS = 16
PACED_SHARE = 0.5
# Then the same 16 closed-loop clients against an upstream that takes UPSTREAM_MS to answer, as a provider does: what
# the gateway adds to a call at the request rate the callers' own waits allow. A real chat completion takes hundreds
# of milliseconds; LiteLLM publishes its overhead (2 ms p50, 8 ms p95 on four instances) from a fake endpoint whose
# calls took ~100 ms in all (docs.litellm.ai/docs/benchmarks).
UPSTREAM_MS = 100.0
GOALS = {"rps_at_64": 400.0, "added_p50_ms_at_16": 3.0, "added_p95_ms_at_16": 10.0, "ttft_added_ms": 5.0}
PROMPT = "Summarise the benefits of prepaid credits in one sentence."
UPSTREAM_KEY = "sk-benchmark-upstream-key"
USERS = 16
JSON_OUT = "--json" in sys.argv  # rows go to stderr then, so stdout is the JSON alone


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Sample:
    seconds: float  # whole request
    ttft: float | None  # first content chunk (streams)
    ok: bool


async def _one(conn: Connection, headers: dict[str, str], stream: bool) -> Sample:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    reply = await conn.post_json("", body, headers, stream=stream)
    ok = reply.status == 200 and (reply.ttft is not None if stream else bool(json.loads(reply.body).get("choices")))
    return Sample(reply.seconds, reply.ttft, ok)


async def _load(
    url: str, keys: list[dict[str, str]], clients: int, total: int, stream: bool, rate: float | None, stagger: float
) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    left = total
    pace = random.Random(7)
    # One kept-alive connection per simulated client, as separate callers have, through the lean client of
    # benchmarks/loadgen.py: httpx spent ~1.6 ms of CPU per request on the two cores the gateway needs.
    pool = [Connection(url) for _ in range(clients)]
    try:

        async def worker(conn: Connection, headers: dict[str, str], start: float) -> None:
            nonlocal left
            await asyncio.sleep(start)
            due = time.perf_counter()
            while left > 0:
                left -= 1
                if rate:  # Poisson arrivals: this client's share of `rate`, late requests sent at once
                    due += pace.expovariate(rate / clients)
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                t = time.perf_counter()
                try:
                    samples.append(await _one(conn, headers, stream))
                except (ConnectionError, OSError, asyncio.IncompleteReadError):  # counted as failed; the run goes on
                    samples.append(Sample(time.perf_counter() - t, None, False))

        for i, conn in enumerate(pool):  # open and warm the connections up
            await _one(conn, keys[i % len(keys)], stream)
        started = time.perf_counter()
        # With a slow upstream, clients started together stay in step (each waits the same time for its answer),
        # so all of them would reach the gateway at once, every time: a burst no independent callers make. Each
        # starts at its own offset within one upstream answer time instead.
        starts = [pace.uniform(0, stagger) for _ in pool]
        await asyncio.gather(*(worker(conn, keys[i % len(keys)], starts[i]) for i, conn in enumerate(pool)))
        wall = time.perf_counter() - started
    finally:
        for conn in pool:
            await conn.close()
    return samples, wall


def load(
    url: str,
    keys: list[dict[str, str]],
    clients: int,
    total: int,
    stream: bool,
    rate: float | None = None,
    stagger: float = 0.0,
) -> tuple[list[Sample], float]:
    """`total` requests from `clients` concurrent clients, client i sending the headers keys[i % len(keys)]: each
    client sends its next request as soon as it has the answer, or, with `rate`, at Poisson arrival times adding up to
    `rate` requests/s (an offered load below capacity, so the latency measured is the gateway's work, not a queue).
    `stagger`: each client starts at a random offset up to that many seconds (for a slow upstream; see _load)."""
    return asyncio.run(_load(url, keys, clients, total, stream, rate, stagger))


def _database(kind: str, pg_url: str | None, tmp: Path) -> tuple[str, str | None]:
    """(database URL, PostgreSQL schema to drop afterwards)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'gateway.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as conn:  # type: ignore[arg-type]
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"  # type: ignore[operator]
    return f"{pg_url}{sep}options=-csearch_path%3D{schema}", schema


def run_database(
    kind: str, workers: int, per_run: int, upstream: str, pg_url: str | None, upstream_ms: float = UPSTREAM_MS
) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp_name:
        tmp = Path(tmp_name)
        url, schema = _database(kind, pg_url, tmp)
        try:
            settings = Settings(database_url=url, analytics_path=tmp / "a.duckdb")
            db = Database(settings)
            db.init()
            services = Services(db)
            keys = []
            for i in range(USERS):  # clients spread over several users, as a gateway's traffic is
                with db.session() as s:
                    user = add_user(s, email=f"bench{i}@example.com", name="Bench", role="engineer")
                services.ledger.grant(SYSTEM, user.id, 100_000_000, confirm_large=True)
                keys.append({"Authorization": f"Bearer {services.keys.create(SYSTEM, user.id, 'benchmark').secret}"})
            env = {
                "DATABASE_URL": url,
                "ANALYTICS_PATH": str(tmp / "a.duckdb"),
                "OPENAI_API_KEY": UPSTREAM_KEY,
                "OPENAI_BASE_URL": upstream,
            }
            if os.environ.get("REDIS_URL"):
                env["REDIS_URL"] = os.environ["REDIS_URL"]
            pids: list[int] = []
            with gateway_processes(env, count=1, workers=workers, pids=pids) as (gateway,):
                for stream in (False, True):
                    # (clients, offered requests/s or None for closed loop, upstream delay in ms)
                    runs: list[tuple[int, float | None, float]] = [(c, None, 0.0) for c in LEVELS]
                    if upstream_ms:
                        runs.append((PACED_CLIENTS, None, upstream_ms))
                    for clients, rate, delay in runs:
                        total = per_run if clients > 1 else max(per_run // 4, 50)
                        if rate or delay:
                            total = max(per_run // 2, 50)
                        set_upstream_delay(upstream, delay)
                        direct, _ = load(
                            f"{upstream}/chat/completions",
                            [{"Authorization": f"Bearer {UPSTREAM_KEY}"}],
                            clients,
                            total,
                            stream,
                            rate,
                            delay / 1000,
                        )
                        cpu_before = cpu_seconds(pids)
                        via, wall = load(
                            f"{gateway}/v1/chat/completions", keys, clients, total, stream, rate, delay / 1000
                        )
                        cpu_after = cpu_seconds(pids)
                        violations = services.ledger.check(SYSTEM)
                        row = _summary(kind, workers, stream, clients, direct, via, wall, len(violations))
                        # the gateway's own CPU per request (all its processes): steadier than requests/s on a machine
                        # whose speed varies, and what the requests/s at saturation is bound by
                        if cpu_before is not None and cpu_after is not None:
                            row["gateway_cpu_ms_per_request"] = 1000 * (cpu_after - cpu_before) / len(via)
                        row["offered_rps"] = rate
                        row["upstream_ms"] = delay
                        results.append(row)
                        _print_row(row)
                        if (
                            clients == PACED_CLIENTS and rate is None and not delay
                        ):  # the same clients at half that rate
                            runs.insert(
                                runs.index((clients, None, 0.0)) + 1, (clients, round(row["rps"] * PACED_SHARE), 0.0)
                            )
                    set_upstream_delay(upstream, 0)
            services.close()
            db.dispose()
        finally:
            if schema:
                with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as conn:  # type: ignore[arg-type]
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return results


def _summary(
    kind: str, workers: int, stream: bool, clients: int, direct: list[Sample], via: list[Sample], wall: float, bad: int
) -> dict[str, Any]:
    d = [s.seconds * 1000 for s in direct if s.ok]
    v = [s.seconds * 1000 for s in via if s.ok]
    out: dict[str, Any] = {
        "database": kind,
        "workers": workers,
        "mode": "stream" if stream else "plain",
        "clients": clients,
        "requests": len(via),
        "failed": sum(not s.ok for s in via),
        "rps": len(via) / wall,
        "direct_ms": {"p50": pct(d, 0.5), "p95": pct(d, 0.95)},
        "gateway_ms": {"p50": pct(v, 0.5), "p95": pct(v, 0.95)},
        "added_ms": {"p50": pct(v, 0.5) - pct(d, 0.5), "p95": pct(v, 0.95) - pct(d, 0.95)},
        "ledger_violations": bad,
    }
    if stream:
        dt = [s.ttft * 1000 for s in direct if s.ttft is not None]
        vt = [s.ttft * 1000 for s in via if s.ttft is not None]
        out["ttft_added_ms"] = {"p50": pct(vt, 0.5) - pct(dt, 0.5), "p95": pct(vt, 0.95) - pct(dt, 0.95)}
    return out


def _print_row(r: dict[str, Any]) -> None:
    ttft = r.get("ttft_added_ms")
    extra = f"  TTFT added p50 {ttft['p50']:6.2f} ms" if ttft else ""
    if r.get("gateway_cpu_ms_per_request") is not None:
        extra += f"  gateway CPU {r['gateway_cpu_ms_per_request']:.2f} ms/req"
    paced = f" at {r['offered_rps']:>4.0f}/s" if r.get("offered_rps") else " " * 9
    if r.get("upstream_ms"):
        paced = f" up {r['upstream_ms']:>3.0f}ms"
    print(
        f"  {r['database']:<10} {r['workers']}w {r['mode']:<6} {r['clients']:>3} clients{paced}  "
        f"{r['rps']:7.1f} req/s  "
        f"added p50 {r['added_ms']['p50']:6.2f} ms  p95 {r['added_ms']['p95']:6.2f} ms{extra}  "
        f"failed {r['failed']}  violations {r['ledger_violations']}",
        file=sys.stderr if JSON_OUT else sys.stdout,
        flush=True,
    )


def machine_ms() -> float:
    """A fixed piece of pure-Python work (JSON and Decimal, as a call's own work is), in ms, the median of 5: this VM's
    speed varies by up to 2x from hour to hour, so runs are compared with this figure beside them."""
    from decimal import Decimal

    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}] * 4})
    times = []
    for _ in range(5):
        t = time.perf_counter()
        total = Decimal(0)
        for i in range(4000):
            total += Decimal(len(json.loads(body)["messages"])) * Decimal("0.00015") + Decimal(i) / 7
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[2]


def _worst(rows: list[dict[str, Any]], mode: str, figure: str, q: str) -> float:
    """The highest of a figure over the setups (every setup must meet a goal on its own)."""
    return max((r[figure][q] for r in rows if r["mode"] == mode), default=float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 requests per run instead of 2,000")
    parser.add_argument("--requests", type=int, help="requests per run (overrides --quick)")
    parser.add_argument(
        "--pg-url", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL for the 2-worker runs"
    )
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    parser.add_argument(
        "--sqlite-workers",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 2],
        help="worker counts to run on SQLite (default 1,2)",
    )
    parser.add_argument(
        "--upstream-ms",
        type=float,
        default=UPSTREAM_MS,
        help=f"the upstream's answer time for the provider-like runs at 16 clients (default {UPSTREAM_MS:g}; 0: none)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_run = args.requests or (300 if args.quick else 2000)
    CACHE.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    speed = [machine_ms()]
    out = sys.stderr if args.json else sys.stdout
    print(f"machine: {speed[0]:.1f} ms for the reference work (lower is faster)", file=out, flush=True)
    print(
        f"gateway calls: GATEWAY_ROUTES={os.environ.get('GATEWAY_ROUTES') or 'auto'} (auto: the event loop on SQLite, "
        "threads on PostgreSQL)",
        file=out,
        flush=True,
    )
    with lean_upstream_process() as upstream:
        if args.only in (None, "sqlite"):
            for workers in args.sqlite_workers:
                results += run_database("sqlite", workers, per_run, upstream, None, args.upstream_ms)
        if args.only in (None, "postgresql") and args.pg_url:
            results += run_database("postgresql", 2, per_run, upstream, args.pg_url, args.upstream_ms)
    speed.append(machine_ms())
    provider_like = [r for r in results if r.get("upstream_ms")]
    closed = [r for r in results if not r.get("offered_rps") and not r.get("upstream_ms")]
    paced = [r for r in results if r.get("offered_rps")]
    at16 = [r for r in closed if r["clients"] == 16 and r["mode"] == "plain"]
    at64 = [r for r in closed if r["clients"] == 64 and r["mode"] == "plain"]
    streams = [r for r in closed if r["mode"] == "stream" and r["clients"] == 16]
    paced_plain = [r for r in paced if r["mode"] == "plain"]
    paced_streams = [r for r in paced if r["mode"] == "stream"]
    best = max(at64, key=lambda r: r["rps"], default=None)
    verdict = {
        "rps_at_64": best["rps"] if best else 0.0,
        "rps_at_64_setup": f"{best['database']}, {best['workers']} worker(s)" if best else None,
        "added_p50_ms_at_16": min((r["added_ms"]["p50"] for r in at16), default=float("nan")),
        "added_p95_ms_at_16": min((r["added_ms"]["p95"] for r in at16), default=float("nan")),
        "ttft_added_ms": min((r["ttft_added_ms"]["p50"] for r in streams), default=float("nan")),
        "paced_added_p50_ms_at_16": min((r["added_ms"]["p50"] for r in paced_plain), default=float("nan")),
        "paced_added_p95_ms_at_16": min((r["added_ms"]["p95"] for r in paced_plain), default=float("nan")),
        "paced_ttft_added_ms": min((r["ttft_added_ms"]["p50"] for r in paced_streams), default=float("nan")),
        "provider_like_upstream_ms": args.upstream_ms,
        "provider_like_added_p50_ms_at_16": _worst(provider_like, "plain", "added_ms", "p50"),
        "provider_like_added_p95_ms_at_16": _worst(provider_like, "plain", "added_ms", "p95"),
        "provider_like_ttft_added_ms": _worst(provider_like, "stream", "ttft_added_ms", "p50"),
        "violations": sum(r["ledger_violations"] for r in results),
        "machine_ms_before_after": speed,
    }
    if args.json:
        print(json.dumps({"runs": results, "summary": verdict, "goals": GOALS}, indent=2))
    else:
        print(
            f"best: {verdict['rps_at_64']:.0f} req/s at 64 clients ({verdict['rps_at_64_setup']}; goal >= "
            f"{GOALS['rps_at_64']:.0f}); "
            f"added p50 {verdict['added_p50_ms_at_16']:.2f} ms, p95 {verdict['added_p95_ms_at_16']:.2f} ms at 16 "
            f"(goal <= 3 / <= 10); TTFT added {verdict['ttft_added_ms']:.2f} ms (goal <= 5); "
            f"{verdict['violations']} ledger violations\n"
            f"below saturation (16 clients at half that rate): added p50 {verdict['paced_added_p50_ms_at_16']:.2f} ms, "
            f"p95 {verdict['paced_added_p95_ms_at_16']:.2f} ms; TTFT added {verdict['paced_ttft_added_ms']:.2f} ms\n"
            f"16 clients, upstream answering in {args.upstream_ms:g} ms (worst setup): added p50 "
            f"{verdict['provider_like_added_p50_ms_at_16']:.2f} ms, "
            f"p95 {verdict['provider_like_added_p95_ms_at_16']:.2f} ms; "
            f"TTFT added {verdict['provider_like_ttft_added_ms']:.2f} ms\n"
            f"machine: {speed[0]:.1f} ms for the reference work before, {speed[1]:.1f} after (lower is faster)"
        )
    return 0 if verdict["violations"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
