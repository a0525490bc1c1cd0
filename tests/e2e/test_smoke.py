"""Open every page in a real browser; no exception box; a screenshot per page under tests/e2e/artifacts/."""

from __future__ import annotations

import pytest

from tests.e2e.server import ARTIFACTS, wait_idle

PAGES = {
    "": "Overview",
    "playground": "Playground",
    "spend": "Spend",
    "ledger": "Ledger",
    "breakeven": "Break-even",
    "endpoints": "Endpoints",
    "models": "Models & pricing",
    "savings": "Savings",
    "pricing_lab": "Pricing lab",
}

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", list(PAGES))
def test_page_opens_without_exception(app_url: str, page, path: str) -> None:
    page.goto(f"{app_url}/{path}")
    wait_idle(page)
    page.wait_for_selector("h1")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / f"page-{path or 'home'}.png"), full_page=True)
