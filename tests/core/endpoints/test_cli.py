"""`python -m core endpoints ...` on the local stand-in (HF_ENDPOINTS_API_URL=local), state file beside the DB."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from core.cli import main
from core.db.models import utcnow
from core.services import hourly_text
from core.services.endpoints import EndpointService
from tests.core.endpoints.test_overview import three_half_cents


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    for var in ("HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGINGFACE_TOKEN", "HF_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["init"]) == 0
    assert main(["users", "add", "--email", "eng@example.com", "--name", "Eng", "--role", "engineer"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_show_pause_delete(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "endpoints", "create", "--name", "my-audio-model", "--model", "facebook/mms-tts-eng",
        "--hardware", "nvidia-t4", "--min-replicas", "0", "--max-replicas", "1", "--scale-to-zero-minutes", "15",
        "--owner", "eng@example.com", "--json",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert (created["state"], created["hardware_id"], created["hourly_usd"]) == ("pending", "T4", "0.60")
    assert (env / "cli.endpoints_local.json").exists()  # the stand-in's state sits beside its database

    code, out, _ = run(capsys, "endpoints", "list", "--json")
    listed = json.loads(out)
    assert [e["name"] for e in listed["endpoints"]] == ["my-audio-model"]
    assert listed["endpoints"][0]["usd_per_hour"] == "0.60"  # money, not "0.600000000"

    code, out, _ = run(capsys, "endpoints", "pause", "my-audio-model", "--json")
    assert code == 0 and json.loads(out)["state"] == "paused"

    code, out, _ = run(capsys, "endpoints", "show", "my-audio-model", "--json")
    shown = json.loads(out)
    assert [e["state"] for e in shown["events"]][-1] == "paused"

    code, _, err = run(capsys, "endpoints", "delete", "my-audio-model")
    assert code == 2 and "--yes" in err
    code, out, _ = run(capsys, "endpoints", "delete", "my-audio-model", "--yes", "--json")
    assert code == 0 and json.loads(out)["state"] == "deleted"

    code, out, _ = run(capsys, "endpoints", "meter", "--json")
    report = json.loads(out)
    assert code == 0 and report["hours_charged"] == 0  # under a minute of uptime, in an hour not yet complete


def test_mistakes_are_one_line_and_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "endpoints", "create", "--name", "Bad_Name", "--model", "a/b", "--hardware", "T4",
        "--owner", "eng@example.com",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "lowercase" in err
    code, _, err = run(capsys, "endpoints", "pause", "nope")
    assert code == 2 and "endpoints list" in err


def test_acting_as_an_engineer_without_owner_bills_the_engineer(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--as PERSON` without `--owner` makes that person the owner (as the README says); with neither, one line
    says which option names who pays."""
    ep = ("endpoints", "create", "--model", "facebook/mms-tts-eng", "--hardware", "T4", "--json", "--name")
    code, out, _ = run(capsys, "--as", "eng@example.com", *ep, "mine")
    assert code == 0 and json.loads(out)["owner_email"] == "eng@example.com"
    code, _, err = run(capsys, *ep, "nobodys")
    assert code == 2 and err.count("\n") == 1 and "--owner EMAIL" in err


def test_hardware_shows_our_price_and_the_live_one(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "endpoints", "hardware", "--json")
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)["hardware"]}
    assert (rows["A100"]["usd_per_hour"], rows["A100"]["hf_live_usd_per_hour"]) == ("4.00", "2.50")


def test_unconfigured_explains_how_to_configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "https://api.endpoints.huggingface.cloud/v2")
    for var in ("HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGINGFACE_TOKEN", "HF_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    main(["init"])
    code, _, err = run(capsys, "endpoints", "list")
    assert code == 2 and "HF_TOKEN" in err and "HF_ENDPOINTS_API_URL=local" in err


def test_list_and_show_print_money_as_the_endpoints_page_does(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Totals in dollars and cents and rates per hour, by the rules the Endpoints page uses (`dollars`,
    `hourly_text`), not a hand-made four places ("$1.2345")."""
    code, out, _ = run(capsys, "endpoints", "demo", "--days", "2")
    assert code == 0
    code, by_source, _ = run(capsys, "spend", "--by", "source", "--json")  # the endpoints' requests came from apps
    requests = {row["key"]: row["requests"] for row in json.loads(by_source)}
    assert code == 0 and requests["api"] > 0 and requests.get("(unknown)", 0) == 0  # (unknown): the uptime debits
    # The demo's endpoints are running: what is not yet metered grows a cent every few seconds, so both listings
    # are taken at one instant (a slow machine once crossed a cent between them).
    at, overview = utcnow(), EndpointService.overview
    monkeypatch.setattr(EndpointService, "overview", lambda self, caller, **kw: overview(self, caller, now=at, **kw))
    code, out, _ = run(capsys, "endpoints", "list", "--no-refresh", "--json")
    listed = json.loads(out)
    total = Decimal(str(listed["month_total_usd"]))
    shown = listed["endpoints"][0]
    assert total > 0
    code, out, _ = run(capsys, "endpoints", "list", "--no-refresh")
    # the printed total is the sum of the printed (cent) rows, the JSON's the exact one: they may differ by a cent a
    # row (CI once met $37.77 against $37.78), never by more
    printed = re.search(r"month to date: \$([\d,]+\.\d\d) \(posted ", out)
    assert code == 0 and printed is not None, out
    assert abs(Decimal(printed.group(1).replace(",", "")) - total) <= Decimal("0.01") * len(listed["endpoints"])
    code, out, _ = run(capsys, "endpoints", "show", shown["name"])
    assert code == 0
    cents = r"(\$[\d,]+\.\d\d|<\$0\.01)"
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(": ") for line in out.splitlines() if ": " in line)}
    assert lines["usd_per_hour"] == hourly_text(Decimal(shown["usd_per_hour"]))
    assert re.fullmatch(cents, lines["month_to_date_usd"])
    assert re.fullmatch(rf"posted {cents} \(\d[\d,]* credits?\), not yet metered {cents}; .*", lines["this month"])
    for money in re.findall(r"\$[\d,.]+", out):
        assert re.fullmatch(r"\$[\d,]+\.\d\d", money), money  # cents, never $0.0000


def test_list_prints_a_total_that_is_the_sum_of_the_printed_rows(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three endpoints of $0.005 printed $0.01 each used to total $0.02 (the exact $0.015, rounded once)."""
    monkeypatch.setattr(EndpointService, "overview", lambda self, caller, **kw: three_half_cents(deleted="0.10"))
    code, out, _ = run(capsys, "endpoints", "list", "--no-refresh")
    assert code == 0
    assert re.findall(r" (\$0\.01) ", out) == ["$0.01"] * 3
    assert "month to date: $0.13 (posted $0.13, not yet metered $0.00; $0.10 of it on endpoints deleted this " in out
    code, out, _ = run(capsys, "endpoints", "list", "--no-refresh", "--all")
    assert code == 0 and "month to date: $0.13 (posted $0.13, not yet metered $0.00); billing now" in out
    code, out, _ = run(capsys, "endpoints", "list", "--no-refresh", "--json")
    assert json.loads(out)["month_total_usd"] == "0.115"  # --json keeps the exact figures
