"""The Break-even page in a real browser: change an input, see the recommendation and the chart follow."""

from __future__ import annotations

import pytest

from tests.e2e.server import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def _recommendation(page) -> str:
    return page.locator('[data-testid="stAlertContainer"]').filter(has_text="Recommendation").first.text_content() or ""


def _chart_marks(page, text: str) -> None:
    """The cost chart (drawn asynchronously by plotly) shows `text`, or this times out."""
    page.locator(".js-plotly-plot", has_text="Monthly cost against average traffic").filter(
        has_text=text
    ).first.wait_for(timeout=30_000)


def test_changing_the_traffic_changes_the_recommendation_and_the_chart(app_url: str, page) -> None:
    page.goto(f"{app_url}/breakeven")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Recommendation: serverless." in _recommendation(page)
    _chart_marks(page, "your traffic: 60.0/h")

    box = page.get_by_label("Requests per hour (average)")
    box.fill("3000")
    page.get_by_role("button", name="Simulate").click()
    wait_idle(page)
    # On a busy machine the rerun can start after wait_idle saw the previous run's idle state: wait for its answer.
    _chart_marks(page, "your traffic: 3,000.0/h")
    page.locator('[data-testid="stAlertContainer"]').filter(has_text="always-on").first.wait_for(timeout=30_000)
    rec = _recommendation(page)
    assert "Recommendation: serverless" not in rec and "always-on" in rec and "$21,900.00" in rec
    _chart_marks(page, "your traffic: 3,000.0/h")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.locator('[data-testid="stAlertContainer"]').first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "breakeven-3000-per-hour.png"), full_page=True)


def test_a_link_with_a_model_replays_its_real_traffic(app_url: str, page) -> None:
    page.goto(f"{app_url}/breakeven?model=suno/bark&profile=history")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Real traffic of suno/bark").count() == 1
    assert "Recommendation" in _recommendation(page)
    page.get_by_role("tab", name="7 days").click()
    page.get_by_text("Scale-to-zero over time").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "breakeven-history.png"))
