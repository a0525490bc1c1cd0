"""The Spend page in a real browser: change a filter, drill into a user, download a CSV whose totals match the page."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from tests.e2e.server import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def _choose(page, key: str, text: str) -> None:
    box = page.locator(f".st-key-{key}")
    box.locator("input").first.click()
    box.locator("input").first.fill(text)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)


def _money(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


def test_filter_drill_and_csv_totals(app_url: str, page) -> None:
    page.goto(f"{app_url}/spend")
    wait_idle(page, timeout=120_000)
    page.wait_for_selector("h1:has-text('Spend')")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text(re.compile(r"As of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")).count() == 1
    page.screenshot(path=str(ARTIFACTS / "spend-1-default.png"), full_page=True)

    _choose(page, "providers", "openai")  # a filter in the sidebar
    assert page.locator('[data-testid="stException"]').count() == 0
    page.locator('[data-testid="stSidebar"]').get_by_text("openai").first.wait_for()

    # drill into the first user listed in the drill-down box
    box = page.locator(".st-key-drill_user").locator("input").first
    option = page.locator('[role="option"]').filter(has_text="@").first
    # The box may be re-rendered by the previous run (a busy machine), taking the list or the pick with it: open it
    # until the list shows, click the option, and pick again if the drill-down's summary does not come.
    for attempt in range(3):
        box.click()
        box.fill("@")
        try:
            option.wait_for(timeout=10_000)
        except Exception:
            page.keyboard.press("Escape")
            wait_idle(page)
            continue
        first_user = option.inner_text().strip()
        option.click()
        wait_idle(page)
        summary = page.get_by_text(re.compile(rf"{re.escape(first_user)} in these days, filters applied"))
        try:
            summary.wait_for(timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
    else:
        pytest.fail("the drill-down box never listed a user")
    line = summary.inner_text()
    page.screenshot(path=str(ARTIFACTS / "spend-2-drill.png"), full_page=True)

    with page.expect_download() as dl:
        page.locator(".st-key-csv-user_models button").click()
    with open(dl.value.path(), encoding="utf-8") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    # the CSV's headers are the table's labels; the filter applies to the drill-down
    assert rows and {r["provider"] for r in rows} == {"openai"}
    credits = sum(int(r["credits"]) for r in rows)
    revenue = sum(Decimal(r["revenue"]) for r in rows)
    requests = sum(int(r["requests"]) for r in rows)
    shown = dict(re.findall(r"([\d,]+) (requests|credits)", line)[i][::-1] for i in range(2))
    assert int(shown["credits"].replace(",", "")) == credits
    assert int(shown["requests"].replace(",", "")) == requests
    shown_revenue = _money(re.search(r"revenue (\$[\d,.]+)", line).group(1))
    assert shown_revenue == revenue.quantize(shown_revenue)


def test_grouping_empty_state_and_download_labels(app_url: str, page) -> None:
    page.goto(f"{app_url}/spend")
    wait_idle(page, timeout=120_000)
    page.wait_for_selector("h1:has-text('Spend')")
    # today is still running: its bar is marked partial, not drawn as a drop
    page.get_by_text("The last bar (today) is partial").wait_for()
    # the download buttons' labels fit (none cut to "CS…")
    buttons = page.locator('[data-testid="stDownloadButton"] button')
    buttons.nth(3).wait_for()
    wait_idle(page)
    for i in range(buttons.count()):
        assert buttons.nth(i).evaluate("b => b.scrollWidth <= b.clientWidth + 1"), buttons.nth(i).inner_text()
    page.locator('[data-testid="stSidebar"] button:has-text("Week")').click()
    wait_idle(page)
    page.get_by_text("The last bar (this week) is partial").wait_for()
    page.screenshot(path=str(ARTIFACTS / "spend-3-weeks.png"), full_page=True)

    _choose(page, "providers", "sandbox")  # sandbox calls only: hidden by default
    page.get_by_text(re.compile(r"sandbox calls in it are hidden")).wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # no empty axes
    page.screenshot(path=str(ARTIFACTS / "spend-4-empty.png"), full_page=True)
    page.locator(".st-key-sandbox label").first.click()
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
