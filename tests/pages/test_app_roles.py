"""The router lands each role on its first allowed page; a page refuses a role that may not open it."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.users import add_user
from tests.conftest import make_runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("roles")
    url = f"sqlite:///{tmp / 'app.db'}"
    rt = make_runtime(url, tmp)
    with rt.session() as s:
        add_user(s, email="ada@x.io", name="Ada", role="admin")
        add_user(s, email="fin@x.io", name="Fin", role="finance")
        add_user(s, email="eng@x.io", name="Eng", role="engineer")
        add_user(s, email="pm@x.io", name="Pam", role="pm")
    rt.dispose()
    return url


@pytest.mark.parametrize(
    ("email", "landing"),
    [("ada@x.io", "Overview"), ("fin@x.io", "Overview"), ("eng@x.io", "Playground"), ("pm@x.io", "Playground")],
)
def test_landing_page_per_role(db: str, monkeypatch: pytest.MonkeyPatch, email: str, landing: str) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("LOCAL_USER_EMAIL", email)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == landing
    assert "Local mode" in at.sidebar.caption[0].value


def test_page_refuses_a_role_that_may_not_open_it(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("LOCAL_USER_EMAIL", "pm@x.io")
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert "cannot open this page" in at.error[0].value
    assert not at.metric, "no figures leak before the guard stops the page"


@pytest.fixture
def local_mode(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Local mode on the four-role database with nothing chosen yet (no LOCAL_USER_EMAIL, a fresh data folder)."""
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    monkeypatch.delenv("LOCAL_USER_EMAIL", raising=False)
    return db


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_local_mode_starts_as_the_least_privileged_person(local_mode: str) -> None:
    at = app().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="acting_role").value == "pm"
    assert at.selectbox(key="acting_person_pm").value == "pm@x.io"
    assert at.title[0].value == "Playground"
    assert at.query_params["as"] == "pm@x.io"


def test_acting_as_is_a_role_then_a_person_and_survives_a_reload_and_a_new_tab(local_mode: str) -> None:
    at = app().run()
    assert at.selectbox(key="acting_role").options == ["Admin", "Finance", "Engineer", "PM"]
    at.selectbox(key="acting_role").set_value("finance").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="acting_person_finance").value == "fin@x.io"
    assert at.query_params["as"] == "fin@x.io"

    reload = app()
    reload.query_params["as"] = "eng@x.io"  # the URL of a reload names the person
    reload.run()
    assert reload.selectbox(key="acting_role").value == "engineer"

    new_tab = app().run()  # no ?as= at all: the last pick on this database
    assert new_tab.selectbox(key="acting_person_finance").value == "fin@x.io"


def test_an_unknown_person_in_the_url_falls_back_to_the_default(local_mode: str) -> None:
    at = app()
    at.query_params["as"] = "[x](https://evil.example)@x.io"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="acting_role").value == "pm"


def test_a_page_that_fails_shows_one_line_through_the_router(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.services.overview import OverviewService

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk I/O error at /srv/data/analytics.duckdb")

    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("LOCAL_USER_EMAIL", "ada@x.io")
    monkeypatch.setattr(OverviewService, "overview", broken)
    st.cache_data.clear()  # the Overview's figures may be cached from another test
    at = app().run()
    assert not at.exception, at.exception
    [error] = at.error
    assert "Something went wrong" in error.value and "/srv/data" not in error.value
    assert at.title[0].value == "Overview"  # the page drew up to the failure; the sidebar and navigation stay
