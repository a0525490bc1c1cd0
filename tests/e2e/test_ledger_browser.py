"""In a real browser: grant credits on the Ledger page (review, then confirm) and see the balance change."""

from __future__ import annotations

import re

import pytest

from tests.e2e.server import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def balance_shown(page) -> int:
    page.get_by_role("tab", name="History").click()
    metric = page.locator('[data-testid="stMetricValue"]').first
    metric.wait_for()
    return int(re.sub(r"[^\d-]", "", metric.inner_text()))


def test_grant_credits_and_see_the_balance_change(app_url: str, page) -> None:
    page.goto(app_url)  # in through the app's navigation, as a person would
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Ledger", exact=True).click()
    wait_idle(page)
    page.get_by_role("heading", name="Ledger").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    before = balance_shown(page)  # the first user by email, also the grant form's default

    page.get_by_role("tab", name="Grant / top-up").click()
    page.get_by_text("topup", exact=True).click()
    credits = page.get_by_label("Credits", exact=True).and_(page.locator("input"))
    credits.fill("250")
    credits.press("Tab")
    page.get_by_label("Note (shown in the history and the audit log)").fill("browser top-up")
    page.get_by_role("button", name="Review").click()
    # wait for what the click brings (on a busy machine the rerun can start after a first idle check)
    page.get_by_text("Confirm: topup of +250 credits").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Confirm: topup of +250 credits").count() == 1
    page.screenshot(path=str(ARTIFACTS / "ledger-grant-review.png"), full_page=True)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text(f"balance is now {before + 250:,}").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("tab", name="Grant / top-up").click()
    assert page.get_by_text(f"balance is now {before + 250:,}").count() == 1
    page.screenshot(path=str(ARTIFACTS / "ledger-grant-done.png"), full_page=True)

    assert balance_shown(page) == before + 250
    page.wait_for_timeout(500)  # let the chart draw
    page.screenshot(path=str(ARTIFACTS / "ledger-history.png"), full_page=True)
    page.get_by_role("tab", name="Audit log").click()
    audit = page.get_by_role("tabpanel", name="Audit log").locator('[data-testid="stDataFrame"]')
    audit.wait_for()  # the grid draws on a canvas; the screenshot shows the credits.topup row
    page.screenshot(path=str(ARTIFACTS / "ledger-audit.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_bad_grant_is_refused_at_review_naming_it_then_the_good_one_posts(app_url: str, page) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Ledger", exact=True).click()
    page.get_by_role("heading", name="Ledger").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("tab", name="Grant / top-up").click()
    credits = page.get_by_label("Credits", exact=True).and_(page.locator("input"))
    credits.fill("12.7")
    page.get_by_role("button", name="Review").click()
    refused = page.get_by_text("12.7 is not a whole number", exact=False)
    refused.wait_for(timeout=60_000)
    wait_idle(page)
    assert "type 12 or 13" in refused.inner_text()
    assert credits.input_value() == "12.7"  # the form keeps what was typed, not a previous or clamped value
    assert page.get_by_role("button", name="Confirm").count() == 0
    page.screenshot(path=str(ARTIFACTS / "ledger-grant-refused.png"), full_page=True)

    credits.fill("12")
    page.get_by_role("button", name="Review").click()
    page.get_by_text("Confirm: grant of +12 credits ($0.48)").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("is not a whole number", exact=False).count() == 0
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("+12 credits to", exact=False).wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "ledger-grant-after-fix.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
