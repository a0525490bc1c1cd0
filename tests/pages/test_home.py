"""The Overview (issue 17): it keeps its figures for a minute, so it says when they were read, and its Refresh reads
them again (credits granted a moment ago showed stale before)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.services import SYSTEM, Services
from tests.pages.apptest import demo_runtime, open_page


def test_refresh_reads_a_grant_made_after_the_figures_were_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = demo_runtime(tmp_path, rows=800, days=15, seed=21)
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "home.duckdb"))
    try:
        at = open_page("home", timeout=120)
        assert any(re.match(r"\*\*Figures from \d\d:\d\d:\d\d UTC\*\*", md.value) for md in at.markdown)
        before = next(m for m in at.metric if m.label == "Credits outstanding")
        assert re.fullmatch(r"[\d,]+", before.value) and re.fullmatch(r"\$[\d,]+\.\d\d prepaid", before.proto.delta)
        assert before.proto.direction == before.proto.NONE  # "prepaid" is a note, not a rise
        services = Services(rt)
        someone = services.users.list(SYSTEM)[0].email
        services.ledger.grant(SYSTEM, someone, 1234, note="test grant")
        services.close()

        at.run()  # within the minute the figures are kept: still the old ones, and the page says from when
        assert next(m for m in at.metric if m.label == "Credits outstanding").value == before.value
        at.button(key="refresh_overview").click().run()
        assert not at.exception, at.exception
        after = next(m for m in at.metric if m.label == "Credits outstanding").value
        assert int(after.replace(",", "")) == int(before.value.replace(",", "")) + 1234
    finally:
        rt.dispose()
