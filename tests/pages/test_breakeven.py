"""The Break-even page (AppTest): recommendation up front, options, charts, history from a link, scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.pages.apptest import demo_database, shown

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "breakeven.py")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_database(tmp_path_factory.mktemp("breakeven_page"), rows=3000, days=30, seed=4)


@pytest.fixture
def app(demo_db: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", demo_db)
    return AppTest.from_file(PAGE, default_timeout=120)


def _submit(at: AppTest) -> None:
    at.button(key="FormSubmitter:be_form-Simulate").click().run()


def test_defaults_reproduce_the_specifications_example(app: AppTest) -> None:
    app.run()
    assert not app.exception, app.exception
    assert "Recommendation: serverless." in app.success[0].value
    assert "breaks even with it at 60 requests/hour" in app.success[0].value
    table = app.dataframe[0].value
    assert table["option"].tolist()[:3] == ["serverless", "T4 always-on", "T4 scale-to-zero"]
    assert table.loc[table.option == "T4 always-on", "monthly_cost"].item() == 438.0  # drawn as $438.00
    captions = " ".join(c.value for c in app.caption)
    assert "**T4** 60.0" in captions and "**A100** 400.0" in captions


def test_more_traffic_makes_a_dedicated_gpu_the_answer(app: AppTest) -> None:
    app.run()
    app.number_input(key="be_rph").set_value(3000)
    _submit(app)
    assert not app.exception, app.exception
    rec = app.success[0].value
    assert "Recommendation: serverless" not in rec and "always-on" in rec
    assert "$21,900.00" in rec  # serverless: 3,000 x $0.01 x 730 hours


def test_an_invalid_input_shows_the_reason(app: AppTest) -> None:
    app.run()
    app.number_input(key="be_rph").set_value(0)
    _submit(app)
    assert not app.exception
    assert "Requests per hour must be greater than zero" in app.error[0].value


@pytest.mark.parametrize(
    ("key", "typed", "said"),
    [
        ("be_rph", -5.0, "Requests per hour must be greater than zero, got -5."),
        ("be_hours", 0.5, "The horizon must be at least one hour, got 0.5 hours."),
        ("be_seed", -1, "The seed must be at least 0, got -1."),
        ("be_idle", 0, "The scale-to-zero idle timeout (minutes) must be at least 1, got 0."),
        ("be_cold", -30.0, "The cold-start time (seconds) cannot be negative, got -30."),
        ("be_min_rep", 0, "The minimum replicas must be at least 1, got 0."),
        ("be_slo_none", -2.0, "The p95 latency target (seconds) must be greater than zero, got -2."),
        ("be_sl_share_none", 120.0, "(0% to 100%), got 1.2 (120%)."),
        ("be_sl_share_none", -5.0, "(0% to 100%), got -0.05 (-5%)."),
        # whole-number fields: Streamlit's integer inputs read a typed 2.5 as 2 and 1e20 as 1, without a word
        ("be_max_rep", 2.5, "Max replicas: 2.5 is not a whole number; type 2 or 3."),
        ("be_idle", 7.5, "Scale-to-zero after (idle minutes): 7.5 is not a whole number; type 7 or 8."),
        ("be_max_rep", 1e20, "The maximum replicas must be"),
    ],
)
def test_every_number_says_the_value_that_was_typed(app: AppTest, key: str, typed: float, said: str) -> None:
    """Nothing is clamped on the way: the message names what the person typed, never a stale or clamped value."""
    app.run()
    app.number_input(key=key).set_value(typed)
    _submit(app)
    assert not app.exception, app.exception
    assert said in shown(app.error[0].value)


def test_a_model_too_big_for_any_gpu_shows_why(app: AppTest) -> None:
    app.run()
    app.selectbox(key="be_model").set_value("meta-llama/Llama-3.3-70B-Instruct-Turbo").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    dedicated = table[table.option != "serverless"]
    assert dedicated["excluded"].str.contains("140 GB").all()
    assert "Recommendation: serverless." in app.success[0].value


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_the_endpoints_link_opens_a_models_real_traffic(app: AppTest, monkeypatch: pytest.MonkeyPatch, tz: str) -> None:
    """Its days are the reporting time zone's, named on the date pickers and in the caption."""
    monkeypatch.setenv("REPORTING_TZ", tz)
    st.cache_resource.clear()  # the engine (and its settings) is built once per database: build it in this zone
    st.cache_data.clear()
    app.query_params["model"] = "suno/bark"
    app.query_params["profile"] = "history"
    app.run()
    assert not app.exception, app.exception
    assert app.toggle(key="be_history").value is True
    assert [d.label for d in app.date_input] == [f"From ({tz})", f"To ({tz}, inclusive)"]
    [caption] = [c.value for c in app.caption if "Real traffic of suno/bark" in c.value]
    assert f"00:00 {tz} to " in caption and f" {tz} (" in caption and "UTC" not in caption.replace(tz, "")
    assert app.success or app.warning


def test_the_endpoints_link_brings_the_endpoints_own_settings(app: AppTest) -> None:
    for key, value in {"model": "suno/bark", "profile": "history", "hardware": "L4", "idle": "30"}.items():
        app.query_params[key] = value
    app.query_params["min_replicas"] = "2"
    app.query_params["max_replicas"] = "3"
    app.run()
    assert not app.exception, app.exception
    inputs = {n.label: n.value for n in app.number_input}
    assert inputs["Scale-to-zero after (idle minutes)"] == 30
    assert (inputs["Min replicas"], inputs["Max replicas"]) == (2, 3)
    assert app.selectbox(key="be_timeline_gpu").value == "L4"  # the endpoint's GPU shown over time


def test_two_saved_scenarios_are_compared_side_by_side(app: AppTest) -> None:
    app.run()
    app.button(key="be_save_a").click().run()
    app.number_input(key="be_rph").set_value(600)
    _submit(app)
    app.button(key="be_save_b").click().run()
    assert not app.exception, app.exception
    assert len(app.dataframe) == 2, [c.value for c in app.caption]
    compare = app.dataframe[1].value
    row = compare[compare.option == "serverless"].iloc[0]
    assert (row["a_cost"], row["b_cost"], row["change"]) == (438.0, 4380.0, 3942.0)


def test_a_serverless_models_cold_start_is_a_setting_from_the_catalog(app: AppTest) -> None:
    app.run()
    app.selectbox(key="be_model").set_value("facebook/mms-tts-eng").run()
    assert not app.exception, app.exception
    k = "facebook/mms-tts-eng"
    cold, share = app.number_input(key=f"be_sl_cold_{k}"), app.number_input(key=f"be_sl_share_{k}")
    assert (cold.value, share.value) == (5.0, 5.0)  # seconds, % of requests: the catalog's figures
    table = app.dataframe[0].value
    serverless = table[table.option == "serverless"].iloc[0]
    assert (serverless["cold_starts"], serverless["p95"], serverless["meets_slo"]) == (5.0, 6.5, "no")
    assert "serverless would cost less" in app.success[0].value
    assert "a 5 s cold start for 5% of its requests included" in app.success[0].value

    share.set_value(0.0)
    _submit(app)
    assert not app.exception, app.exception
    assert "Recommendation: serverless." in app.success[0].value
