"""A person creates an endpoint on the local stand-in, waits for it to run, pauses it and sees what it cost."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.server import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    wait_idle(page)


def test_create_run_pause_and_see_the_cost(app_url: str, page) -> None:
    page.goto(f"{app_url}/endpoints")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("local stand-in", exact=False).first.wait_for()

    page.get_by_role("textbox", name="Name", exact=True).fill("e2e-audio")
    page.get_by_role("textbox", name="Model repository").fill("facebook/mms-tts-eng")
    click(page, "Create endpoint")  # hardware defaults to the cheapest, T4 at $0.60/h
    page.get_by_text("Created e2e-audio (T4, $0.60/h per replica): pending").wait_for()
    # ready for the next one (the cleared field can reach the browser a moment after the success line)
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value("", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "endpoints-created.png"), full_page=True)

    # the stand-in runs pending (3 s) -> initializing (8 s) -> running; refresh until the page says so
    deadline = time.monotonic() + 45
    while "· running with" not in page.inner_text('[data-testid="stMain"]'):
        assert time.monotonic() < deadline, "the endpoint never reached running"
        time.sleep(2)
        click(page, "Refresh")
    main = page.inner_text('[data-testid="stMain"]')
    assert "running with 1 billed replica ·" in main and "$0.60/h now" in main

    time.sleep(2)
    click(page, "Pause")
    page.get_by_text("Paused e2e-audio: now paused.").wait_for()
    wait_idle(page)  # the success line comes first in its run; read the page once that run has drawn the rest
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("paused with 0 billed replicas", timeout=15_000)
    main = page.inner_text('[data-testid="stMain"]')
    assert "paused with 0 billed replicas" in main and "$0.00/h now" in main
    # at least one started minute of running at $0.60/h = $0.01 per minute; at most a few in this test
    cost = re.search(r"this month \$(0\.0\d)", main)  # money: dollars and cents
    assert cost, main
    assert cost.group(1) in {"0.01", "0.02", "0.03"}
    assert f"${cost.group(1)}" in page.inner_text('[data-testid="stMetric"]:has-text("Uptime this month")')
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "endpoints-paused.png"), full_page=True)

    # into Break-even: the same tab and session (so the same person), the endpoint's own settings filled in
    acting = page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_text("Break-even with this endpoint's traffic and settings").click()
    page.wait_for_selector("h1:has-text('Break-even')")
    wait_idle(page)
    assert len(page.context.pages) == 1 and "idle=15" in page.url and "hardware=T4" in page.url
    idle = page.get_by_label("Scale-to-zero after (idle minutes)")
    assert idle.input_value() == "15"  # the endpoint's timeout, not Hugging Face's default of 60
    assert page.get_by_label("Max replicas").input_value() == "1"  # not the simulator's default of 8
    assert (
        page.locator('[data-testid="stSidebar"]').inner_text().split("Acting as")[-1][:60]
        == (acting.split("Acting as")[-1][:60])
    )
