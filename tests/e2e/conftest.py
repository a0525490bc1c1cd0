from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.demo import write_demo_history
from tests.conftest import IN_CI, make_runtime
from tests.e2e.server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail("CI=true but /usr/bin/chromium is missing: .ci/run must install Debian's chromium.")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    write_demo_history(rt, rows=5000, days=45, seed=11, end=datetime.now(UTC))
    rt.dispose()
    env = {
        "DATABASE_URL": url,
        "ANALYTICS_PATH": str(tmp / "analytics.duckdb"),
        "HF_ENDPOINTS_API_URL": "local",
        "LOCAL_USER_EMAIL": "admin",  # local mode starts as a PM otherwise; these tests walk the admin's pages
    }
    with streamlit_server(env) as base:
        yield base


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    p = context.new_page()
    yield p
    context.close()
