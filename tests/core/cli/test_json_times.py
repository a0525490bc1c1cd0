"""Every time the command line prints as JSON is ISO 8601 with an explicit offset, UTC (`+00:00`): times are stored
as naive UTC, and a time without an offset reads as local time to whoever parses it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.cli import main
from core.cli.output import json_time

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def times_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in times_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in times_in(v)]
    return [value] if isinstance(value, str) and ISO_TIME.match(value) else []


def test_json_time_gives_utc_with_its_offset() -> None:
    assert json_time(datetime(2026, 12, 1, 10, 0)) == "2026-12-01T10:00:00+00:00"  # naive: stored UTC
    paris = timezone(timedelta(hours=1))
    assert json_time(datetime(2026, 12, 1, 11, 0, tzinfo=paris)) == "2026-12-01T10:00:00+00:00"
    parsed = datetime.fromisoformat(json_time(datetime(2026, 12, 1, 10, 0, 5, 250)))
    assert parsed == datetime(2026, 12, 1, 10, 0, 5, 250, tzinfo=UTC)


def test_every_json_time_has_the_utc_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    assert main(["init"]) == 0
    assert main(["users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm"]) == 0
    assert main(["credits", "grant", "--user", "ana@example.com", "--credits", "100"]) == 0
    assert main(["generate", "--user", "ana@example.com", "--model", "sandbox-chat", "--text", "Hi"]) == 0
    capsys.readouterr()
    seen: list[str] = []
    for argv in (
        ["users", "list", "--json"],
        ["keys", "create", "--user", "ana@example.com", "--name", "app", "--expires", "2099-06-30", "--json"],
        ["keys", "list", "--json"],
        ["credits", "history", "--user", "ana@example.com", "--json"],
        ["spend", "--by", "model", "--include-sandbox", "--json"],
        ["spend", "anomalies", "--json"],
        ["endpoints", "list", "--no-refresh", "--json"],
        ["optimize", "--json"],
    ):
        assert main(argv) == 0, argv
        found = times_in(json.loads(capsys.readouterr().out))
        assert all(t.endswith("+00:00") for t in found), (argv, found)
        seen += found
    assert len(seen) >= 8  # created_at, expires_at, as_of, ...: the check above looked at real times
    assert all(isinstance(datetime.fromisoformat(t).tzinfo, timezone) for t in seen)
