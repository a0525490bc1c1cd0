"""A page URL opened first thing on a fresh server still goes through the router: its navigation, its sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.users import add_user
from tests.conftest import make_runtime
from tests.e2e.server import ARTIFACTS, streamlit_server, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("direct")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    with rt.session() as s:
        add_user(s, email="pm@corp.example", name="Pat Product", role="pm")
    rt.dispose()
    env = {"DATABASE_URL": url, "ANALYTICS_PATH": str(tmp / "a.duckdb"), "LOCAL_USER_EMAIL": "pm@corp.example"}
    with streamlit_server(env) as base:
        yield base


def test_first_request_to_a_page_url_is_routed(fresh_app: str, page) -> None:
    page.goto(f"{fresh_app}/models")
    wait_idle(page)
    page.wait_for_selector("h1:has-text('Models & pricing')", timeout=30_000)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "ui" not in nav.split() and "app" not in nav.split(), nav
    assert "Models & pricing" in nav and "Overview" not in nav  # the PM's navigation, not the file list
    page.screenshot(path=str(ARTIFACTS / "direct-url-models.png"), full_page=True)


def test_a_page_outside_the_role_opens_the_persons_first_page_saying_why(fresh_app: str, page) -> None:
    # a PM following a shared /breakeven link got Streamlit's "Page not found" popup over their first page
    page.goto(f"{fresh_app}/models")  # the server past its first request
    wait_idle(page)
    page.goto(f"{fresh_app}/breakeven")
    wait_idle(page)
    page.wait_for_selector("h1:has-text('Playground')", timeout=30_000)
    assert page.locator("h1:has-text('Break-even')").count() == 0
    said = page.locator('[data-testid="stAlert"]').filter(has_text="Break-even is for").inner_text()
    assert "Break-even is for admins and engineers" in said and "your role is PM" in said, said
    assert "Models & pricing" in said and "ask an admin" in said, said
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(ARTIFACTS / "direct-url-other-role.png"), full_page=True)
    page.get_by_role("link", name="Models & pricing").click()  # the line is for the redirect only
    wait_idle(page)
    page.wait_for_selector("h1:has-text('Models & pricing')", timeout=30_000)
    assert page.get_by_text("Break-even is for").count() == 0


def test_a_path_that_is_no_page_says_so_on_the_first_page(fresh_app: str, page) -> None:
    page.goto(f"{fresh_app}/no-such-page")
    wait_idle(page)
    page.wait_for_selector("h1:has-text('Playground')", timeout=30_000)
    assert page.get_by_text("There is no page at /no-such-page").count() == 1
    assert page.get_by_text("Page not found").count() == 0


def test_the_roles_first_page_opens_at_its_own_path_too(fresh_app: str, page) -> None:
    # Streamlit serves a navigation's first page at "/" alone: a PM's /playground (a bookmark, a link) said
    # "Page not found" over it
    page.goto(f"{fresh_app}/models")  # the server past its first request
    wait_idle(page)
    page.goto(f"{fresh_app}/playground")
    wait_idle(page)
    page.wait_for_selector("h1:has-text('Playground')", timeout=30_000)
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(ARTIFACTS / "direct-url-first-page.png"), full_page=True)
