"""The floor under the gateway's added latency: what a bare Python pass-through proxy adds on this machine, with no
key, no catalog, no estimate and no ledger, under the same load as `benchmarks/gateway_load.py`'s goal row (16
closed-loop clients, an upstream answering in 100 ms, the same lean clients and upstream, on the same two cores).

Four proxies, each one uvicorn worker with httptools and uvloop, as `python -m core serve` runs:
- `async`: an ASGI app that forwards the body with one shared `httpx.AsyncClient` (the least any proxy in Python does);
- `thread`: the same, but the forward runs in a worker thread with a shared synchronous `httpx.Client`, which is how
  the gateway runs its engine (synchronous, one call per thread);
- `lean`: `thread` with the gateway's own upstream transport under the `httpx.Client`
  (`core.providers.transport.UpstreamTransport`: one `sendall`, httptools to parse), as the gateway's providers call;
- `gateway`: the real gateway (`python -m core serve`, SQLite, one worker), for comparison in the same hour.

What the gateway adds beyond `lean` is the price of its own work (the key, the hold, the settlement, the answer's
translation); what `async` adds is the floor no gateway written in Python on this machine goes under.

    python benchmarks/proxy_floor.py                 # 1,000 requests per run
    python benchmarks/proxy_floor.py --requests 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gateway_load import (  # noqa: E402
    CACHE,
    UPSTREAM_MS,
    machine_ms,
    pct,
)
from benchmarks.gateway_load import load as run_load  # noqa: E402
from benchmarks.upstream import lean_upstream_process, set_upstream_delay  # noqa: E402
from tests.support.gateway import cpu_seconds, free_port  # noqa: E402

CLIENTS = 16
SETTINGS = {"clients": CLIENTS, "upstream_ms": UPSTREAM_MS}

_PROXY = r"""
import asyncio, os, httpx
from concurrent.futures import ThreadPoolExecutor

UPSTREAM = os.environ["FLOOR_UPSTREAM"]
MODE = os.environ["FLOOR_MODE"]
_async = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))
if MODE == "lean":
    from core.providers.transport import UpstreamTransport
    _sync = httpx.Client(timeout=30, transport=UpstreamTransport())
else:
    _sync = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))
_pool = ThreadPoolExecutor(128)


HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-benchmark-upstream-key"}


def _forward_sync(body):
    r = _sync.post(UPSTREAM + "/chat/completions", content=body, headers=HEADERS)
    return r.status_code, r.content


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    if scope["path"] == "/openapi.json":
        status, out = 200, b"{}"
    elif MODE == "async":
        r = await _async.post(UPSTREAM + "/chat/completions", content=body, headers=HEADERS)
        status, out = r.status_code, r.content
    else:
        status, out = await asyncio.wrap_future(_pool.submit(_forward_sync, body))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
"""


def _proxy(mode: str, upstream: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    src = tmp / "floor_proxy.py"
    src.write_text(_PROXY)
    port = free_port()
    env = {**os.environ, "FLOOR_UPSTREAM": upstream, "FLOOR_MODE": mode, "PYTHONPATH": f"{tmp}{os.pathsep}{ROOT}"}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "floor_proxy:app",
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the {mode} proxy did not start")


def _measure(name: str, url: str, upstream: str, keys: list[dict[str, str]], total: int, pids: list[int]) -> dict:
    direct, _ = run_load(
        f"{upstream}/chat/completions",
        [{"Authorization": "Bearer sk-benchmark-upstream-key"}],
        SETTINGS["clients"],
        total,
        False,
        None,
        SETTINGS["upstream_ms"] / 1000,
    )
    before = cpu_seconds(pids)
    via, wall = run_load(url, keys, SETTINGS["clients"], total, False, None, SETTINGS["upstream_ms"] / 1000)
    after = cpu_seconds(pids)
    d = [s.seconds * 1000 for s in direct if s.ok]
    v = [s.seconds * 1000 for s in via if s.ok]
    row = {
        "proxy": name,
        "requests": len(via),
        "failed": sum(not s.ok for s in via),
        "rps": len(via) / wall,
        "added_p50_ms": pct(v, 0.5) - pct(d, 0.5),
        "added_p95_ms": pct(v, 0.95) - pct(d, 0.95),
        "cpu_ms_per_request": 1000 * (after - before) / len(via) if before is not None and after is not None else None,
    }
    cpu = f"{row['cpu_ms_per_request']:.2f}" if row["cpu_ms_per_request"] is not None else "?"
    print(
        f"  {name:<8} {row['rps']:6.1f} req/s  added p50 {row['added_p50_ms']:6.2f} ms  p95 "
        f"{row['added_p95_ms']:6.2f} ms  CPU {cpu} ms/req  failed {row['failed']}",
        flush=True,
    )
    return row


def _gateway(upstream: str, tmp: Path, total: int) -> dict:
    from core.access import SYSTEM
    from core.config import Settings
    from core.db import Database
    from core.services import Services
    from core.users import add_user
    from tests.support.gateway import gateway_processes

    settings = Settings(database_url=f"sqlite:///{tmp / 'g.db'}", analytics_path=tmp / "a.duckdb")
    db = Database(settings)
    db.init()
    services = Services(db)
    keys = []
    for i in range(CLIENTS):
        with db.session() as s:
            user = add_user(s, email=f"floor{i}@example.com", name="Floor", role="engineer")
        services.ledger.grant(SYSTEM, user.id, 100_000_000, confirm_large=True)
        keys.append({"Authorization": f"Bearer {services.keys.create(SYSTEM, user.id, 'floor').secret}"})
    env = {
        "DATABASE_URL": settings.database_url,
        "ANALYTICS_PATH": str(tmp / "a.duckdb"),
        "OPENAI_API_KEY": "sk-benchmark-upstream-key",
        "OPENAI_BASE_URL": upstream,
    }
    pids: list[int] = []
    try:
        with gateway_processes(env, count=1, workers=1, pids=pids) as (url,):
            return _measure("gateway", f"{url}/v1/chat/completions", upstream, keys, total, pids)
    finally:
        services.close()
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per run (default 1,000)")
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"concurrent clients (default {CLIENTS})")
    parser.add_argument(
        "--upstream-ms", type=float, default=UPSTREAM_MS, help=f"the upstream's answer time (default {UPSTREAM_MS:g})"
    )
    parser.add_argument("--only", choices=("async", "thread", "lean", "gateway"), help="one of the three only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_ms():.1f} ms for the reference work (lower is faster)", flush=True)
    print(
        f"gateway calls: GATEWAY_ROUTES={os.environ.get('GATEWAY_ROUTES') or 'auto'} (auto: the event loop on SQLite, "
        "threads on PostgreSQL)",
        flush=True,
    )
    SETTINGS.update(clients=args.clients, upstream_ms=args.upstream_ms)
    print(
        f"{args.clients} closed-loop clients, upstream answering in {args.upstream_ms:g} ms, "
        f"{args.requests} requests each"
    )
    rows: list[dict[str, Any]] = []
    with lean_upstream_process() as upstream, tempfile.TemporaryDirectory(dir=CACHE) as tmp_name:
        tmp = Path(tmp_name)
        set_upstream_delay(upstream, args.upstream_ms)
        keys = [{"Authorization": "Bearer unused"}]
        for mode in ("async", "thread", "lean"):
            if args.only not in (None, mode):
                continue
            proc, url = _proxy(mode, upstream, tmp)
            try:
                rows.append(_measure(mode, url + "/v1/chat/completions", upstream, keys, args.requests, [proc.pid]))
            finally:
                proc.terminate()
                proc.wait(10)
        if args.only in (None, "gateway"):
            rows.append(_gateway(upstream, tmp, args.requests))
        set_upstream_delay(upstream, 0)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
