"""The per-user usage functions, the command line, and hostile filter values."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.analytics import SpendFilter, get_total_usage, get_usage_by_provider
from core.cli import main
from core.cli.spend_cmd import _usd
from core.errors import NotFoundError
from tests.core.analytics.conftest import END
from tests.core.analytics.history import reference_measures


def test_get_total_usage_and_by_provider_match_the_reference(synced) -> None:
    _rt, q, ref = synced
    user_id = int(ref["user_id"].iloc[0])
    window = ref[(ref["user_id"] == user_id) & (ref["ts"] >= END - timedelta(days=30)) & (ref["ts"] <= END)]
    want = reference_measures(window[~window["sandbox"]])
    got = get_total_usage(q, user_id, days=30, now=END)
    assert (got.user_id, got.days, got.requests, got.failed, got.credits) == (
        user_id,
        30,
        want["requests"],
        want["failed"],
        want["credits"],
    )
    assert got.base_cost_usd == want["base_cost_usd"] and got.cost_usd == want["revenue_usd"]
    assert got.as_of == q.as_of()

    email = q.options().users[0][0]
    by_provider = get_usage_by_provider(q, email.upper(), days=30, now=END)
    credits = [p.credits for p in by_provider]
    assert credits == sorted(credits, reverse=True)
    uid = q.find_user(email)
    rows = ref[(ref["user_id"] == uid) & (ref["ts"] >= END - timedelta(days=30)) & (ref["ts"] <= END) & ~ref["sandbox"]]
    assert {p.provider: p.credits for p in by_provider} == {
        k: reference_measures(g)["credits"] for k, g in rows.groupby("provider")
    }
    assert all(isinstance(p.cost_usd, Decimal) for p in by_provider)


def test_unknown_user_and_bad_days_are_refused(synced) -> None:
    _rt, q, _ref = synced
    with pytest.raises(NotFoundError, match="No user"):
        get_total_usage(q, "nobody@example.test")
    with pytest.raises(Exception, match="positive whole number"):
        get_total_usage(q, 1, days=0)


def test_hostile_filter_values_are_bound_not_spliced(synced) -> None:
    _rt, q, _ref = synced
    evil = "x' OR 1=1 --"
    f = SpendFilter(users=(evil,), models=(evil,), providers=("openai'); DROP TABLE users; --",), categories=(evil,))
    assert q.breakdown("user", f).frame.empty
    assert q.totals(SpendFilter(users=(evil,)))[0].requests == 0
    assert q.find_user(evil) is None
    assert len(q.options().users) > 0  # still there


@pytest.fixture
def cli_env(synced, monkeypatch: pytest.MonkeyPatch) -> Path:
    rt, _q, _ref = synced
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(rt.settings.analytics_path))
    monkeypatch.setenv("REPORTING_TZ", "Europe/Paris")
    return rt.settings.analytics_path


def test_cli_spend_by_json(cli_env: Path, synced, capsys: pytest.CaptureFixture[str]) -> None:
    _rt, q, _ref = synced
    assert main(["spend", "--by", "model", "--since", "2025-03-01", "--until", "2025-03-31", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and set(rows[0]) == {
        "key",
        "requests",
        "base_cost_usd",
        "credits",
        "revenue_usd",
        "margin_usd",
        "effective_markup_pct",
        "rounding_uplift_usd",  # the table's column: --json carries every figure the table shows
        "cache_hits",
        "cache_saving_usd",
        "as_of",
    }
    assert [r["credits"] for r in rows] == sorted((r["credits"] for r in rows), reverse=True)
    want = q.breakdown(
        "model",
        SpendFilter.dates(
            __import__("datetime").date(2025, 3, 1), __import__("datetime").date(2025, 3, 31), tz="Europe/Paris"
        ),
    ).frame
    assert [r["key"] for r in rows] == list(want["key"])
    assert [Decimal(r["base_cost_usd"]) for r in rows] == list(want["base_cost_usd"])
    assert [Decimal(r["cache_saving_usd"]) for r in rows] == list(want["cache_saving_usd"])
    assert sum(r["cache_hits"] for r in rows) == int(want["cache_hits"].sum()) > 0
    assert all(
        isinstance(r["revenue_usd"], str) and Decimal(r["revenue_usd"]) == Decimal(r["credits"]) * Decimal("0.04")
        for r in rows
    )


def test_cli_spend_table_shows_the_cache_saving_to_finance_only(
    cli_env: Path, synced, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table carries the cache saving --json and the Spend page show, in cents, for those who see finance's
    figures (the command line as itself); a PM's own spend has no such column, as it has no provider cost."""
    window = ["--by", "model", "--since", "2025-03-01", "--until", "2025-03-31"]
    assert main(["spend", *window, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["spend", *window]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    assert "cache saving $" in header
    start = header.index("cache saving $")
    shown = [line[start:].split()[0] for line in lines[2 : 2 + len(rows)]]
    assert shown == [_usd(Decimal(r["cache_saving_usd"])) for r in rows]
    assert any(Decimal(r["cache_saving_usd"]) > 0 for r in rows)
    assert main(["users", "add", "--email", "pm-x@example.com", "--name", "P", "--role", "pm"]) == 0
    capsys.readouterr()
    assert main(["--as", "pm-x@example.com", "spend", *window]) == 0
    assert "cache saving" not in capsys.readouterr().out


def test_cli_time_grouping_filters_and_errors(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spend", "--by", "week", "--provider", "openai", "--exclude-sandbox", "--json"]) == 0
    weeks = json.loads(capsys.readouterr().out)
    assert [w["key"] for w in weeks] == sorted(w["key"] for w in weeks)
    assert main(["spend", "--by", "day", "--tz", "Nowhere/Land"]) == 2
    assert "not a known time zone" in capsys.readouterr().err
    assert main(["spend", "--by", "user", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "as of" in out and "days in Europe/Paris" in out
    assert "effective markup %" in out.splitlines()[0]  # the Spend page's name: not the markup set per person


def test_cli_forecast_anomalies_and_sync(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spend", "forecast", "--json"]) == 0
    fc = json.loads(capsys.readouterr().out)
    assert {"revenue_forecast_usd", "revenue_low_usd", "revenue_high_usd", "as_of", "method"} <= set(fc)
    assert Decimal(fc["revenue_low_usd"]) <= Decimal(fc["revenue_forecast_usd"]) <= Decimal(fc["revenue_high_usd"])
    assert main(["spend", "anomalies", "--since", "2025-03-01", "--until", "2025-04-10", "--json"]) == 0
    an = json.loads(capsys.readouterr().out)
    assert set(an) == {"as_of", "tz", "anomalies"}
    assert main(["spend", "anomalies", "--since", "2025-03-01", "--until", "2025-04-10"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "revenue $" in table[0] and len(table) == len(an["anomalies"]) + 3 > 3  # header, rule, rows, as of
    for row, line in zip(an["anomalies"], table[2:], strict=False):  # dollars and cents, as every table prints them
        assert line.split()[3:6] == [f"{Decimal(row[k]):,.2f}" for k in ("revenue_usd", "baseline_usd", "excess_usd")]
    assert main(["spend", "sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] in {"none", "incremental"}


def test_table_dollars_print_cents_and_never_minus_zero() -> None:
    """A sandbox call's margin is minus its would-be cost: a fraction of a cent prints 0.00, not -0.00."""
    assert [_usd(Decimal(v)) for v in ("-0.000465", "-0.004999", "-0.0051", "1234.5", "0")] == [
        "0.00",
        "0.00",
        "-0.01",
        "1,234.50",
        "0.00",
    ]
