"""The command line: help everywhere, JSON where it prints data, one clear line and exit 2 on mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert p.format_help(), name


def test_init_users_models(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and "40 models added" in out  # 27 in the file + 13 generated sandbox twins
    code, out, _ = run(capsys, "init")
    assert code == 0 and "unchanged" in out
    code, out, _ = run(
        capsys,
        "users",
        "add",
        "--email",
        "Ana@Example.com",
        "--name",
        "Ana",
        "--role",
        "pm",
        "--markup",
        "50",
        "--json",
    )
    assert code == 0 and json.loads(out)["email"] == "ana@example.com"
    code, out, _ = run(capsys, "users", "list", "--json")
    (user,) = json.loads(out)
    assert user["role"] == "pm" and user["developer_markup_pct"] == "50.0000" and user["credit_balance"] == 0
    code, out, _ = run(capsys, "models", "list", "--category", "chat", "--provider", "openai", "--json")
    models = json.loads(out)
    assert {m["model_id"] for m in models} == {"gpt-4o", "gpt-4o-mini"}
    assert models[0]["input_per_1m_usd"] == "2.500000000"
    code, out, _ = run(capsys, "models", "list", "--provider", "huggingface_endpoint", "--json")
    hardware = {m["model_id"]: (m["hardware_type"], m["hardware_instance_type"]) for m in json.loads(out)}
    assert hardware["facebook/mms-tts-eng"] == ("T4", "nvidia-t4")
    code, out, _ = run(capsys, "models", "list", "--provider", "huggingface_endpoint")
    assert "T4 (nvidia-t4)" in out and "L4 (nvidia-l4)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "--email", "x@y.io", "--name", "X", "--role", "wizard"], "Unknown role 'wizard'"),
        (["users", "add", "--email", "not-an-email", "--name", "X", "--role", "pm"], "is not an email address"),
        (
            ["users", "add", "--email", "x@y.io", "--name", "X", "--role", "pm", "--markup", "2000"],
            "between 0% and 1000%",
        ),
    ],
)
def test_mistakes_print_one_line(db: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    main(["init"])
    capsys.readouterr()
    code, _out, err = run(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_duplicate_email(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init"])
    main(["users", "add", "--email", "a@b.io", "--name", "A", "--role", "pm"])
    capsys.readouterr()
    code, _, err = run(capsys, "users", "add", "--email", "a@b.io", "--name", "A", "--role", "pm")
    assert code == 2 and "already exists" in err


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_database_url_and_numbers(tmp_path: Path) -> None:
    r = cli("init", env={"DATABASE_URL": "mysql://x@localhost/db"})
    assert r.returncode == 2 and "scheme 'mysql' is not supported" in r.stderr and "Traceback" not in r.stderr
    r = cli("init", env={"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert r.returncode == 2 and r.stderr.startswith("error: Cannot reach the database") and r.stderr.count("\n") == 1
    r = cli("demo", "--rows", "ten", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert r.returncode == 2 and "'ten' is not a whole number" in r.stderr


def test_demo_command(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    r = cli("demo", "--rows", "2000", "--days", "10", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["usage_rows"] == 2000
    r = cli("demo", "--rows", "2000", "--if-empty", env=env)
    assert r.returncode == 0 and "already present" in r.stdout
    r = cli("demo", "--if-empty", "--json", env=env)  # it printed nothing at all, which no JSON reader takes
    assert r.returncode == 0 and json.loads(r.stdout) == {"written": False, "reason": "demo history already present"}


def test_free_text_prints_on_its_own_line_and_names_refuse_line_breaks(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A note is free text: the history table writes its control characters out (an escape sequence would recolour
    the terminal, a newline split the row). Team and webhook names refuse a newline, as user and key names do,
    instead of turning it into a space."""
    main(["init"])
    main(["users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm"])
    main(["credits", "grant", "--user", "ana@example.com", "--credits", "5", "--note", "red\x1b[31m\nnext\u202e"])
    capsys.readouterr()
    code, out, _ = run(capsys, "credits", "history", "--user", "ana@example.com")
    assert code == 0 and "red\\x1b[31m\\nnext\\u202e" in out
    assert "\x1b" not in out and "\u202e" not in out and len(out.splitlines()) == 3  # header, rule, one row
    code, out, _ = run(capsys, "credits", "history", "--user", "ana@example.com", "--json")
    assert json.loads(out)[0]["description"] == "red\x1b[31m\nnext\u202e"  # JSON keeps the text as it is
    for args in (
        ["teams", "add", "de\nsign"],
        ["alerts", "webhooks", "add", "--name", "fin\nance", "--url", "https://h.io/x"],
    ):
        code, out, err = run(capsys, *args)
        assert code == 2 and "control character ('\\n')" in err and err.count("\n") == 1 and out == ""
    code, out, _ = run(capsys, "teams", "add", "de  sign")  # spaces are still tidied
    assert code == 0 and "'de sign'" in out


def test_budget_and_markup_messages_read_right(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init"])
    main(["users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm"])
    capsys.readouterr()
    args = ["budgets", "set", "--user", "ana@example.com", "--credits", "300", "--once", "--since", "2026-12-01"]
    code, out, _ = run(capsys, *args)
    assert code == 0 and "0 spent since 2026-12-01, 300 left" in out
    code, out, _ = run(capsys, "budgets", "set", "--user", "ana@example.com", "--credits", "300")
    assert code == 0 and " spent in " in out and " spent in since" not in out
    add = ["users", "add", "--email", "ben@example.com", "--name", "Ben", "--role", "pm", "--markup"]
    code, _, err = run(capsys, *add, "1e5")
    assert code == 2 and "got 100000%" in err and "E+" not in err


def test_spend_as_a_pm_shows_own_spend_without_finances_figures(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--as` acts with exactly the person's rights: a PM's own spend as the Spend page shows it, never the provider
    cost, margin, markup or rounding uplift (finance's figures); the command line as itself still shows them."""
    main(["init"])
    main(["users", "add", "--email", "ben@example.com", "--name", "Ben", "--role", "pm"])
    main(["generate", "--user", "ben@example.com", "--model", "sandbox-chat", "--text", "Hello"])
    capsys.readouterr()
    pm = ["--as", "ben@example.com", "spend", "--include-sandbox"]
    code, out, _ = run(capsys, *pm, "--by", "model", "--json")
    (row,) = json.loads(out)
    assert code == 0 and set(row) == {"key", "requests", "credits", "revenue_usd", "cache_hits", "as_of"}
    code, out, _ = run(capsys, "spend", "--include-sandbox", "--by", "model", "--json")
    (seen,) = json.loads(out)
    assert {"base_cost_usd", "margin_usd", "effective_markup_pct", "rounding_uplift_usd"} <= set(seen)
    assert Decimal(seen["base_cost_usd"]) > 0 and seen["requests"] == row["requests"] == 1
    for by in ("model", "day"):
        code, out, _ = run(capsys, *pm, "--by", by)
        assert code == 0 and out.splitlines()[0].split()[1:] == ["requests", "credits", "revenue", "$"]
    code, out, _ = run(capsys, "--as", "ben@example.com", "spend", "forecast", "--json")
    forecast = json.loads(out)
    assert "revenue_forecast_usd" in forecast and not {"base_cost_to_date_usd", "margin_forecast_usd"} & set(forecast)
    code, out, _ = run(capsys, "--as", "ben@example.com", "spend", "forecast")
    assert "revenue to date" in out and "provider cost" not in out and "margin" not in out
    code, out, _ = run(capsys, "spend", "forecast")
    assert "provider cost" in out and "margin forecast" in out
