"""The Savings and Pricing lab pages in AppTest: what they draw equals the engine's answer, the controls change it,
an endpoint opportunity links to a filled-in create form, and only the roles that may open them can."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.billing import UsageRecord
from core.db import Database
from core.usage import Usage
from pages.fmt import price
from tests.core.billing.conftest import catalog_model
from tests.core.optimize.history import DAYS, START, model, steady, user, write_usage
from tests.core.optimize.test_pricing_lab import billing
from tests.pages.apptest import page_path


def _open(name: str, rt: Database, monkeypatch: pytest.MonkeyPatch, email: str = "ana@example.com") -> AppTest:
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(rt.settings.analytics_path))
    monkeypatch.setenv("LOCAL_USER_EMAIL", email)
    at = AppTest.from_file(page_path(name), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def steady_bark(sqlite_runtime: Database) -> Database:
    """200 requests/hour of suno/bark at $0.01 for two weeks: a T4 always-on saves $1,022 a month."""
    rt = sqlite_runtime
    write_usage(rt, user(rt, "ana@example.com"), model(rt, "suno/bark"), steady(200), "0.01")
    user(rt, "fin@example.com", role="finance")
    user(rt, "pm@example.com", role="pm")
    return rt


def test_savings_lists_the_opportunity_with_its_evidence_and_a_filled_in_form(
    steady_bark: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open("savings", steady_bark, monkeypatch)  # ana is an engineer
    assert any("No saving" in i.value for i in at.info)  # the default period (the last 30 days) has no traffic
    at.date_input(key="days").set_value((START.date(), START.date() + timedelta(days=DAYS - 1))).run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Savings a month" and at.metric[0].value == "$1,022.00"
    table = at.dataframe[0].value
    assert list(table["subject"]) == ["suno/bark"] and list(table["kind"]) == ["Dedicated GPU"]
    assert "#1 · \\$1,022\\.00/month · Dedicated GPU · suno/bark" in at.expander[0].label
    evidence = dict(zip(at.dataframe[1].value["figure"], at.dataframe[1].value["value"], strict=True))
    assert evidence["recommended option"] == "T4 always-on"
    # a per-request price is written by the pages' own price rule (the label carries the "$")
    assert "$" + evidence["serverless cost per request ($)"] == price(Decimal("0.01"), digits=3) == "$0.01"
    [link] = [m.value for m in at.expander[0].markdown if "create form" in m.value]
    assert "(/endpoints?create_name=bark-t4&create_model=suno%2Fbark&create_hardware=T4&create_min=1" in link


def test_finance_sees_savings_without_the_create_link_and_a_pm_cannot_open_it(
    steady_bark: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open("savings", steady_bark, monkeypatch, "fin@example.com")
    at.date_input(key="days").set_value((START.date(), START.date() + timedelta(days=DAYS - 1))).run()
    assert at.metric[0].value == "$1,022.00" and not [m for m in at.markdown if "create form" in m.value]
    at = _open("savings", steady_bark, monkeypatch, "pm@example.com")
    assert "cannot open this page" in at.error[0].value and not at.metric


def test_the_endpoints_create_form_is_filled_in_from_the_link(
    sqlite_runtime: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rt = sqlite_runtime
    user(rt, "ana@example.com")
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("LOCAL_USER_EMAIL", "ana@example.com")
    at = AppTest.from_file(page_path("endpoints"), default_timeout=60)
    at.query_params.update(
        create_name="bark-t4", create_model="suno/bark", create_hardware="T4", create_min="1", create_max="2"
    )
    at.run()
    assert not at.exception, at.exception
    assert at.text_input(key="new_name").value == "bark-t4" and at.text_input(key="new_model").value == "suno/bark"
    assert at.selectbox(key="new_hardware").value.startswith("T4")
    assert (at.number_input(key="new_min").value, at.number_input(key="new_max").value) == (1, 2)
    assert any("Filled in from the Savings page" in i.value for i in at.info)


@pytest.fixture
def billed_today(sqlite_runtime: Database) -> Database:
    """400 calls of $0.003 billed per call at 100% today (2 credits each) by two people."""
    rt = sqlite_runtime
    b = billing(rt)
    bark = catalog_model(rt, "suno/bark")
    people = [user(rt, "fin@example.com", role="finance"), user(rt, "bo@example.com")]
    for who in people:
        b.grant(who, 5_000)
    for i in range(400):
        who = people[i % 2]
        b.settle(b.reserve(who, 2, f"c{i}"), UsageRecord(model=bark, usage=Usage(), base_cost_usd="0.003"))
    return rt


def test_pricing_lab_replays_as_billed_then_under_accrual(
    billed_today: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open("pricing_lab", billed_today, monkeypatch, "fin@example.com")
    metrics = {m.label: m for m in at.metric}
    assert metrics["Revenue billed"].value == metrics["Revenue what-if"].value == "$32.00"  # 800 credits x $0.04
    assert metrics["People paying more / less"].value == "0 / 0"
    # Spend's rounding uplift (before the markup): 400 calls x (1 credit $0.04 - $0.003 provider cost)
    assert metrics["Rounding uplift billed (as on Spend)"].value == "$14.80"
    at.radio(key="rounding").set_value("accrual").run()
    assert not at.exception, at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics["Revenue what-if"].value == "$2.40"  # 400 x 0.15 = 60 credits
    assert metrics["People paying more / less"].value == "0 / 2"
    comparison = at.dataframe[0].value.set_index("measure")
    assert float(comparison.loc["rounding beyond markup", "what_if_usd"]) == 0.0
    at.toggle(key="change_markup").set_value(True).run()
    at.slider(key="markup").set_value(0).run()
    assert {m.label: m for m in at.metric}["Revenue what-if"].value == "$1.20"  # 400 x 0.075 = 30 credits


def test_an_engineer_cannot_open_the_pricing_lab(billed_today: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open("pricing_lab", billed_today, monkeypatch, "bo@example.com")
    assert "cannot open this page" in at.error[0].value and not at.metric


def test_hints_naming_people_are_only_for_those_who_see_everyones_spend(
    steady_bark: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = steady_bark
    bo = user(rt, "bo@example.com", role="pm")
    write_usage(rt, bo, model(rt, "gpt-4o-mini"), steady(1, minutes=80 * 60), "0.001")
    write_usage(rt, bo, model(rt, "gpt-4o"), steady(1, minutes=20 * 60), "0.10")
    days = (START.date(), START.date() + timedelta(days=DAYS - 1))
    kinds = {}
    for email in ("ana@example.com", "fin@example.com"):  # an engineer, then finance
        at = _open("savings", rt, monkeypatch, email)
        at.date_input(key="days").set_value(days).run()
        kinds[email] = list(at.dataframe[0].value["kind"])
    assert kinds["ana@example.com"] == ["Dedicated GPU"]
    assert kinds["fin@example.com"] == ["Dedicated GPU", "Cheaper model (hint)"]


def test_savings_and_pricing_lab_show_their_period_in_the_reporting_time_zone(
    steady_bark: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days picked in New York are a New York period, shown in New York time as every other time on the pages; the
    caption said '2025-03-03 05:00 to 2025-03-17 03:59 UTC' for the days 3 to 16 March (the other pages' zone)."""
    monkeypatch.setenv("REPORTING_TZ", "America/New_York")
    steady_bark_days = (START.date(), START.date() + timedelta(days=DAYS - 1))
    for name, email in (("savings", "ana@example.com"), ("pricing_lab", "fin@example.com")):
        at = _open(name, steady_bark, monkeypatch, email)
        at.date_input(key="days").set_value(steady_bark_days).run()
        assert not at.exception, at.exception
        [period] = [c.value for c in at.caption if c.value.startswith("Period ")]
        # 14 local days less the hour the clocks skip on 9 March
        assert period.startswith("Period 2025-03-03 00:00 to 2025-03-16 23:59 America/New_York (14.0 days) · "), (
            name,
            period,
        )
        assert "UTC" not in period, period


def test_a_person_added_to_per_person_markups_starts_at_the_markup_they_are_billed_at(
    sqlite_runtime: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding someone to the per-person markups changes nothing until their markup is edited: it started at 100%,
    so a person billed at 150% showed as paying less under 'the same' settings."""
    rt = sqlite_runtime
    b = billing(rt)
    bark = catalog_model(rt, "suno/bark")
    user(rt, "fin@example.com", role="finance")
    cy = user(rt, "cy@example.com", markup="150")
    b.grant(cy, 5_000)
    for i in range(40):
        b.settle(b.reserve(cy, 5, f"c{i}"), UsageRecord(model=bark, usage=Usage(), base_cost_usd="0.003"))
    at = _open("pricing_lab", rt, monkeypatch, "fin@example.com")
    at.multiselect(key="people").set_value(["cy@example.com"]).run()
    assert not at.exception, at.exception
    assert at.number_input(key="m-cy@example.com").value == 150
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Revenue what-if"] == metrics["Revenue billed"] == "$4.80"  # 40 calls x 3 credits x $0.04
    assert metrics["People paying more / less"] == "0 / 0"
    at.number_input(key="m-cy@example.com").set_value(100).run()
    assert {m.label: m.value for m in at.metric}["People paying more / less"] == "0 / 1"
