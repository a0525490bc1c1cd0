"""`python -m core teams|budgets|alerts ...` and `spend --by team`, end to end on a temporary SQLite database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.billing import BillingService
from core.cli import main
from core.db import Database
from tests.conftest import make_runtime
from tests.core.billing.conftest import catalog_model
from tests.core.budgets.conftest import spend_one


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOW_BALANCE_CREDITS", "0")
    runtime = make_runtime(url, tmp_path)
    for name in ("ana", "ben", "cy"):
        assert (
            main(["users", "add", "--email", f"{name}@example.com", "--name", name, "--role", "pm", "--markup", "0"])
            == 0
        )
        BillingService(runtime.session_factory, runtime.settings).grant(f"{name}@example.com", 1000)
    return runtime


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_teams_and_budgets_from_the_command_line(rt: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "teams", "add", "research", "--owner", "ana@example.com", "--member", "ana@example.com")
    assert code == 0 and "added team 'research' (1 member, owner ana@example.com)" in out
    code, out, _ = run(capsys, "teams", "members", "research", "--add", "ben@example.com", "--json")
    assert code == 0 and [m["email"] for m in json.loads(out)] == ["ana@example.com", "ben@example.com"]
    code, out, _ = run(capsys, "teams", "list", "--json")
    assert [(t["name"], t["owner"], t["members"]) for t in json.loads(out)] == [("research", "ana@example.com", 2)]

    code, out, _ = run(capsys, "budgets", "set", "--team", "research", "--credits", "3", "--thresholds", "50,100")
    assert code == 0 and "budget 1 'team research': hard monthly limit of 3 credits on team research" in out
    code, out, _ = run(capsys, "budgets", "set", "--user", "cy@example.com", "--credits", "500", "--once", "--soft")
    assert code == 0 and "soft once limit of 500 credits" in out
    billing = BillingService(rt.session_factory, rt.settings)
    model = catalog_model(rt, "gpt-4o")
    for i in range(3):
        spend_one(billing, model, 1 + i % 2, f"c{i}")  # ana, ben, ana
    code, out, _ = run(capsys, "budgets", "list", "--json")
    team = json.loads(out)[0]
    assert (team["spent"], team["left"], team["used_pct"], team["thresholds"]) == (3, 0, 100.0, [50, 100])
    code, out, _ = run(capsys, "budgets", "list", "--user", "ben@example.com")
    assert code == 0 and "team research" in out and "cy@example.com" not in out

    code, out, _ = run(capsys, "alerts", "run", "--no-anomalies", "--json")
    report = json.loads(out)
    # 3 of 3 spent before any run: 50% and 100% passed at once, one alert that says both
    assert code == 0 and [a["kind"] for a in report["alerts"]] == ["threshold"]
    assert "(passing 50% and 100% at once)" in report["alerts"][0]["message"]
    assert report["delivery"] == {"delivered": 0, "failed": 0, "requeued": 0}
    assert report["notes"] == ["spend anomalies not checked: skipped as asked"]  # not "no analytics store given"
    code, out, _ = run(capsys, "alerts", "run", "--no-anomalies")
    assert code == 0 and "0 new alert(s)" in out
    code, out, _ = run(capsys, "alerts", "list", "--user", "ben@example.com", "--json")
    assert [a["threshold_pct"] for a in json.loads(out)] == [100]

    code, out, _ = run(capsys, "budgets", "remove", "1")
    assert code == 0 and "removed budget 1 'team research'" in out
    code, out, _ = run(capsys, "budgets", "list", "--json")
    assert [b["covers"] for b in json.loads(out)] == ["cy@example.com"]
    code, out, _ = run(capsys, "budgets", "list", "--all")  # removed ones too: marked, never read as in force
    header, _rule, *lines = out.splitlines()
    assert code == 0 and header.split()[-2:] == ["removed_at", "(UTC)"]
    stamped = {line.split()[0]: re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*$", line) is not None for line in lines}
    assert stamped == {"1": True, "2": False}  # research's, removed; cy's, in force


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["budgets", "set", "--team", "nope", "--credits", "5"], "No team 'nope'"),
        (["budgets", "set", "--user", "ana@example.com", "--credits", "5", "--since", "2026-12-01"], "one-off"),
        (["budgets", "set", "--user", "ana@example.com", "--credits", "5", "--thresholds", "0"], "1 to 1000"),
        (["budgets", "remove", "99"], "No budget 99"),
        (["teams", "members", "nope", "--add", "ana@example.com"], "No team 'nope'"),
        (["alerts", "webhooks", "add", "--name", "x", "--url", "ftp://x"], "https://"),
    ],
)
def test_mistakes_print_one_line_and_exit_2(
    rt: Database, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_webhooks_show_the_secret_once(rt: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "alerts", "webhooks", "add", "--name", "finance", "--url", "https://hooks.example.com/T0/SECRET-PATH"
    )
    secret = out.split("signing secret (shown once; the receiver checks X-AI-Credits-Signature with it): ")[1].strip()
    assert code == 0 and secret.startswith("whsec_") and "hooks.example.com" in out and "SECRET-PATH" not in out
    code, out, _ = run(capsys, "alerts", "webhooks", "list", "--json")
    (hook,) = json.loads(out)
    assert hook["host"] == "hooks.example.com" and secret not in out and "SECRET-PATH" not in out
    code, out, _ = run(capsys, "alerts", "webhooks", "remove", "finance")
    assert code == 0


def test_spend_by_team(rt: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teams", "add", "red", "--member", "ana@example.com"]) == 0
    assert main(["teams", "add", "blue", "--member", "ben@example.com"]) == 0
    billing = BillingService(rt.session_factory, rt.settings)
    model = catalog_model(rt, "gpt-4o")
    for i, uid in enumerate((1, 1, 1, 2, 3, 3)):  # ana 3, ben 1, cy (no team) 2
        spend_one(billing, model, uid, f"c{i}")
    code, out, _ = run(capsys, "spend", "--by", "team", "--json")
    assert code == 0
    assert [(r["key"], r["credits"]) for r in json.loads(out)] == [("red", 3), ("(no team)", 2), ("blue", 1)]
    assert main(["teams", "members", "blue", "--add", "ana@example.com"]) == 0  # her history moves with her
    spend_one(billing, model, 3, "c7")  # the store copies the teams again when it copies new rows
    assert main(["spend", "sync"]) == 0
    code, out, _ = run(capsys, "spend", "--by", "team", "--json")
    assert [(r["key"], r["credits"]) for r in json.loads(out)] == [("blue", 4), ("(no team)", 3)]


def test_a_move_between_teams_is_said_and_adding_and_removing_one_person_is_refused(
    rt: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "teams", "add", "research", "--member", "ana@example.com")[0] == 0
    code, out, _ = run(capsys, "teams", "add", "design", "--member", "ana@example.com")
    assert code == 0 and "moved ana@example.com out of team 'research' (a person is in one team at most)" in out
    code, out, _ = run(capsys, "teams", "members", "research", "--add", "ana@example.com")
    assert code == 0 and "moved ana@example.com out of team 'design'" in out
    code, out, err = run(
        capsys, "teams", "members", "research", "--add", "ben@example.com", "--remove", "BEN@example.com"
    )
    assert code == 2 and err.strip() == "error: ben@example.com is both added and removed; say which."
