"""The Endpoints page in AppTest: the how-to without configuration, and the lifecycle on the local stand-in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.users import add_user
from tests.conftest import make_runtime
from tests.pages.apptest import shown

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "endpoints.py")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    rt = make_runtime(url, tmp_path)
    with rt.session() as s:
        add_user(s, email="eng@example.com", name="Eng", role="engineer")
    rt.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    for var in ("HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGINGFACE_TOKEN", "HF_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_without_configuration_the_page_explains_it(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "https://api.endpoints.huggingface.cloud/v2")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "HF_TOKEN" in text and "HF_NAMESPACE" in text and "HF_ENDPOINTS_API_URL=local" in text
    assert not at.button  # nothing to click when nothing can work


def test_create_pause_and_see_cost_on_the_local_stand_in(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("No endpoints yet" in i.value for i in at.info)
    hardware_labels = at.selectbox(key="new_hardware").options
    t4 = "T4 · nvidia-t4 (16 GB) - $0.60/h per replica, HF live $0.50/h"
    assert any(label.startswith(t4) for label in hardware_labels)

    at.text_input(key="new_name").input("page-audio")
    at.selectbox(key="new_hardware").select(next(x for x in hardware_labels if x.startswith("L4")))
    at.button(key="do_create").click().run()
    assert not at.exception, at.exception
    assert any("Created page-audio (L4, $0.80/h per replica): pending" in shown(s.value) for s in at.success)
    table = at.dataframe[0].value
    assert list(table["name"]) == ["page-audio"]
    assert table["hourly_usd"][0] == pytest.approx(0.80)
    assert (db / "endpoints_local.json").exists()

    at.button(key="do_pause").click().run()
    assert not at.exception, at.exception
    assert any("Paused page-audio: now paused" in shown(s.value) for s in at.success)
    assert at.dataframe[0].value["state"][0] == "paused"
    links = " ".join(m.value for m in at.markdown)
    assert "Break-even with this endpoint's traffic and settings" in links
    # the endpoint's own settings travel with the model: hardware, replicas, idle timeout
    assert (
        "/breakeven?model=facebook%2Fmms-tts-eng&profile=history&hardware=L4&min_replicas=0&max_replicas=1&idle=15"
        in links
    )
    assert at.text_input(key="new_name").value == ""  # the Name field cleared after the create

    at.button(key="do_meter").click().run()
    assert not at.exception, at.exception
    assert any(shown(s.value).startswith("Metered: 0 hour(s) charged") for s in at.success)

    at.button(key="do_resume").click().run()
    at.button(key="do_scale_to_zero").click().run()
    assert any("page-audio: now scaled to zero" in shown(s.value) for s in at.success)  # not "scaledToZero"
    at.text_input(key="confirm_page-audio").input("page-audio").run()
    at.button(key="do_delete").click().run()
    assert not at.exception, at.exception
    assert any(shown(s.value) == "Deleted page-audio." for s in at.success)  # it read "now deleted"


def test_invalid_name_shows_the_rule(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="new_name").input("Bad Name")
    at.button(key="do_create").click().run()
    assert any("lowercase letters, digits and hyphens" in e.value for e in at.error)
    assert not at.dataframe


@pytest.mark.parametrize(
    ("key", "typed", "said"),
    [
        ("new_max", 2.5, "Max replicas: 2.5 is not a whole number; type 2 or 3."),
        ("new_max", 1e9, "Max replicas must be between 1 and 10, got 1000000000."),  # an integer field read 1
        ("new_idle", 1e20, "Scale to zero after at most 43,200 minutes (30 days)"),
    ],
)
def test_a_number_that_is_not_whole_or_too_large_is_refused_naming_it(
    db: Path, monkeypatch: pytest.MonkeyPatch, key: str, typed: float, said: str
) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="new_name").input("ok-name")
    at.number_input(key=key).set_value(typed)
    at.button(key="do_create").click().run()
    assert not at.exception and any(said in shown(e.value) for e in at.error), [e.value for e in at.error]
    assert not at.dataframe  # nothing created


def test_demo_button_fills_the_page_with_history(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.button(key="do_demo").click().run()
    assert not at.exception, at.exception
    message = next(shown(s.value) for s in at.success if shown(s.value).startswith("Demo loaded: demo-chat, demo-tts"))
    hours = int(re.search(r"(\d+) hours metered", message).group(1))
    assert hours > 24  # three days of a daytime chat endpoint and a scale-to-zero TTS endpoint
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["demo-chat", "demo-tts"]
    assert (table["month_usd"] >= 0).all()  # (the demo's days may fall in last month)
    assert at.get("plotly_chart")  # the state timeline


def test_an_engineer_can_bill_only_themselves(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pages.apptest import open_page

    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    rt = make_runtime(f"sqlite:///{db / 'app.db'}", db)
    with rt.session() as s:
        add_user(s, email="boss@example.com", name="Boss", role="admin")
        add_user(s, email="pm@example.com", name="Pm", role="pm")
    rt.dispose()
    eng = open_page("endpoints", acting_as="eng@example.com")
    owner = eng.selectbox(key="new_owner")
    assert owner.options == ["eng@example.com"] and owner.disabled
    admin = open_page("endpoints", acting_as="boss@example.com")
    owner = admin.selectbox(key="new_owner")
    assert owner.options[0] == "boss@example.com" and set(owner.options) == {
        "boss@example.com",
        "eng@example.com",
        "pm@example.com",
    }
    assert not owner.disabled


def test_a_repository_the_hub_does_not_know_is_refused_on_the_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINTS_API_URL", "local")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="new_name").input("typo")
    at.text_input(key="new_model").input("acme/no-such-model")
    at.button(key="do_create").click().run()
    assert not at.exception
    assert any("not found (simulated" in shown(e.value) for e in at.error)
    assert at.text_input(key="new_name").value == "typo"  # kept, to fix and retry
