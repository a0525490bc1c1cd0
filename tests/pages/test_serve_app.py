"""serve_app.py builds the engine before the first visitor: the entry it warms is the one every page reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import serve_app
from core.services import Services
from pages import ui
from tests.conftest import make_runtime


def test_warm_builds_the_services_the_pages_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    serve_app.warm()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("built again on the first visit")

    monkeypatch.setattr(Services, "__init__", refuse)
    assert ui.services().settings.database_url == url  # from the warm entry, not built anew
    ui._services.clear()  # its alert timer stops with it


def test_warming_prints_nothing(tmp_path: Path) -> None:
    """`make run` shows what a person needs (the URL, the demo key); streamlit's "No runtime found" warnings, expected
    before the server runs, are not among them (a fresh process: in this one the pages are already imported)."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    env = {**os.environ, "DATABASE_URL": url, "ANALYTICS_PATH": str(tmp_path / "analytics.duckdb")}
    done = subprocess.run(
        [sys.executable, "-c", "import serve_app; serve_app.warm()"],
        cwd=Path(serve_app.__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_apps_engine_runs_the_alert_timer_until_it_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts evaluate on their own while the app runs: the pages' engine starts the timer, spend anomalies included
    (this process keeps the analytics copy), and releasing the entry (the cache cleared; at exit, atexit) stops it."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    monkeypatch.setenv("ALERTS_EVERY_SECONDS", "3600")
    built = ui.services()
    assert built.auto_alerts.running and built.auto_alerts.every == 3600 and built.auto_alerts.checks_anomalies
    ui._services.clear()
    assert not built.auto_alerts.running and not built.auto_alerts.checks_anomalies
