"""`make run`'s last step: the HTTP gateway and the app side by side, with a fresh demo API key.

- Both ports are checked first: when either is taken (say, by a `make run` already running) this start says so and
  exits 2 without touching any key, so the running instance's demo key keeps working.
- Then the demo key (`python -m core keys demo`: it revokes the previous one), then the two servers.
- When either server stops, the other is stopped too. A stop someone asked for (Ctrl-C, SIGTERM to this process or
  to one of the servers) ends with exit 0, so make prints no error; a server that fails (exits with an error of its
  own) ends the run with its exit code.
- Ctrl-C must not reach make itself: GNU make, on SIGINT, waits for its recipe and then kills itself with SIGINT
  (status 130, and "make: *** [Makefile:NN: run] Interrupt" when the recipe died of it) however cleanly the recipe
  ended. So while the servers run, this process and its servers are the terminal's foreground process group (as a
  shell does for a job); the terminal is handed back to make's group when both have stopped. Ctrl-Z is ignored
  meanwhile: make, not in that group, would not be stopped with them and the shell would not get its terminal back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

ROOT = Path(__file__).resolve().parent
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# exit statuses of a process stopped on purpose: by the signal (negative, from Popen) or by a shell's 128 + signal
ASKED_TO_STOP = {0} | {-s for s in STOP_SIGNALS} | {128 + s for s in STOP_SIGNALS}
OWN_STOP_SECONDS = 5.0  # a server on a busy machine may take a moment to stop on its own Ctrl-C
GRACE_SECONDS = 15.0  # the gateway drains for up to 10 s (`core serve`'s timeout_graceful_shutdown)


def busy_ports(host: str, ports: Sequence[int]) -> list[str]:
    """What stops a server from listening on each port, one sentence each; empty when both can start."""
    from core.cli.serve_cmd import check_address
    from core.errors import CoreError

    problems = []
    for port in ports:
        try:
            check_address(host, port)
        except CoreError as exc:
            problems.append(str(exc).split(":")[0] if "already in use" in str(exc) else str(exc))
    return problems


def make_demo_key() -> int:
    """`python -m core keys demo` in this process: prints the key (and revokes the previous demo key)."""
    from core.cli import main

    return main(["keys", "demo"])


def _wait_all(children: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    for child in children.values():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return


@contextlib.contextmanager
def terminal_foreground(stream: TextIO | None = None) -> Iterator[bool]:
    """While inside, this process leads its own process group and that group is the terminal's foreground, so Ctrl-C
    reaches it (and the servers it starts, which inherit the group) but not the make that started it; on leaving,
    the terminal goes back to the group that had it. Yields whether it took the terminal: not when `stream` (stdin)
    is no terminal or this process runs in the background, where there is no Ctrl-C to keep from make."""
    source = sys.stdin if stream is None else stream
    try:
        fd = source.fileno()
        previous = os.tcgetpgrp(fd)
    except (AttributeError, OSError, ValueError):  # no stdin, or not a terminal (a pipe, a file, pytest's capture)
        previous = fd = -1
    if previous == -1 or previous != os.getpgrp():
        yield False
        return
    with contextlib.suppress(OSError):  # a session leader already leads its group and may not move
        os.setpgid(0, 0)
    tstp = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    _set_foreground(fd, os.getpgrp())
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):  # the terminal may be gone (a closed window)
            _set_foreground(fd, previous)
        signal.signal(signal.SIGTSTP, tstp)


def _set_foreground(fd: int, pgrp: int) -> None:
    """tcsetpgrp from a group that is not (or no longer) in the foreground: SIGTTOU would stop the caller."""
    ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, ttou)


def serve(commands: dict[str, tuple[list[str], dict[str, str] | None]]) -> int:
    """Start each named server (argv, environment) in the terminal's foreground group and supervise them until both
    have stopped; Ctrl-C and SIGTERM are a stop asked for (exit 0)."""
    asked: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        asked.append(signum)

    handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        with terminal_foreground():
            children: dict[str, subprocess.Popen[bytes]] = {}
            try:
                for name, (argv, env) in commands.items():
                    # argv lists, no shell: the host and ports (make's HOST, PORT, GATEWAY_PORT) are arguments
                    children[name] = subprocess.Popen(argv, cwd=ROOT, env=env)  # noqa: S603
            except BaseException:
                for child in children.values():
                    child.kill()
                    child.wait()
                raise
            return supervise(children, stopping=lambda: bool(asked))
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def supervise(
    children: dict[str, subprocess.Popen[bytes]],
    *,
    stopping: Callable[[], bool],
    poll_seconds: float = 0.2,
    grace_seconds: float = GRACE_SECONDS,
) -> int:
    """Wait until one child ends or `stopping()` says a stop was asked, then stop the others (SIGTERM, then SIGKILL
    after `grace_seconds`). Exit 0 for an asked-for stop, else the failed child's exit code."""
    ended: tuple[str, int] | None = None
    while ended is None and not stopping():
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                ended = (name, code)
                break
        else:
            time.sleep(poll_seconds)
    # Ctrl-C reaches the servers too: give them a moment to stop on their own. Asked again after the loop: the poll may
    # find the faster server gone (stopped by that Ctrl-C) before this process's own handler has run
    if ended is None or stopping():
        _wait_all(children, time.monotonic() + OWN_STOP_SECONDS)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace_seconds
    for child in children.values():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if ended is None or ended[1] in ASKED_TO_STOP:
        return 0
    name, code = ended
    print(f"{name} stopped with exit code {code}; the other server was stopped too", file=sys.stderr)
    return code if code > 0 else 1


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="serve_all.py", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501, help="the app's port")
    p.add_argument("--gateway-port", type=int, default=8000)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.port == args.gateway_port:
        same = f"the app and the gateway cannot share port {args.port}: give PORT and GATEWAY_PORT two different ports"
        print(f"error: {same}. No demo key was made or revoked.", file=sys.stderr)
        return 2
    problems = busy_ports(args.host, [args.port, args.gateway_port])
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        hint = (
            "Is `make run` already running? Stop it first, or free the port. "
            if any("already in use" in p for p in problems)
            else ""
        )
        print(f"{hint}No demo key was made or revoked.", file=sys.stderr)
        return 2
    code = make_demo_key()
    if code:
        return code
    sys.stdout.flush()
    py, host = sys.executable, args.host
    gateway = [py, "-m", "core", "serve", "--host", host, "--port", str(args.gateway_port)]
    app = [
        *(py, str(ROOT / "serve_app.py"), "--server.address", host, "--server.port", str(args.port)),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
    ]
    env = {**os.environ, "GATEWAY_URL": f"http://127.0.0.1:{args.gateway_port}/v1"}
    return serve({"the gateway": (gateway, None), "the app": (app, env)})


if __name__ == "__main__":
    sys.exit(main())
