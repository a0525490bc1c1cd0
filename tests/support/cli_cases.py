"""Malformed command lines for every subcommand, and the judge of how the command line handles each.

A case is handled cleanly when `python -m core ...` exits 2, prints exactly one line on stderr, shows no traceback
and leaves every table's row count as it was. The table test (tests/core/cli/test_malformed.py) and
benchmarks/cli_hardening.py (the closing note's table) share this one list, so they cannot drift apart.
The commands run in-process (`core.cli.main`), with stdout and stderr captured: a subprocess per case would cost
~1 s of interpreter start each.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, func, literal, select, union_all

from core.cli import main

KNOWN = "ana@example.com"  # a pm with credits, seeded by `seed`
ADMIN = "root@example.com"
HUGE = "1" + "0" * 30
LONG = "x" * 10_000
INJECTION = "x'; DROP TABLE users; --"
UNICODE = "ünï©ødé-😀@exämple.com"
BAD_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")  # what Python puts in argv for invalid UTF-8
NOT_A_FILE = "/nonexistent/folder/file.wav"
UNWRITABLE = "/proc/forbidden/out.wav"
INTS = ("-1", "0", HUGE, "abc", "1.5")
IDENTS = ("nobody@x.io", INJECTION, UNICODE, LONG, BAD_UTF8)
DATES = ("2026-02-30", "0001-01-01", "9999-12-31", "yesterday")


@dataclass(frozen=True)
class Case:
    label: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()  # settings this case changes (e.g. the endpoints API off the stand-in)


def _ints(base: tuple[str, ...], option: str, values: tuple[str, ...] = INTS) -> list[Case]:
    return [Case(f"{' '.join(base[:2])} {option} {v[:12]}", (*base, option, v)) for v in values]


def _idents(base: tuple[str, ...], option: str | None, values: tuple[str, ...] = IDENTS) -> list[Case]:
    where = option or "NAME"
    return [
        Case(f"{' '.join(base[:2])} {where} {v[:12]!r}", (*base, *((option,) if option else ()), v)) for v in values
    ]


def _dates(base: tuple[str, ...], option: str) -> list[Case]:
    return [Case(f"{' '.join(base[:2])} {option} {v}", (*base, option, v)) for v in DATES]


def cases() -> list[Case]:
    out: list[Case] = [
        Case("no command", ()),
        Case("unknown command", ("frobnicate",)),
        Case("unknown option", ("users", "list", "--frob")),
        Case("missing required", ("users", "add")),
        Case("bad choice", ("users", "list", "--role", "king")),
        *(
            Case(f"--as {v[:12]!r}", ("--as", v, "users", "list"))
            for v in ("nobody@x.io", "", " ", INJECTION, BAD_UTF8)
        ),
    ]
    # demo: bounded before anything is written
    out += _ints(("demo",), "--rows", ("-1", "0", HUGE, "1000000000000", "abc"))
    out += _ints(("demo",), "--days", ("-1", "0", "10000000", HUGE))
    out += _ints(("demo",), "--seed", ("-1", HUGE, "abc"))
    out += [
        Case(
            "demo with endpoints off the stand-in",
            ("demo", "--rows", "10", "--with-endpoints"),
            env=(("HF_ENDPOINTS_API_URL", "https://api.endpoints.huggingface.cloud/v2"),),
        ),
        Case("demo keep and wipe at once", ("demo", "--rows", "10", "--if-empty", "--replace")),
    ]
    # users
    add = ("users", "add", "--role", "pm")
    out += [
        Case("users add bad email", (*add, "--email", "not-an-email", "--name", "N")),
        Case("users add long email", (*add, "--email", LONG + "@x.io", "--name", "N")),
        Case("users add long name", (*add, "--email", "new@x.io", "--name", LONG)),
        Case("users add bad utf-8 name", (*add, "--email", "new@x.io", "--name", BAD_UTF8)),
        Case("users add bad utf-8 email", (*add, "--email", BAD_UTF8 + "@x.io", "--name", "N")),
        Case("users add name on two lines", (*add, "--email", "new@x.io", "--name", "An\nna")),
        Case("users add unicode line separator", (*add, "--email", "new@x.io", "--name", "Z\u2028Y")),
        Case("users add invisible name", (*add, "--email", "new@x.io", "--name", "\u200b")),
        Case("users add doubled dot email", (*add, "--email", "z..z@x.io", "--name", "N")),
        Case("users add duplicate", (*add, "--email", KNOWN, "--name", "Ana again")),
        Case("users add markup with _", (*add, "--email", "new@x.io", "--name", "N", "--markup", "1_0")),
        # an option given twice kept its last value without a word (with --as: the rights of the last person)
        Case(
            "users add markup twice", (*add, "--email", "new@x.io", "--name", "N", "--markup", "100", "--markup", "50")
        ),
        Case("acting as two people", ("--as", KNOWN, "--as", ADMIN, "users", "list")),
        Case("balance of two users", ("credits", "balance", f"--user={KNOWN}", f"--user={ADMIN}")),
        Case("users add markup in other digits", (*add, "--email", "new@x.io", "--name", "N", "--markup", "١٠")),
        Case("users add bad role", ("users", "add", "--role", "king", "--email", "new@x.io", "--name", "N")),
        Case("users add markup tiny", (*add, "--email", "new@x.io", "--name", "N", "--markup", "0.000001")),
        Case("users add markup huge", (*add, "--email", "new@x.io", "--name", "N", "--markup", "1e400")),
        Case("users add markup negative", (*add, "--email", "new@x.io", "--name", "N", "--markup", "-5")),
        Case("users add markup NaN", (*add, "--email", "new@x.io", "--name", "N", "--markup", "NaN")),
    ]
    # models
    out += [Case("models list bad category", ("models", "list", "--category", "bogus"))]
    out += _idents(("models", "list", "--provider"), None, ("bogus", BAD_UTF8))
    # credits
    out += _idents(("credits", "balance", "--user"), None, (*IDENTS, HUGE, "-1"))
    out += _idents(("credits", "history", "--user"), None, ("nobody@x.io", BAD_UTF8))
    out += _ints(("credits", "history", "--user", KNOWN), "--limit")
    out += _ints(("credits", "grant", "--user", KNOWN), "--credits", (HUGE, "abc", "1.5", "0", "1,5", "1,0,0"))
    out += _idents(("credits", "grant", "--credits", "5", "--user"), None)
    out += [
        Case(
            "credits grant bad utf-8 note", ("credits", "grant", "--user", KNOWN, "--credits", "5", "--note", BAD_UTF8)
        ),
        Case(
            "credits grant long idempotency key",
            ("credits", "grant", "--user", KNOWN, "--credits", "5", "--idempotency-key", LONG),
        ),
        Case(
            "credits grant bad utf-8 idempotency key",
            ("credits", "grant", "--user", KNOWN, "--credits", "5", "--idempotency-key", BAD_UTF8),
        ),
        Case("credits grant negative grant", ("credits", "grant", "--user", KNOWN, "--credits", "-5")),
        Case("credits grant scientific", ("credits", "grant", "--user", KNOWN, "--credits", "1e5")),
        Case("credits grant fullwidth digits", ("credits", "grant", "--user", KNOWN, "--credits", "１２")),
        Case("credits grant arabic-indic digits", ("credits", "grant", "--user", KNOWN, "--credits", "٣٠٠")),
    ]
    out += _ints(("credits", "refund", "--reason", "r"), "--transaction")
    out += [
        Case("credits refund unknown", ("credits", "refund", "--transaction", "999999", "--reason", "r")),
        Case("credits refund bad utf-8 reason", ("credits", "refund", "--transaction", "1", "--reason", BAD_UTF8)),
    ]
    out += _ints(("ledger", "disputed"), "--limit")
    out += _dates(("ledger", "disputed"), "--since")
    out += _idents(("ledger", "disputed", "--user"), None, ("nobody@x.io", BAD_UTF8))
    # generate: refused before any credit is held or any upstream called
    gen = ("generate", "--user", KNOWN, "--model", "sandbox-chat")
    out += _ints((*gen, "--text", "hi"), "--max-tokens")
    out += _idents(("generate", "--model", "sandbox-chat", "--text", "hi", "--user"), None)
    out += _idents(("generate", "--user", KNOWN, "--text", "hi", "--model"), None, ("bogus-model", INJECTION, BAD_UTF8))
    out += [
        Case("generate bad utf-8 text", (*gen, "--text", BAD_UTF8)),
        Case("generate empty text", (*gen, "--text", " \n ")),
        Case("generate missing file", (*gen, "--file", NOT_A_FILE)),
        Case("generate text and file", (*gen, "--text", "hi", "--file", NOT_A_FILE)),
        Case(
            "generate unwritable out",
            ("generate", "--user", KNOWN, "--model", "sandbox-tts", "--text", "hi", "--out", UNWRITABLE),
        ),
    ]
    # endpoints (the local stand-in)
    for action in ("show", "pause", "resume", "scale-to-zero", "refresh", "delete"):
        out += _idents(("endpoints", action), None, ("no-such-endpoint", BAD_UTF8))
    ep = ("endpoints", "create", "--model", "sandbox-chat", "--hardware", "T4", "--owner", KNOWN, "--name")
    out += [
        Case("endpoints create long name", (*ep, LONG)),
        Case("endpoints create bad utf-8 name", (*ep, BAD_UTF8)),
        Case("endpoints create injection name", (*ep, INJECTION)),
    ]
    out += _ints((*ep, "ok-name"), "--max-replicas", ("-1", "0", HUGE, "abc"))
    out += _ints((*ep, "ok-name"), "--min-replicas", ("-1", HUGE, "abc"))
    out += _ints(("endpoints", "wait", "no-such-endpoint"), "--timeout", ("-1", "0", HUGE))
    out += _ints(("endpoints", "demo"), "--days", ("-1", "0", "32", HUGE))
    out += [Case("endpoints meter bad until", ("endpoints", "meter", "--until", "2026-13-45"))]
    # breakeven
    out += _ints(("breakeven",), "--requests-per-hour", ("-1", "abc", "1e400", "nan", "inf", "1e18", "1e300"))
    out += _ints(("breakeven", "--requests-per-hour", "10"), "--hours", ("-1", "0", "1e400", "nan"))
    out += _ints(("breakeven", "--requests-per-hour", "10"), "--seed", ("-1", HUGE))
    out += _ints(("breakeven", "--requests-per-hour", "10"), "--max-replicas", ("0", HUGE))
    out += _ints(("breakeven", "--requests-per-hour", "10"), "--scale-to-zero-minutes", ("0", HUGE))
    out += [Case("breakeven unknown model", ("breakeven", "--model", "bogus", "--requests-per-hour", "10"))]
    out += [
        Case(
            "breakeven compute seconds without a price per second",  # it was ignored without a word
            ("breakeven", "--requests-per-hour", "60", "--compute-seconds-per-request", "2"),
        )
    ]
    out += [  # finite but past anything real: the monthly cents overflowed (exit 1, "a bug")
        Case("breakeven huge cold start", ("breakeven", "--requests-per-hour", "60", "--cold-start-seconds", "1e30")),
        Case(
            "breakeven huge compute per request",
            (
                "breakeven",
                "--requests-per-hour",
                "60",
                "--serverless-cost-per-second",
                "1",
                "--compute-seconds-per-request",
                "1e30",
            ),
        ),
    ]
    # spend
    out += _dates(("spend",), "--since")
    out += [
        Case("spend whole calendar", ("spend", "--since", "0001-01-01", "--until", "9999-12-31")),
        Case("spend until before since", ("spend", "--since", "2026-05-01", "--until", "2026-04-01")),
        Case("spend unknown tz", ("spend", "--tz", "Mars/Olympus")),
        Case("spend system file as tz", ("spend", "--tz", "localtime")),  # Python opens it, DuckDB refuses it
        Case("spend posix tz", ("spend", "--tz", "posix/Europe/Paris")),
        Case("spend unknown user", ("spend", "--user", "nobody@x.io")),
        Case("spend unknown category", ("spend", "--category", "bogus")),
        Case("spend unknown model", ("spend", "--model", "bogus-model")),
        Case("spend unknown provider", ("spend", "--provider", "bogus")),
        Case("spend bad utf-8 user", ("spend", "--user", BAD_UTF8)),
    ]
    out += _ints(("spend",), "--top")
    out += _ints(("spend",), "--last-days", ("-1", "0", HUGE, "1000000000"))
    out += _ints(("spend",), "--api-key", ("-1", "0", HUGE))
    out += _ints(("spend", "anomalies"), "--days", ("-1", "0", "1000000000", HUGE))
    out += [Case("spend forecast unknown user", ("spend", "forecast", "--user", "nobody@x.io"))]
    # optimize, pricing
    out += _dates(("optimize",), "--since")
    out += [Case("optimize whole calendar", ("optimize", "--since", "0001-01-01", "--until", "9999-12-31"))]
    out += _ints(("pricing", "whatif"), "--top", ("-1", "0", HUGE))
    out += _ints(("pricing", "whatif"), "--markup", ("-5", "1e400", "NaN", "0.000001"))
    out += _ints(("pricing", "whatif"), "--credit-usd", ("-1", "0", "1e400"))
    out += [Case("pricing whatif unknown user", ("pricing", "whatif", "--user-markup", "nobody@x.io=50"))]
    # teams
    out += [
        Case("teams add long name", ("teams", "add", LONG)),
        Case("teams add bad utf-8 name", ("teams", "add", BAD_UTF8)),
        Case("teams add escape sequence", ("teams", "add", "t\x1b[31m")),
        Case("teams add unknown owner", ("teams", "add", "t1", "--owner", "nobody@x.io")),
        Case("teams add unknown member", ("teams", "add", "t1", "--member", "nobody@x.io")),
    ]
    out += _idents(("teams", "members"), None, ("no-such-team", BAD_UTF8))
    # budgets
    out += _ints(("budgets", "set", "--user", KNOWN), "--credits")
    out += _idents(("budgets", "set", "--credits", "10", "--user"), None, ("nobody@x.io", BAD_UTF8))
    out += _ints(("budgets", "set", "--credits", "10"), "--key", ("-1", HUGE, "999999"))
    out += [
        Case("budgets set bad thresholds", ("budgets", "set", "--user", KNOWN, "--credits", "10", "--thresholds", "x")),
        Case(
            "budgets set an empty threshold",
            ("budgets", "set", "--user", KNOWN, "--credits", "10", "--thresholds", "50,,80"),
        ),
        Case("budgets set long name", ("budgets", "set", "--user", KNOWN, "--credits", "10", "--name", LONG)),
        Case(
            "budgets set escape sequence", ("budgets", "set", "--user", KNOWN, "--credits", "10", "--name", "b\x1b[2J")
        ),
        Case("budgets set unknown team", ("budgets", "set", "--team", "no-such-team", "--credits", "10")),
    ]
    out += _ints(("budgets", "remove"), "", ("-1", "0", HUGE, "999999"))
    # alerts
    out += _ints(("alerts", "list"), "--limit")
    out += _ints(("alerts", "deliveries"), "--limit")
    out += [
        Case("alerts webhooks add bad url", ("alerts", "webhooks", "add", "--name", "w", "--url", "not a url")),
        Case("alerts webhooks add long name", ("alerts", "webhooks", "add", "--name", LONG, "--url", "https://x.io")),
        Case(
            "alerts webhooks add escape sequence",
            ("alerts", "webhooks", "add", "--name", "w\x1b[31m", "--url", "https://x.io"),
        ),
        Case("alerts webhooks remove unknown", ("alerts", "webhooks", "remove", "no-such-hook")),
    ]
    # keys
    kc = ("keys", "create", "--user", KNOWN, "--name")
    out += [
        Case("keys create long name", (*kc, LONG)),
        Case("keys create bad utf-8 name", (*kc, BAD_UTF8)),
        Case("keys create escape sequence", (*kc, "k\x1b[2J")),
        Case("keys create past expiry", (*kc, "k", "--expires", "2001-01-01")),
        Case("keys create impossible expiry", (*kc, "k", "--expires", "2026-02-30")),
        Case("keys revoke unknown", ("keys", "revoke", "no-such-key", "--user", KNOWN)),
        # an empty entry would have widened the key to every model
        Case("keys create empty model entry", (*kc, "k", "--models", "gpt-4o-mini,")),
        Case("keys create only a comma", (*kc, "k", "--models", ",")),
    ]
    out += _ints((*kc, "k"), "--monthly-credits", ("-1", "0", HUGE))
    out += _ints((*kc, "k"), "--rpm", ("-1", "0", HUGE))
    out += _idents(("keys", "create", "--name", "k", "--user"), None, ("nobody@x.io", BAD_UTF8))
    # serve: refused before any socket is opened
    out += _ints(("serve",), "--port", ("-1", "0", "65536", HUGE, "abc"))
    out += _ints(("serve",), "--workers", ("-1", "0", HUGE))
    # an address this machine cannot listen on (192.0.2.0/24 is reserved for documentation, never assigned)
    out += _idents(("serve", "--port", "8391", "--host"), None, ("192.0.2.1", "no-such-host.invalid", BAD_UTF8))
    # where the calls run: a choice, or a setting the gateway reads
    out += [
        Case("serve --routes unknown", ("serve", "--port", "8391", "--routes", "greenlets")),
        Case("serve GATEWAY_ROUTES unknown", ("serve", "--port", "8391"), env=(("GATEWAY_ROUTES", "fibers"),)),
    ]
    return [Case(c.label, tuple(a for a in c.argv if a != ""), c.env) for c in out]


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int
    stdout: str
    stderr: str
    counts_changed: tuple[str, ...]

    @property
    def problems(self) -> list[str]:
        found = []
        if self.code != 2:
            found.append(f"exit {self.code}")
        lines = self.stderr.splitlines()
        if len(lines) != 1:
            found.append(f"{len(lines)} lines on stderr")
        if "Traceback" in self.stderr:
            found.append("traceback")
        if self.counts_changed:
            found.append("wrote to " + ", ".join(self.counts_changed))
        return found

    @property
    def clean(self) -> bool:
        return not self.problems


class RowCounter:
    """Every table's row count in one query (the tables are read from the database once, not from the models: a
    table the models forgot is counted too)."""

    def __init__(self, engine: Engine) -> None:
        meta = MetaData()
        meta.reflect(engine)
        self.engine = engine
        self.names = [t.name for t in meta.sorted_tables]
        self.query = union_all(
            *(select(literal(t.name).label("t"), func.count().label("n")).select_from(t) for t in meta.sorted_tables)
        )

    def __call__(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: int(n) for name, n in conn.execute(self.query)}


@contextlib.contextmanager
def environment(database_url: str, folder: Path) -> Iterator[None]:
    """Point the command line at one database, a scratch analytics store and the offline endpoints stand-in."""
    saved = dict(os.environ)
    os.environ.update(
        DATABASE_URL=database_url,
        ANALYTICS_PATH=str(folder / "analytics.duckdb"),
        HF_ENDPOINTS_API_URL="local",
    )
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MINIMAX_API_KEY", "HF_TOKEN", "TOGETHER_API_KEY"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(argv: tuple[str, ...] | list[str]) -> tuple[int, str, str]:
    """`python -m core ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # an escaped exception is what a person would see as a traceback
            import traceback

            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()


def seed() -> None:
    """The database every case runs against: initialised, a pm with credits, an admin."""
    for argv in (
        ("init",),
        ("users", "add", "--email", KNOWN, "--name", "Ana", "--role", "pm"),
        ("users", "add", "--email", ADMIN, "--name", "Root", "--role", "admin"),
        ("credits", "grant", "--user", KNOWN, "--credits", "1000"),
    ):
        code, _, err = run_cli(argv)
        if code != 0:
            raise RuntimeError(f"seeding failed at {argv}: {err}")


def try_case(case: Case, counts: RowCounter) -> Outcome:
    before = counts()
    saved = {name: os.environ.get(name) for name, _ in case.env}
    os.environ.update(case.env)
    try:
        code, out, err = run_cli(case.argv)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    after = counts()
    changed = tuple(sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t)))
    return Outcome(case, code, out, err, changed)
