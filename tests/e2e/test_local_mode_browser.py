"""Local mode in a real browser: "Acting as" is a role then a person, the pick survives a reload (?as= in the URL),
and every role's navigation keeps the same sections in the same order."""

from __future__ import annotations

import pytest

from tests.e2e.server import ARTIFACTS, choose, wait_idle

pytestmark = pytest.mark.browser


def sections(page) -> list[str]:
    return [h.inner_text().strip() for h in page.locator('[data-testid="stNavSectionHeader"]').all()]


def test_acting_as_finance_survives_a_reload_and_keeps_the_section_order(app_url: str, page) -> None:
    page.goto(app_url)
    wait_idle(page)
    admin = sections(page)
    assert admin[:2] == ["Build", "Finance"], admin
    try:
        choose(page, "acting_role", "Finance")
        assert "as=" in page.url  # the URL names the person, so a reload keeps them
        page.reload()
        wait_idle(page)
        assert page.locator(".st-key-acting_person_finance").count() == 1  # still finance after the reload
        finance = sections(page)
        assert finance == [s for s in admin if s in finance], (admin, finance)  # the same order, fewer sections
        assert "Engineering" not in finance and "Build" in finance
        page.screenshot(path=str(ARTIFACTS / "local-mode-finance.png"), full_page=True)
    finally:
        choose(page, "acting_role", "Admin")  # the pick is remembered for new tabs: leave the admin for the others
