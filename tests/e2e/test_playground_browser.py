"""A person opens the Playground, sends a chat message on the sandbox, sees the streamed reply and its cost card."""

from __future__ import annotations

import pytest

from tests.e2e.server import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def test_chat_on_the_sandbox_shows_reply_and_cost_card(app_url: str, page) -> None:
    page.goto(app_url)  # through the router, as a person arrives
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"] a:has-text("Playground")').first.click()
    page.wait_for_selector("h1:has-text('Playground')")
    page.get_by_placeholder("Message the model").wait_for()
    wait_idle(page)
    page.get_by_text("Simulated.", exact=False).first.wait_for()

    box = page.get_by_placeholder("Message the model")
    box.fill("How much does one credit cost?")
    box.press("Enter")
    page.get_by_text("simulated by the sandbox: no model was called", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Cost of this call", exact=False).first.wait_for(timeout=60_000)
    wait_idle(page)

    assert page.get_by_text("How much does one credit cost?").count() >= 1
    card = page.locator('[data-testid="stMetric"]')
    labels = card.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    for label in ("Provider cost (USD)", "Base credits", "Markup", "Credits charged", "Balance after", "Latency"):
        assert any(label in text for text in labels), (label, labels)
    charged = page.locator('[data-testid="stMetric"]:has-text("Credits charged") [data-testid="stMetricValue"]')
    assert charged.first.inner_text().strip() == "0"
    assert page.get_by_text("Simulated by the sandbox: not charged", exact=False).count() >= 1
    assert page.get_by_text("usage: ", exact=False).first.inner_text().count("out tokens") == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "playground-chat.png"), full_page=True)
