"""The command line's tables show times in the reporting time zone and name it, as the pages do (`at (Asia/Kolkata)`),
while `--json` keeps the instant in UTC with its offset: `alerts list`, `alerts deliveries` and `endpoints show`, with
REPORTING_TZ set to a zone half an hour off any whole-hour one, so neither UTC nor a rounded offset passes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core.alerts import AlertDelivery, AlertRunner, WebhookRegistry
from core.billing import BillingService
from core.budgets import BudgetBook
from core.cli import main
from core.db import Database
from core.services.times import to_local
from tests.conftest import make_runtime
from tests.core.billing.conftest import catalog_model
from tests.core.budgets.conftest import funded, set_clock, spend_one  # noqa: F401 - set_clock: the shared fixture

TZ = "Asia/Kolkata"  # UTC+05:30
AT = datetime(2026, 7, 1, 22, 30)  # naive UTC: 04:00 the next day in Kolkata
AT_LOCAL = "2026-07-02 04:00:00"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    monkeypatch.setenv("REPORTING_TZ", TZ)
    for var in ("HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGINGFACE_TOKEN", "HF_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0, args
    return capsys.readouterr().out


def table(out: str) -> tuple[list[str], list[str]]:
    """The header line's words and the data lines of a printed table."""
    header, _rule, *lines = out.strip().splitlines()
    return header.split("  "), lines


def test_alerts_list_and_deliveries_show_times_in_the_reporting_zone(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    set_clock: Callable[[datetime], None],  # noqa: F811
) -> None:
    rt: Database = make_runtime(f"sqlite:///{env / 'cli.db'}", env, reporting_tz=TZ)
    billing = BillingService(rt.session_factory, rt.settings)
    set_clock(AT)
    ana = funded(rt, billing, "ana@example.com")
    BudgetBook(rt.session_factory, rt.settings).set(user=ana.id, credits=2, enforcement="soft", thresholds=(50,))
    spend_one(billing, catalog_model(rt, "gpt-4o"), ana, "c1")
    WebhookRegistry(rt.session_factory).add("finance", "https://hooks.example.com/alerts")
    delivery = AlertDelivery(
        rt.session_factory, rt.settings, http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    )
    (alert,) = (
        AlertRunner(rt.session_factory, rt.settings, billing, delivery=delivery, check_anomalies=False).run(AT).alerts
    )
    rt.dispose()

    header, lines = table(run(capsys, "alerts", "list"))
    assert header[:2] == ["id", f"at ({TZ})"] and "at (UTC)" not in header
    (line,) = lines
    assert line.split()[0] == str(alert["id"]) and AT_LOCAL in line
    (listed,) = json.loads(run(capsys, "alerts", "list", "--json"))
    assert listed["created_at"] == "2026-07-01T22:30:00+00:00"  # JSON: the same instant, UTC with its offset

    header, lines = table(run(capsys, "alerts", "deliveries"))
    assert header[0] == f"at ({TZ})"
    (line,) = lines
    assert line.startswith(AT_LOCAL) and "finance" in line
    (attempt,) = json.loads(run(capsys, "alerts", "deliveries", "--json"))
    assert attempt["at"] == "2026-07-01T22:30:00+00:00"


def test_endpoints_show_lists_its_events_in_the_reporting_zone(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    assert main(["users", "add", "--email", "eng@example.com", "--name", "Eng", "--role", "engineer"]) == 0
    run(
        capsys, "endpoints", "create", "--name", "my-audio-model", "--model", "facebook/mms-tts-eng",
        "--hardware", "nvidia-t4", "--min-replicas", "0", "--max-replicas", "1", "--owner", "eng@example.com",
    )  # fmt: skip
    run(capsys, "endpoints", "pause", "my-audio-model")

    events = json.loads(run(capsys, "endpoints", "show", "my-audio-model", "--json"))["events"]
    assert len(events) >= 2 and all(e["at"].endswith("+00:00") for e in events)
    out = run(capsys, "endpoints", "show", "my-audio-model")
    header, lines = table(out[out.index("\n\n") + 2 :])  # the events table, under the endpoint's details
    assert header[0] == f"at ({TZ})" and "at (UTC)" not in out
    shown = [line[:19] for line in lines]
    expected = [f"{to_local(datetime.fromisoformat(e['at']).astimezone(UTC), TZ):%Y-%m-%d %H:%M:%S}" for e in events]
    assert shown == expected
    assert [line.split()[2] for line in lines] == [e["state"] for e in events]
