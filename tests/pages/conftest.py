"""Fixtures for the page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db import Database
from tests.pages.apptest import demo_runtime


@pytest.fixture(autouse=True)
def acting_as_an_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode starts as the least-privileged person; most page tests want every figure, so they act as the first
    admin unless they say otherwise (LOCAL_USER_EMAIL or open_page(acting_as=...))."""
    monkeypatch.setenv("LOCAL_USER_EMAIL", "admin")


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A small demo history (1,500 events over 20 days), open, with DATABASE_URL pointing at it."""
    rt = demo_runtime(tmp_path, rows=1500, days=20, seed=4)
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    yield rt
    rt.dispose()
