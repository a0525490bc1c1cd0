"""`python -m core keys create|list|revoke` end to end on a temporary SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import make_runtime


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm"]) == 0
    return url


def test_create_list_revoke(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    argv = ["keys", "create", "--user", "ana@example.com", "--name", "ci", "--rpm", "60", "--models", "sandbox-chat"]
    assert main([*argv, "--monthly-credits", "500", "--expires", "2099-01-01"]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("sk-ac-") and "not shown again" in out.err
    assert main(["keys", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["prefix"], r["status"], r["rpm"], r["monthly_credits"], r["models"]) for r in rows] == [
        (secret[:12], "active", 60, 500, "sandbox-chat")
    ]
    assert secret not in json.dumps(rows)
    assert main(["--as", "ana@example.com", "keys", "revoke", secret[:12], "--user", "ana@example.com"]) == 0
    assert "revoked key 1" in capsys.readouterr().out
    assert main(["keys", "revoke", secret[:12], "--user", "ana@example.com"]) == 0  # again: nothing changes
    again = capsys.readouterr().out
    assert "was already revoked on 20" in again and "revoked key" not in again
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_mistakes_print_one_line(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["keys", "create", "--user", "ana@example.com", "--name", "x", "--models", "gpt-17"]) == 2
    assert capsys.readouterr().err.startswith("error: Unknown model 'gpt-17'")
    assert main(["keys", "revoke", "sk-ac-nothing", "--user", "ana@example.com"]) == 2
    assert "No API key" in capsys.readouterr().err


def test_demo_key_replaces_the_previous_one(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "add", "--email", "boss@example.com", "--name", "Boss", "--role", "admin"]) == 0
    capsys.readouterr()
    assert main(["keys", "demo"]) == 0
    first = capsys.readouterr().out.split()[-1]
    assert main(["keys", "demo"]) == 0
    second = capsys.readouterr().out.split()[-1]
    assert first != second and second.startswith("sk-ac-")
    assert main(["keys", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["owner"], r["status"]) for r in rows] == [
        ("boss@example.com", "active"),
        ("boss@example.com", "revoked"),
    ]
    # as a PM (who may make only their own keys): their own demo key; it said "No admin to own the demo key"
    assert main(["--as", "ana@example.com", "keys", "demo"]) == 0
    assert capsys.readouterr().out.startswith("demo API key for ana@example.com")
