"""A person opens the Playground, sends a chat message on the sandbox (with an image attached, too), sees the streamed
reply and its cost card."""

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
    for label in ("Provider cost (USD)", "Base credits", "Markup", "Would cost (not charged)", "Balance after"):
        assert any(label in text for text in labels), (label, labels)
    would_be = page.locator('[data-testid="stMetric"]:has-text("Would cost") [data-testid="stMetricValue"]')
    assert int(would_be.first.inner_text().strip()) >= 1  # what the real model would charge; nothing was
    assert page.get_by_text("nothing was charged", exact=False).count() >= 1
    assert page.get_by_text("usage: ", exact=False).first.inner_text().count("out tokens") == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "playground-chat.png"), full_page=True)


def test_compare_three_models_offline_marks_the_cheapest_and_fastest(app_url: str, page) -> None:
    """No provider key: GPT-4o, GPT-4o mini and Llama compared through their simulated twins."""
    page.goto(f"{app_url}/playground")
    wait_idle(page)
    page.get_by_role("radiogroup").get_by_text("Compare").or_(page.get_by_text("Compare", exact=True)).first.click()
    wait_idle(page)
    box = page.locator('[data-testid="stMultiSelect"]').first
    clear = box.locator('[aria-label="Clear all"], [title="Clear all"]')
    if clear.count():
        clear.first.click()
    else:  # remove the default picks one by one
        while box.locator('[data-baseweb="tag"] [role="presentation"]').count():
            box.locator('[data-baseweb="tag"] [role="presentation"]').first.click()
    wait_idle(page)
    for name in ("GPT-4o (simulated)", "GPT-4o mini (simulated)", "Llama 3.1 8B Instruct (simulated)"):
        box.locator("input").first.click()
        page.get_by_role("option", name=name).first.click()
        wait_idle(page)
    page.keyboard.press("Escape")
    page.get_by_placeholder("One input, sent to every model").fill("Name three rivers in Europe.")
    page.keyboard.press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("whole-credit rounding", exact=False).first.wait_for(timeout=60_000)
    wait_idle(page)

    main = page.inner_text('[data-testid="stMain"]')
    for name in ("GPT-4o (simulated)", "GPT-4o mini (simulated)", "Llama 3.1 8B Instruct (simulated)"):
        assert name in main, name
    assert "Cheapest" in main and "Simulated: priced as" in main
    # the sandbox's latency is its own, not the models': no simulated call is crowned the fastest, and that is said
    assert "Fastest" not in main and "none of them is marked the fastest" in main
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "playground-compare-offline.png"), full_page=True)


def test_an_image_attached_to_a_chat_message_is_shown_and_sent(app_url: str, page, tmp_path) -> None:
    from tests.support.loopback import PNG_1PX

    picture = tmp_path / "dot.png"
    picture.write_bytes(PNG_1PX)
    page.goto(f"{app_url}/playground")
    wait_idle(page)
    page.get_by_placeholder("Message the model").wait_for()
    page.locator('[data-testid="stChatInput"] input[type="file"]').set_input_files(str(picture))
    page.get_by_text("dot.png", exact=False).first.wait_for(timeout=30_000)  # the attachment, before sending
    box = page.get_by_placeholder("Message the model")
    box.fill("What is in this image?")
    box.press("Enter")
    page.get_by_text("Cost of this call", exact=False).first.wait_for(timeout=60_000)
    wait_idle(page)
    user_turn = page.locator('[data-testid="stChatMessage"]').first
    assert user_turn.locator('[data-testid="stImageContainer"] img').count() == 1  # drawn in the user's turn
    assert page.get_by_text("What is in this image?").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
