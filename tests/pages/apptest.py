"""Shared by the page tests: a demo database to point a page at, and a page run through AppTest."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.db import Database
from core.demo import write_demo_history
from tests.conftest import make_runtime

ROOT = Path(__file__).resolve().parents[2]


def page_path(name: str) -> str:
    return str(ROOT / "pages" / f"{name}.py")


def demo_runtime(folder: Path, *, rows: int, days: int, seed: int) -> Database:
    """A migrated SQLite database in `folder` with `rows` demo events over the last `days` days (the caller disposes
    of the runtime)."""
    rt = make_runtime(f"sqlite:///{folder / 'app.db'}", folder)
    write_demo_history(rt, rows=rows, days=days, seed=seed, end=datetime.now(UTC))
    return rt


def demo_database(folder: Path, *, rows: int, days: int, seed: int) -> str:
    """The same, closed: its database URL."""
    rt = demo_runtime(folder, rows=rows, days=days, seed=seed)
    rt.dispose()
    return rt.settings.database_url


def open_page(name: str, *, timeout: float = 60, acting_as: str | None = None) -> AppTest:
    """Run pages/<name>.py once (DATABASE_URL must already point at a database) and insist it raised nothing;
    `acting_as`: the email local mode acts as (the sidebar's pick)."""
    at = AppTest.from_file(page_path(name), default_timeout=timeout)
    if acting_as is not None:
        at.session_state["local_user_email"] = acting_as
    at.run()
    assert not at.exception, at.exception
    return at


def shown(markdown: str) -> str:
    """What a reader sees of an element's Markdown source: user text reaches pages escaped (ui.plain), so `page\\-x`
    reads `page-x` (and the invisible word joiner that keeps an email or a URL from being linked is not seen)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def dates_drawn_as_text(at: AppTest) -> list[tuple[str, str]]:
    """(table's first column, column) of every column holding dates or times that a table draws as plain text: the
    browser then shows a date as its epoch milliseconds (1796256000000)."""
    wrong = []
    for d in at.dataframe:
        config = json.loads(d.proto.columns) if d.proto.columns else {}
        for column in d.value.columns:
            values = [v for v in d.value[column] if v is not None]
            if values and all(isinstance(v, date) for v in values):
                kind = config.get(column, {}).get("type_config", {}).get("type")
                if kind not in ("date", "datetime"):
                    wrong.append((str(d.value.columns[0]), str(column)))
    return wrong
