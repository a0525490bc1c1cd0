"""In a real browser: grant credits on the Ledger page (review, then confirm) and see the balance change."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.server import ARTIFACTS, choose, wait_idle

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


def select_row(page, table, row: int) -> None:
    """Tick row `row` (0 = first) of a selectable table: the grid is a canvas, so click its row marker."""
    expect(table).to_have_count(1)  # a table drawn anew replaces the old one a moment after the run
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    header = row_height = 35  # Streamlit's data grid: one header row, rows 35 px high
    page.mouse.click(box["x"] + 16, box["y"] + header + row_height * row + row_height / 2)
    wait_idle(page)


def test_refund_a_selected_usage_row_and_see_the_balance_move_by_it(app_url: str, page) -> None:
    page.goto(app_url)
    wait_idle(page)
    choose(page, "acting_role", "Finance")
    try:
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Ledger", exact=True).click()
        page.get_by_role("heading", name="Ledger").wait_for(timeout=60_000)
        wait_idle(page)
        before = balance_shown(page)
        shown = page.get_by_role("tabpanel", name="History").get_by_text(
            re.compile(r"transactions shown, newest first")
        )
        unfiltered = shown.inner_text()
        choose(page, "hist_types", "usage")  # every row a debit that can be refunded (none is yet)
        # on a busy machine the rerun can start after choose's idle check: wait for what the filter brings
        expect(shown).not_to_have_text(unfiltered, timeout=60_000)
        wait_idle(page)
        history = page.get_by_role("tabpanel", name="History").locator('[data-testid="stDataFrame"]')
        expect(history).to_have_count(1, timeout=60_000)  # the filtered table replaces the unfiltered one
        select_row(page, history, 0)
        heading = page.get_by_text(re.compile(r"Refund transaction \d+: usage of -[\d,]+ credits"))
        heading.wait_for(timeout=60_000)
        tx, debit = re.search(r"transaction (\d+): usage of -([\d,]+)", heading.inner_text()).groups()  # type: ignore[union-attr]
        debit_credits = int(debit.replace(",", ""))

        page.get_by_label("Reason (shown in the history and the audit log)").fill(
            "<b>x</b> **x** $x$ :material/home: — déjà vu"
        )
        page.get_by_role("button", name="Review refund").click()
        review = page.get_by_text(f"Confirm: refund all {debit} credits of transaction {tx}.")
        review.wait_for(timeout=60_000)
        wait_idle(page)
        shown = review.inner_text().replace("\u2060", "")  # the word joiner that keeps the icon syntax text
        assert review.locator('[role="img"]').count() == 0  # no icon drawn from the typed text
        assert "Reason: <b>x</b> **x** $x$ :material/home: — déjà vu" in shown  # the reason as typed, not as markup
        page.screenshot(path=str(ARTIFACTS / "ledger-refund-review.png"), full_page=True)
        page.get_by_role("button", name="Confirm refund").click()
        done = page.get_by_text(re.compile(rf"Refunded \+{debit} credits of transaction {tx} \(transaction \d+\)"))
        done.wait_for(timeout=60_000)
        wait_idle(page)
        refund_id = re.search(r"\(transaction (\d+)\)", done.inner_text()).group(1)  # type: ignore[union-attr]
        after = before + debit_credits
        assert f"balance is now {after:,}." in done.inner_text()
        page.screenshot(path=str(ARTIFACTS / "ledger-refund-done.png"), full_page=True)

        assert balance_shown(page) == after  # the History tab's balance moved by exactly the refund
        select_row(page, history, 0)  # no row is left ticked: one click selects the refunded debit again
        page.get_by_text(f"Transaction {tx} is a usage of -{debit} credits").wait_for(timeout=60_000)
        assert page.get_by_role("button", name="Review refund").count() == 0  # it is refunded: once is all
        choose(page, "hist_types", "refund")
        with page.expect_download() as download:
            page.locator(".st-key-dl_history button").click()  # "Download the N shown (CSV)"
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        (refund,) = [r for r in rows if r["id"] == refund_id]  # the refund is in the ledger, as its own row
        assert refund["type"] == "refund" and int(refund["amount (credits)"]) == debit_credits
        assert int(refund["balance after"]) == after
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        choose(page, "acting_role", "Admin")  # the pick is remembered for new tabs: leave the admin for the others
