"""Every subcommand with malformed values, on SQLite and PostgreSQL: exit 2, exactly one line on stderr, no
traceback, and every table's row count unchanged (the cases: tests/support/cli_cases.py).

The commands run in-process against one seeded database per backend (a subprocess per case would spend most of
its time starting Python); the few behaviours that only a real process shows (bytes that are not UTF-8 in argv, a
reader that closes the pipe) run as subprocesses below.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from core.cli import main
from tests.conftest import PG_URL
from tests.support.cli_cases import KNOWN, Case, RowCounter, cases, environment, run_cli, seed, try_case
from tests.support.pg_schema import scratch_schema

ROOT = Path(__file__).resolve().parents[3]
CASES = cases()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cli_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_available: bool
) -> Iterator[tuple[RowCounter, Path]]:
    folder = tmp_path_factory.mktemp(f"cli-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'app.db'}"
        else:
            if not pg_available:
                pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
            url = stack.enter_context(scratch_schema(PG_URL, "cli"))
        engine = create_engine(url)
        stack.callback(engine.dispose)
        stack.enter_context(environment(url, folder))
        seed()
        yield RowCounter(engine), folder


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_malformed_command_line(case: object, cli_db: tuple[RowCounter, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    counts, folder = cli_db
    monkeypatch.setenv("ANALYTICS_PATH", str(folder / "analytics.duckdb"))  # the module's store, synced once
    outcome = try_case(case, counts)  # type: ignore[arg-type]
    assert outcome.clean, f"{'; '.join(outcome.problems)}\nstderr: {outcome.stderr[-2000:]}"


EMPTY = [  # an empty value must not mean "any" (cases() drops empty arguments, so these stand apart)
    Case("serve on an empty host", ("serve", "--port", "8391", "--host", "")),  # it listened on every interface
    Case("spend in an empty time zone", ("spend", "--tz", "")),  # it fell back to UTC without a word
    Case("keys create for no model", ("keys", "create", "--user", KNOWN, "--name", "k", "--models", "")),  # all models
]


@pytest.mark.parametrize("case", EMPTY, ids=[c.label for c in EMPTY])
def test_an_empty_value_is_refused_not_widened(
    case: Case, cli_db: tuple[RowCounter, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts, folder = cli_db
    monkeypatch.setenv("ANALYTICS_PATH", str(folder / "analytics.duckdb"))
    outcome = try_case(case, counts)
    assert outcome.clean, f"{'; '.join(outcome.problems)}\nstderr: {outcome.stderr[-2000:]}"


def test_the_cases_cover_every_subcommand() -> None:
    from core.cli import build_parser

    def leaves(parser: object, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]  # type: ignore[attr-defined]
        if not subs:
            yield prefix
        for action in subs:
            for name, sub in action.choices.items():
                yield from leaves(sub, (*prefix, name))

    tried = {c.argv[: len(c.argv)] for c in CASES}
    untried = [
        " ".join(leaf)
        for leaf in leaves(build_parser(), ())
        if not any(argv[: len(leaf)] == leaf for argv in tried)
        and leaf not in (("init",), ("users", "list"), ("endpoints", "list"), ("endpoints", "hardware"))
        and leaf
        not in (
            ("ledger", "check"),
            ("ledger", "spool"),
            ("spend", "sync"),
            ("access",),
            ("teams", "list"),
            ("budgets", "list"),
        )
        and leaf not in (("alerts", "run"), ("alerts", "webhooks", "list"), ("keys", "list"), ("keys", "demo"))
    ]
    # the commands left out take no value that can be malformed (flags only), apart from --as, tried on its own
    assert untried == []


def test_help_still_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(("users", "add", "--help"))
    assert code == 0 and out.startswith("usage: python -m core users add") and err == ""


def test_an_unreachable_database_is_one_line_on_every_command(tmp_path: Path) -> None:
    with environment("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", tmp_path):
        for argv in (("users", "list"), ("credits", "balance", "--user", KNOWN), ("spend", "sync"), ("init",)):
            code, out, err = run_cli(argv)
            assert (code, out, len(err.splitlines())) == (2, "", 1), (argv, err)
            assert err.startswith("error: Cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/")


def test_a_database_that_is_not_there_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "app.db"
    with environment(f"sqlite:///{missing}", tmp_path):
        for argv in (("users", "list"), ("credits", "balance", "--user", KNOWN), ("serve",)):
            code, out, err = run_cli(argv)
            assert (code, out) == (2, "") and err == (
                f"error: No database at {missing}: run `python -m core init` to create it, or set DATABASE_URL to the "
                "database you meant.\n"
            ), argv
    assert not missing.parent.exists()  # no empty database left behind for the next command to trip over


def test_a_database_never_initialised_says_to_run_init(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with environment(f"sqlite:///{empty}", tmp_path):
        code, out, err = run_cli(("users", "list"))
    assert (code, out, len(err.splitlines())) == (2, "", 1)
    assert err.startswith(f"error: The database at sqlite:///{empty} is not set up (no such table: users): run `python")


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with environment(f"sqlite:///{tmp_path / 'app.db'}", tmp_path), socket.create_server(("127.0.0.1", 0)) as taken:
        assert run_cli(("init",))[0] == 0
        port = taken.getsockname()[1]
        code, out, err = run_cli(("serve", "--port", str(port)))
    assert (code, out) == (2, "") and err == (
        f"error: Port {port} on 127.0.0.1 is already in use: stop what listens there or pick another with --port.\n"
    )


def _cli(folder: Path, *args: bytes, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
        "ANALYTICS_PATH": str(folder / "analytics.duckdb"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"core", *args], cwd=ROOT, env=env, capture_output=True, timeout=60, **kwargs
    )


def test_invalid_utf8_in_argv_is_one_line(tmp_path: Path) -> None:
    assert _cli(tmp_path, b"init").returncode == 0
    done = _cli(tmp_path, b"users", b"add", b"--email", b"a@x.io", b"--role", b"pm", b"--name", b"\xff\xfe")
    lines = done.stderr.decode("utf-8", "replace").splitlines()
    assert (done.returncode, done.stdout, len(lines)) == (2, b"", 1), done.stderr
    assert "--name" in lines[0] and "not valid UTF-8" in lines[0]
    listed = _cli(tmp_path, b"users", b"list", b"--json")
    assert listed.stdout.strip() == b"[]"  # nothing was written


class _Failing(io.RawIOBase):
    """stdout every write to which raises `error`: a reader that went away (`users list | head -1` after head exits:
    EPIPE), a full disk (ENOSPC)."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise self.error


def test_a_reader_that_closes_the_pipe_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    with environment(f"sqlite:///{tmp_path / 'app.db'}", tmp_path):
        assert run_cli(("init",))[0] == 0
        monkeypatch.setattr(
            sys, "stdout", io.TextIOWrapper(_Failing(BrokenPipeError(32, "Broken pipe")), write_through=True)
        )
        monkeypatch.setattr(sys, "stderr", err)
        code = main(["users", "list"])
    assert (code, err.getvalue()) == (0, "")


def test_a_full_disk_is_one_line_saying_so_not_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    with environment(f"sqlite:///{tmp_path / 'app.db'}", tmp_path):
        assert run_cli(("init",))[0] == 0
        monkeypatch.setattr(
            sys, "stdout", io.TextIOWrapper(_Failing(OSError(28, "No space left on device")), write_through=True)
        )
        monkeypatch.setattr(sys, "stderr", err)
        code = main(["users", "list"])
    assert code == 1
    assert err.getvalue() == (
        "error: the output could not be written (No space left on device); free some space and run it again\n"
    )
