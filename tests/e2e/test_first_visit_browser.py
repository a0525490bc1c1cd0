"""The first visit after a start, through serve_app.py as `make run` starts the app: the sidebar lists the role's
pages from its first frame, never the raw modules of the pages/ folder (ui, fmt, tables, ...) that Streamlit's old
multipage mode listed until app.py's navigation replaced them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.demo import write_demo_history
from tests.conftest import make_runtime
from tests.e2e.server import streamlit_server, wait_idle

# how Streamlit's old multipage mode labels a module: its file name, underscores as spaces (app.py: "app")
MODULES = {p.stem.replace("_", " ") for p in (Path(__file__).resolve().parents[2] / "pages").glob("*.py")} | {"app"}
# every link the sidebar's navigation ever shows, from before the page's own scripts run
RECORD_LINKS = """
window.__navSeen = [];
new MutationObserver(() => {
  for (const a of document.querySelectorAll('[data-testid="stSidebarNav"] a, [data-testid="stSidebarNavLink"]')) {
    // the label: the last line (the icon's name comes first)
    const text = (a.innerText || '').trim().split(String.fromCharCode(10)).pop().trim();
    if (text && !window.__navSeen.includes(text)) window.__navSeen.push(text);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("first-visit")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    write_demo_history(rt, rows=500, days=10, seed=3)
    rt.dispose()
    env = {"DATABASE_URL": url, "ANALYTICS_PATH": str(tmp / "analytics.duckdb"), "LOCAL_USER_EMAIL": "admin"}
    with streamlit_server(env, warm=True) as base:
        yield base


def test_the_first_visit_never_lists_the_raw_page_modules(fresh_app: str, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.add_init_script(RECORD_LINKS)
        page.goto(fresh_app)
        wait_idle(page)
        seen = page.evaluate("window.__navSeen")
    finally:
        context.close()
    assert "Overview" in seen and "Ledger" in seen, seen
    assert not set(seen) & MODULES, seen
