"""`python -m core serve`: the OpenAI- and Anthropic-compatible HTTP gateway on uvicorn (one `Services` per worker).
Binds to 127.0.0.1 unless told otherwise; with several workers (or several instances), set REDIS_URL so that every
one enforces the same per-key rate limits (balances are enforced by the shared database)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

from core.cli import Context
from core.cli.args import bounded_int, port_int
from core.config import GATEWAY_ROUTE_MODES, gateway_routes
from core.errors import InvalidInputError

APP = "core.gateway.app:create_app"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP gateway (OpenAI- and Anthropic-compatible API)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--workers", type=bounded_int(1, 64, "workers"), default=1, help="worker processes (default 1)")
    p.add_argument("--access-log", action="store_true", help="log one line per request (method, path, status)")
    p.add_argument(
        "--routes",
        choices=GATEWAY_ROUTE_MODES,
        default=None,
        help="where calls run: on the event loop, in threads, or auto (the loop on SQLite, threads on PostgreSQL or "
        "behind a proxy; the default, or GATEWAY_ROUTES)",
    )
    p.set_defaults(func=run)


def check_address(host: str, port: int) -> None:
    """Bind the address once before saying the gateway is on it: a port in use or a host this machine does not have
    is one line and exit 2, not uvicorn's ERROR line after a banner that claimed the gateway was up. An empty host
    (which binds every interface) is refused: the network is offered only when named, as 0.0.0.0."""
    if not host.strip():
        raise InvalidInputError(
            "--host is empty, which would listen on every interface; give 127.0.0.1 (this machine), or 0.0.0.0 to "
            "offer the gateway to the network on purpose."
        )
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as uvicorn binds it
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(" (while attempting")[0]
        if exc.errno == errno.EADDRINUSE:
            raise InvalidInputError(
                f"Port {port} on {host} is already in use: stop what listens there or pick another with --port."
            ) from None
        if exc.errno == errno.EACCES:
            raise InvalidInputError(
                f"Port {port} needs privileges this user does not have: pick one from 1024 up with --port."
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:
            raise InvalidInputError(
                f"--host {host} is not an address of this machine ({reason}): use 127.0.0.1, 0.0.0.0 or one of its "
                "own addresses."
            ) from None
        raise InvalidInputError(f"Cannot listen on {host}:{port} ({reason}); check --host and --port.") from None


def _where_calls_run(ctx: Context) -> str:
    """Where the workers will run their calls (as core.gateway.app decides it), in words for the banner."""
    mode = gateway_routes()
    if ctx.services.calls_run_on_loop(mode):
        return "on the event loop"
    problem = ctx.services.event_loop_problem()
    return "in threads" + (f" ({problem})" if mode == "auto" and problem else "")


def run(args: argparse.Namespace, ctx: Context) -> int:
    import uvicorn

    check_address(args.host, args.port)
    if args.routes is not None:
        os.environ["GATEWAY_ROUTES"] = args.routes  # the workers' own setting
    where = _where_calls_run(ctx)
    limiter = "Redis" if ctx.services.settings.redis_url else "this process (set REDIS_URL to share them)"
    print(
        f"gateway on http://{args.host}:{args.port}/v1 (docs: /docs), {args.workers} worker(s); calls run {where}; "
        f"rate limits in {limiter}",
        file=sys.stderr,
        flush=True,
    )
    ctx.services.close()  # each worker builds its own
    uvicorn.run(
        APP,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http="httptools",
        loop="uvloop",
        access_log=args.access_log,
        log_level="info" if args.access_log else "warning",
        timeout_graceful_shutdown=10,
    )
    return 0
