"""Issue 17 in a real browser: a product manager whose balance went below zero (endpoint uptime delivered past what
was left) sees the overdraft banner on every page and can still chat with the free sandbox in the Playground."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.billing import BillingService
from core.users import add_user
from tests.conftest import make_runtime
from tests.e2e.server import ARTIFACTS, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

PM = "owen@corp.example"
BANNER = "Your balance is -2,005 credits: overdrawn by 2,005 credits ($80.20)."


@pytest.fixture(scope="module")
def overdrawn_app(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("overdraft")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    with rt.session() as s:
        add_user(s, email=PM, name="Owen Overdrawn", role="pm")
    billing = BillingService(rt.session_factory, rt.settings)
    billing.grant(PM, 5)
    billing.charge(
        PM,
        Decimal("80.40"),  # 2,010 credits of uptime at 0% markup, posted though only 5 were left
        markup_pct=0,
        idempotency_key="uptime-1",
        description="endpoint uptime",
        kind="endpoint_uptime",
        allow_overdraft=True,
    )
    rt.dispose()
    env = {"DATABASE_URL": url, "ANALYTICS_PATH": str(tmp / "analytics.duckdb"), "LOCAL_USER_EMAIL": PM}
    with streamlit_server(env) as app:
        yield app


def test_an_overdrawn_pm_sees_the_banner_and_still_uses_the_sandbox(overdrawn_app: str, page) -> None:
    page.goto(overdrawn_app)
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"] a:has-text("Playground")').first.click()
    page.wait_for_selector("h1:has-text('Playground')")
    page.get_by_placeholder("Message the model").wait_for()
    wait_idle(page)
    banner = page.locator('[data-testid="stAlert"]').filter(has_text=BANNER)
    assert banner.count() == 1 and "the free sandbox models still work" in banner.inner_text()
    page.get_by_text("Simulated.", exact=False).first.wait_for()

    box = page.get_by_placeholder("Message the model")
    box.fill("Am I still allowed to try things?")
    box.press("Enter")
    page.get_by_text("Cost of this call", exact=False).first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Not enough credits", exact=False).count() == 0
    # a sandbox call shows what it would cost and charges nothing: no "Credits charged" figure at all
    assert page.locator('[data-testid="stMetric"]:has-text("Would cost (not charged)")').count() >= 1
    assert page.locator('[data-testid="stMetric"]:has-text("Credits charged")').count() == 0
    page.screenshot(path=str(ARTIFACTS / "overdraft-playground.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
