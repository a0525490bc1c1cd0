"""The gateway for tests and benchmarks: in this process (uvicorn in a thread, on a free loopback port, over a given
`Services`), or as `python -m core serve` child processes (real workers, e.g. two on one PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from core.gateway import create_app
from core.services import Services

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gateway_in_thread(services: Services) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) of a gateway serving `services`; stopped on exit."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(services), log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def gateway_processes(
    env: dict[str, str], count: int = 1, *, workers: int = 1, pids: list[int] | None = None
) -> Iterator[list[str]]:
    """`count` gateway processes (`python -m core serve`) with `env` added to this environment; yields their base
    URLs once each answers; terminated on exit. `pids`, when given, receives the processes' ids (benchmarks read
    their CPU time)."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as logs:
        try:
            for i in range(count):
                port = free_port()
                cmd = [sys.executable, "-m", "core", "serve", "--port", str(port), "--workers", str(workers)]
                log = open(Path(logs) / f"gateway-{i}.log", "wb")  # noqa: SIM115 - closed with the process
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=full_env, stderr=log, stdout=log))
                urls.append(f"http://127.0.0.1:{port}")
            for i, (url, proc) in enumerate(zip(urls, procs, strict=True)):
                _wait_until_up(url, proc, Path(logs) / f"gateway-{i}.log")
            if pids is not None:
                pids.extend(proc.pid for proc in procs)
            yield urls
        finally:
            _stop(procs)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log.read_text(errors="replace")
            raise RuntimeError(f"the gateway exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the gateway at {url} did not answer within 60 s")


def cpu_seconds(pids: list[int]) -> float | None:
    """User and system CPU seconds used so far by these processes and their children (uvicorn's workers), read from
    /proc; None where there is no /proc (not Linux)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    seen: set[int] = set()
    total = 0
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            if pid in pids and not Path("/proc").is_dir():
                return None
    return total / tick
