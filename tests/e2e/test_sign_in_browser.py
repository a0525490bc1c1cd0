"""OpenID Connect sign-in against a local provider (oidc-provider-mock): each person lands on their role's pages,
an unknown email is told to ask an admin, and a page outside the role cannot be opened by URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.users import add_user
from tests.conftest import make_runtime
from tests.e2e.server import ARTIFACTS, free_port, streamlit_server, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    from oidc_provider_mock import run_server_in_thread

    tmp = tmp_path_factory.mktemp("oidc")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, Path(tmp))
    with rt.session() as s:
        add_user(s, email="fin@corp.example", name="Fiona Finance", role="finance")
        add_user(s, email="pm@corp.example", name="Pat Product", role="pm")
    rt.dispose()
    with run_server_in_thread() as oidc:
        port = free_port()
        secrets = tmp / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-of-enough-length"\n'
            'client_id = "ai-credits"\n'
            'client_secret = "test-client-secret"\n'
            f'server_metadata_url = "http://localhost:{oidc.server_port}/.well-known/openid-configuration"\n'
        )
        env = {"DATABASE_URL": url, "ANALYTICS_PATH": str(tmp / "a.duckdb")}
        with streamlit_server(env, ["--secrets.files", str(secrets)], port=port) as base:
            yield base.replace("127.0.0.1", "localhost")


def sign_in(page, base: str, email: str) -> None:
    page.goto(base)
    wait_idle(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("input[name=sub]", timeout=30_000)
    page.fill("input[name=sub]", email)
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.wait_for_url(f"{base}/**", timeout=30_000)
    wait_idle(page)


def test_finance_lands_on_overview(oidc_app: str, page) -> None:
    sign_in(page, oidc_app, "fin@corp.example")
    page.wait_for_selector("h1:has-text('Overview')", timeout=30_000)
    assert page.get_by_text("Signed in as").count() == 1
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Spend" in nav and "Ledger" in nav and "Endpoints" not in nav
    page.screenshot(path=str(ARTIFACTS / "oidc-finance.png"), full_page=True)


def test_pm_sees_only_pm_pages(oidc_app: str, page) -> None:
    sign_in(page, oidc_app, "pm@corp.example")
    page.wait_for_selector("h1:has-text('Playground')", timeout=30_000)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Overview" not in nav and "Break-even" not in nav and "Endpoints" not in nav
    page.goto(f"{oidc_app}/endpoints")
    wait_idle(page)
    assert page.locator("h1:has-text('Endpoints')").count() == 0
    page.wait_for_selector("h1:has-text('Playground')", timeout=30_000)  # their own first page, saying why
    assert page.get_by_text("Endpoints is for admins and engineers", exact=False).count() == 1
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(ARTIFACTS / "oidc-pm-endpoints-url.png"), full_page=True)


def test_a_page_link_before_signing_in_opens_the_sign_in_page(oidc_app: str, page) -> None:
    page.goto(oidc_app)  # the server past its first request
    wait_idle(page)
    page.goto(f"{oidc_app}/ledger")  # a shared link, nobody signed in yet
    wait_idle(page)
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert page.get_by_text("Page not found").count() == 0


def test_unknown_email_is_told_to_ask_an_admin(oidc_app: str, page) -> None:
    sign_in(page, oidc_app, "stranger@corp.example")
    page.wait_for_selector("text=Ask an admin to add you", timeout=30_000)
