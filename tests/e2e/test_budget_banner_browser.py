"""Issue 15 in a real browser: finance sets a budget on a product manager on the Budgets & alerts page; the PM chats in
the Playground on a real provider until past 80% of it, and sees the banner every page draws from their alerts.

Sandbox calls cost nothing, so this app has an OpenAI key and its base URL points at a loopback server that answers
like OpenAI (tests/support/loopback.py): each chat is billed 12 prompt and 4 output tokens of gpt-4o-mini, one base
credit, 2 credits at the PM's 100% markup. With a budget of 5 credits the first call leaves it at 40% (no alert) and
the second at 80% (the alert, and its banner)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.billing import BillingService
from core.users import add_user
from tests.conftest import make_runtime
from tests.e2e.server import ARTIFACTS, choose, streamlit_server, wait_idle
from tests.support.loopback import LoopbackState, loopback_openai

pytestmark = pytest.mark.browser

FINANCE = "fiona@corp.example"
PM = "pat@corp.example"
BANNER = "has reached 80%: 4 of 5 credits spent"


@pytest.fixture(scope="module")
def budget_app(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[tuple[str, LoopbackState]]:
    tmp = tmp_path_factory.mktemp("budget-banner")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    with rt.session() as s:
        add_user(s, email=FINANCE, name="Fiona Finance", role="finance")
        add_user(s, email=PM, name="Pat Product", role="pm")
    BillingService(rt.session_factory, rt.settings).grant(PM, 1000)  # far above the low-balance mark: no such banner
    rt.dispose()
    with loopback_openai() as (base_url, state):
        env = {
            "DATABASE_URL": url,
            "ANALYTICS_PATH": str(tmp / "analytics.duckdb"),
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": base_url,
            "LOCAL_USER_EMAIL": FINANCE,  # who the app acts as when a session starts (local mode)
        }
        with streamlit_server(env) as app:
            yield app, state


def open_from_sidebar(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title).wait_for(timeout=60_000)
    wait_idle(page)


def chat(page, message: str, cards: int) -> None:
    """Send `message` and wait until the conversation shows `cards` cost cards (the rerun after the call draws it)."""
    box = page.get_by_placeholder("Message the model")
    box.fill(message)
    box.press("Enter")
    page.get_by_text("Cost of this call").nth(cards - 1).wait_for(timeout=60_000)
    wait_idle(page)


def test_finance_sets_a_budget_and_the_pm_sees_the_banner_past_80_percent(
    budget_app: tuple[str, LoopbackState], page
) -> None:
    app, loopback = budget_app
    page.add_init_script("delete window.showSaveFilePicker")  # table CSVs download as files, without a save dialog
    page.goto(app)
    wait_idle(page)
    open_from_sidebar(page, "Budgets & alerts")

    # finance: a hard monthly budget of 5 credits on the PM, through the page's form
    page.get_by_label("User email, team name or API key id").fill(PM)
    credits = page.get_by_label("Limit (credits)").and_(page.locator("input"))
    credits.fill("5")
    credits.press("Tab")
    page.get_by_role("button", name="Save budget").click()
    page.get_by_text(f"Saved budget 1 on {PM}: 5 credits left.").wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "budget-banner-1-set.png"), full_page=True)

    # the PM, in the same browser session: local mode's "Acting as"
    choose(page, "acting_role", "PM")
    choose(page, "acting_person_pm", "pat@")
    page.get_by_text("You see your own budgets and your team's.").wait_for(timeout=60_000)
    open_from_sidebar(page, "Playground")
    choose(page, "pg_provider_chat", "openai")
    choose(page, "pg_model_chat_openai", "GPT-4o mini")
    assert page.get_by_text("Simulated.", exact=False).count() == 0  # a real provider: calls are billed

    chat(page, "What does one credit buy?", cards=1)
    page.get_by_text("Hello from the loopback.").first.wait_for()
    charged = page.locator('[data-testid="stMetric"]:has-text("Credits charged") [data-testid="stMetricValue"]')
    assert charged.last.inner_text().strip() == "2"
    assert page.get_by_text("has reached", exact=False).count() == 0  # 2 of 5 credits: under every threshold

    chat(page, "And two credits?", cards=2)
    banner = page.locator('[data-testid="stAlert"]').filter(has_text=BANNER)
    banner.first.wait_for(timeout=60_000)  # drawn by the rerun after the call, at the top of the page
    assert charged.last.inner_text().strip() == "2"
    assert f"Budget '{PM}," in banner.first.inner_text()
    banner.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "budget-banner-2-playground.png"), full_page=True)

    # every page draws it; the PM's own budgets table shows the spend behind it at once, not when its cache expires
    open_from_sidebar(page, "Budgets & alerts")
    assert page.locator('[data-testid="stAlert"]').filter(has_text=BANNER).count() == 1
    grid = page.locator('[data-testid="stDataFrame"]').first  # drawn on a canvas: read it through its CSV download
    grid.scroll_into_view_if_needed()
    grid.hover()
    button = grid.get_by_role("button", name="Download as CSV")
    button.wait_for()
    with page.expect_download() as dl:
        # the grid's toolbar floats over its top edge, where the grid's scroller or a tab list above can take a
        # pointer's click (seen in CI: "subtree intercepts pointer events" for 30 s): the click goes to the button
        button.dispatch_event("click")
    with open(dl.value.path(), encoding="utf-8-sig") as fh:
        [row] = list(csv.DictReader(fh))
    assert (row["covers"], row["kind"], row["limit"], row["spent"], row["left"]) == (PM, "hard monthly", "5", "4", "1")
    page.screenshot(path=str(ARTIFACTS / "budget-banner-3-budgets.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0

    chats = [r for r in loopback.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2 and all(r.headers["authorization"] == "Bearer sk-test" for r in chats)
    assert [json.loads(r.body)["model"] for r in chats] == ["gpt-4o-mini", "gpt-4o-mini"]
