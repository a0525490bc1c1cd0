"""`python -m core optimize` and `python -m core pricing whatif`: JSON with exact decimals, readable tables, one-line
errors with exit code 2."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.cli import main
from core.db import Database
from tests.core.optimize.history import DAYS, START, model, steady, synced, user, write_usage

SINCE, UNTIL = START.date().isoformat(), (START.date().replace(day=START.day + DAYS - 1)).isoformat()


@pytest.fixture
def cli_env(sqlite_runtime: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    rt = sqlite_runtime
    who = user(rt, markup="100")
    write_usage(rt, who, model(rt, "suno/bark"), steady(200), "0.01", cost_credits=2)  # 1 base credit, 2 at 100%
    synced(rt)
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(rt.settings.analytics_path))
    monkeypatch.setenv("REPORTING_TZ", "UTC")
    return rt


def test_optimize_json_and_table(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", "--since", SINCE, "--until", UNTIL, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [opp] = out["opportunities"]
    assert opp["kind"] == "dedicated" and opp["monthly_saving_usd"] == "1022.00"
    assert opp["endpoint_form"]["hardware"] == "T4" and out["monthly_saving_usd"] == "1022.00"
    assert main(["optimize", "--since", SINCE, "--until", UNTIL, "--no-sync"]) == 0
    text = capsys.readouterr().out
    assert "$  1,022.00/month  dedicated" in text and "create an always-on T4 endpoint" in text


def test_pricing_whatif_json(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pricing", "whatif", "--since", SINCE, "--until", UNTIL, "--json"]
    assert main([*args, "--markup", "80", "--credit-usd", "0.005", "--rounding", "per_call"]) == 0
    out = json.loads(capsys.readouterr().out)
    # $0.01 at $0.005 a credit = 2 base credits, x 1.8 = 3.6 -> 4 credits ($0.02) a request
    requests = 200 * 24 * DAYS
    assert out["billed"]["credits"] == 2 * requests and out["what_if"]["credits"] == 4 * requests
    assert Decimal(out["what_if"]["revenue_usd"]) == Decimal("0.02") * requests
    assert out["scenario"] == {"markup_pct": "80", "user_markups": {}, "credit_usd": "0.005", "rounding": "per_call"}
    assert out["users_paying_less"] == 1 and out["by_model"][0]["model"] == "suno/bark"  # $0.02 instead of $0.08


def test_pricing_whatif_table_and_errors(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "whatif", "--since", SINCE, "--until", UNTIL, "--user-markup", "ana@example.com=0"]) == 0
    text = capsys.readouterr().out
    assert "rounding uplift" in text and "ana@example.com" in text and "0 people pay more, 1 pay less" in text
    assert main(["pricing", "whatif", "--markup", "2000"]) == 2
    assert "Markup must be between 0% and 1000%" in capsys.readouterr().err
    assert main(["pricing", "whatif", "--user-markup", "who@example.com=5", "--since", SINCE]) == 2
    assert "No user 'who@example.com'" in capsys.readouterr().err
    assert main(["optimize", "--since", "2999-01-01"]) == 2
    assert "is before --since 2999-01-01" in capsys.readouterr().err
