"""serve_app.py builds the engine before the first visitor: the entry it warms is the one every page reads."""

from __future__ import annotations

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
