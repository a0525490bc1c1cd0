"""serve_all.py (`make run`): a start on a busy port leaves the running instance's demo key alone, and a stop someone
asked for (a server stopped by SIGTERM, Ctrl-C) ends with exit 0 while a failing server's error is passed on; Ctrl-C
typed on the terminal of a real make running it ends make with 0 too."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import serve_all
from core.cli import main
from core.cli.keys_cmd import DEMO_KEY_NAME
from core.services import SYSTEM, Services
from tests.conftest import make_runtime

ADMIN = "admin@example.com"
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _active_demo_keys(url: str, tmp_path: Path) -> list[int]:
    db = make_runtime(url, tmp_path)
    try:
        keys = Services(db).keys.list(SYSTEM, ADMIN)
        return [k.id for k in keys if k.name == DEMO_KEY_NAME and k.status() == "active"]
    finally:
        db.dispose()


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    assert main(["users", "add", "--email", ADMIN, "--name", "Admin", "--role", "admin"]) == 0
    return url


@pytest.mark.parametrize("busy", ["app", "gateway"])
def test_a_start_on_a_busy_port_leaves_the_running_demo_key_alone(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], busy: str
) -> None:
    assert main(["keys", "demo"]) == 0  # the running instance's key
    running = _active_demo_keys(db_url, tmp_path)
    assert len(running) == 1

    def no_servers(*args: object, **kwargs: object) -> None:
        raise AssertionError("servers started although a port is taken")

    monkeypatch.setattr(serve_all.subprocess, "Popen", no_servers)
    capsys.readouterr()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        ports = {"app": port, "gateway": _free_port()} if busy == "app" else {"app": _free_port(), "gateway": port}
        code = serve_all.main(["--port", str(ports["app"]), "--gateway-port", str(ports["gateway"])])
    out, err = capsys.readouterr()
    assert code == 2 and f"Port {port} on 127.0.0.1 is already in use" in err and "No demo key" in err
    assert "demo API key" not in out
    assert _active_demo_keys(db_url, tmp_path) == running


def test_one_port_for_both_servers_is_refused_before_any_key(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(_free_port())
    assert serve_all.main(["--port", port, "--gateway-port", port]) == 2
    assert "cannot share port" in capsys.readouterr().err and _active_demo_keys(db_url, tmp_path) == []


def test_a_free_start_makes_a_new_demo_key_before_the_servers(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "demo"]) == 0
    (old,) = _active_demo_keys(db_url, tmp_path)
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def fake_popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(argv)
        return real_popen([sys.executable, "-c", "pass"])  # a server that stops at once, cleanly

    monkeypatch.setattr(serve_all.subprocess, "Popen", fake_popen)
    handlers = {s: signal.getsignal(s) for s in serve_all.STOP_SIGNALS}
    try:
        code = serve_all.main(["--port", str(_free_port()), "--gateway-port", str(_free_port())])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert code == 0 and len(started) == 2 and "demo API key" in capsys.readouterr().out
    (new,) = _active_demo_keys(db_url, tmp_path)
    assert new != old


def test_a_server_stopped_by_sigterm_stops_the_other_and_exits_0() -> None:
    children = {"the gateway": subprocess.Popen(SLEEPER), "the app": subprocess.Popen(SLEEPER)}
    children["the gateway"].send_signal(signal.SIGTERM)
    assert serve_all.supervise(children, stopping=lambda: False, poll_seconds=0.05) == 0
    assert children["the app"].returncode == -signal.SIGTERM  # stopped with it, not left running


def test_a_failing_server_stops_the_other_and_passes_its_error_on(capsys: pytest.CaptureFixture[str]) -> None:
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    children = {"the gateway": failing, "the app": subprocess.Popen(SLEEPER)}
    assert serve_all.supervise(children, stopping=lambda: False, poll_seconds=0.05) == 3
    assert children["the app"].returncode is not None
    assert "the gateway stopped with exit code 3" in capsys.readouterr().err


def test_ctrl_c_seen_first_as_one_server_ending_still_gives_the_other_its_moment_to_stop() -> None:
    """Ctrl-C reaches both servers and serve_all at once. When serve_all's poll finds the faster server gone before its
    own handler has said stop, the other server still gets its moment to stop on its own (and say so) rather than a
    SIGTERM at once: CI saw `make run`'s app cut short, its "stopped" line missing."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # the server that stopped on Ctrl-C first
    gone.wait()
    stopping_own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])  # still stopping
    asked = iter([False])  # the first look: no stop asked yet; every later one: asked
    children = {"the gateway": gone, "the app": stopping_own}
    assert serve_all.supervise(children, stopping=lambda: next(asked, True), poll_seconds=0.05) == 0
    assert stopping_own.returncode == 0  # it ended on its own, not by the SIGTERM


def test_an_asked_for_stop_ends_both_with_exit_0() -> None:
    """Ctrl-C or SIGTERM to serve_all itself: its handler says stop; a server that ignores SIGTERM is killed."""
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    code += "time.sleep(60)"
    stubborn = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    children = {"the gateway": subprocess.Popen(SLEEPER), "the app": stubborn}
    assert serve_all.supervise(children, stopping=lambda: True, grace_seconds=1.0) == 0
    assert children["the gateway"].returncode == -signal.SIGTERM
    assert children["the app"].returncode == -signal.SIGKILL


# A server that, like uvicorn and streamlit, stops cleanly on Ctrl-C, saying so on the terminal.
# Each line is one write(2): the two servers share the terminal, and print() could interleave their lines' pieces.
SERVER = (
    "import os, signal, sys, time; name = sys.argv[1]; "
    "say = lambda text: os.write(1, (text + chr(10)).encode()); "
    "signal.signal(signal.SIGINT, lambda *a: (say(f'stopped {name}'), sys.exit(0))); "
    "say(f'ready {name} {os.getpid()}'); time.sleep(60)"
)
READY = re.compile(rb"^ready \w+ (\d+)\r?\n", re.MULTILINE)
RECIPE = """import sys
sys.path.insert(0, {root!r})
import serve_all
server = [sys.executable, "-c", {server!r}]
sys.exit(serve_all.serve({{"the gateway": ([*server, "gateway"], None), "the app": ([*server, "app"], None)}}))
"""


def _read_until(fd: int, done: Callable[[bytes], bool], seconds: float) -> bytes:
    """What the terminal shows until `done` says enough (or it closes, or time is up)."""
    out, deadline = b"", time.monotonic() + seconds
    poller = select.poll()  # not select(): it refuses a descriptor past 1024, which a long test session can reach
    poller.register(fd, select.POLLIN)
    while not done(out) and (left := deadline - time.monotonic()) > 0:
        if poller.poll(left * 1000):
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: every process holding the terminal has ended
                break
            if not chunk:
                break
            out += chunk
    return out


def _on_a_terminal(terminal: int) -> None:
    """In the child: a new session whose controlling terminal is `terminal`, as a shell's job would have."""
    os.setsid()
    import fcntl
    import termios

    fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_ctrl_c_on_make_run_stops_both_servers_and_make_exits_0(tmp_path: Path) -> None:
    """make runs a `make run`-like recipe (serve_all.serve with two servers) on a terminal; Ctrl-C typed there reaches
    the servers and serve_all but not make, which would otherwise die of SIGINT after its recipe (status 130)."""
    (tmp_path / "recipe.py").write_text(RECIPE.format(root=str(Path(serve_all.__file__).parent), server=SERVER))
    (tmp_path / "Makefile").write_text(f"run:\n\t@{sys.executable} recipe.py\n")
    main_fd, terminal = pty.openpty()
    make = subprocess.Popen(
        ["make", "run"],
        cwd=tmp_path,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        preexec_fn=lambda: _on_a_terminal(terminal),
    )
    os.close(terminal)
    pids: list[int] = []
    try:
        # whole lines: the terminal may show "ready app" before the pid that follows it on the same line
        shown = _read_until(main_fd, lambda out: len(READY.findall(out)) == 2, 20)
        pids = [int(pid) for pid in READY.findall(shown)]
        assert len(pids) == 2, shown
        os.write(main_fd, b"\x03")  # Ctrl-C
        assert make.wait(timeout=20) == 0
        shown += _read_until(main_fd, lambda out: False, 2)
        alive = []
        for pid in pids:  # both servers ended (and serve_all reaped them)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 0)
                alive.append(pid)
        assert alive == []
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if make.poll() is None:
            make.kill()
        make.wait()
        os.close(main_fd)
    text = shown.decode()
    assert "stopped gateway" in text and "stopped app" in text, text  # the whole terminal when one is missing
    assert "make:" not in text and "Interrupt" not in text


def test_without_a_terminal_serve_all_leaves_the_process_group_alone() -> None:
    group = os.getpgrp()
    with serve_all.terminal_foreground(io.StringIO()) as took:
        assert took is False and os.getpgrp() == group
