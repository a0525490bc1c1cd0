"""The Playground on the sandbox (no API keys): chat streams a reply and shows its cost card; speech, images,
transcription and compare mode work; a refused call shows a message, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.billing import BillingService
from core.db import Database
from core.db.models import AIUsageLog
from core.providers.sandbox import LABEL
from core.users import add_user, get_user
from pages.ui import plain
from tests.conftest import make_runtime
from tests.core.providers.fakes import wav_bytes

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "playground.py")
KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "MINIMAX_API_KEY",
    "TOGETHER_API_KEY",
    "HUGGINGFACE_API_KEY",
    "HF_TOKEN",
    "HUGGINGFACE_TOKEN",
)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    rt = make_runtime(url, tmp_path)
    with rt.session() as s:
        ana = add_user(s, email="ana@example.com", name="Ana", role="pm", markup_pct=Decimal(100))
        add_user(s, email="ben@example.com", name="Ben", role="engineer", markup_pct=Decimal(50))
    BillingService(rt.session_factory, rt.settings).grant(ana.id, 250, note="test")
    for k in KEY_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    return rt


def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def usage_rows(rt: Database) -> list[AIUsageLog]:
    with rt.session() as s:
        return list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))


@contextmanager
def openai_configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppTest, Any]]:
    """The page with an OpenAI key (a fake one) pointed at a loopback server that answers like OpenAI."""
    from tests.support.loopback import loopback_openai

    with loopback_openai() as (base_url, state):
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-playground-0000")
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        yield app(), state


def test_without_keys_only_the_sandbox_is_offered(db: Database) -> None:
    at = app()
    assert at.selectbox(key="pg_provider_chat").options == ["sandbox (simulated)"]
    assert any("Simulated" in i.value for i in at.info)
    assert any("Not offered until their API key is set" in c.value for c in at.caption)
    model_label = at.selectbox(key="pg_model_chat_sandbox").value
    assert model_label is not None
    assert metric(at, "Available credits") == "250"


def test_chat_streams_a_reply_and_shows_the_cost_card(db: Database) -> None:
    at = app()
    at.chat_input[0].set_value("What does a credit cost?").run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    assert any(plain(LABEL) in t for t in texts) and any("What does a credit cost?" in t for t in texts)
    assert int(metric(at, "Would cost (not charged)")) >= 2  # 1 base credit at least, 100% markup
    assert not [m for m in at.metric if m.label == "Credits charged"]
    assert metric(at, "Markup") == "100%"
    assert metric(at, "Balance after") == "250"
    base = metric(at, "Provider cost (USD)")
    assert base.startswith("$0.000") and Decimal(base[1:]) > 0
    # the note is escaped for Markdown (it may name dollar amounts, which Streamlit would read as LaTeX)
    said = plain("Simulated by the sandbox: no model was called and nothing was charged")
    assert any(said in c.value for c in at.caption)
    [row] = usage_rows(db)
    assert row.sandbox and row.cost_credits == 0 and row.base_cost_usd == Decimal(base[1:])
    assert metric(at, "This session") == "0 credits"


def test_conversation_keeps_history(db: Database) -> None:
    at = app()
    at.chat_input[0].set_value("first").run()
    at.chat_input[0].set_value("second").run()
    assert not at.exception
    assert len(at.chat_message) == 4 and len(usage_rows(db)) == 2


def test_text_to_speech_plays_and_costs(db: Database) -> None:
    at = app()
    at.selectbox(key="pg_category").set_value("tts").run()
    at.text_area(key="pg_tts_text").set_value("Hello from the sandbox, this is a test.").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.get("audio"), "no audio player"
    assert metric(at, "Balance after") == "250"
    [row] = usage_rows(db)
    assert row.characters == len("Hello from the sandbox, this is a test.") and row.duration_seconds > 0


def test_image_generation(db: Database) -> None:
    at = app()
    at.selectbox(key="pg_category").set_value("image").run()
    at.selectbox(key="pg_model_image_sandbox").set_value("sandbox-image").run()  # the twin of DALL-E 3
    at.text_area(key="pg_image_prompt").set_value("a lighthouse at **dusk**").run()
    at.selectbox(key="pg_quality").set_value("hd").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.image, "no image"
    assert at.image[0].proto.imgs[0].caption == plain("a lighthouse at **dusk**")  # typed: not Markdown
    assert metric(at, "Provider cost (USD)") == "$0.08"  # hd 1024x1024 on DALL-E 3, the mirrored model
    assert metric(at, "Base credits") == "2"


def test_speech_to_text_from_an_upload(db: Database) -> None:
    at = app()
    at.selectbox(key="pg_category").set_value("speech_to_text").run()
    at.file_uploader(key="pg_stt_file").upload("talk.wav", wav_bytes(2.0), "audio/wav").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("2-second WAV" in t.value for t in at.text_area)
    [row] = usage_rows(db)
    assert row.duration_seconds == Decimal("2.000")


def test_compare_mode_works_offline(db: Database) -> None:
    """No key at all: GPT-4o, GPT-4o mini and Llama through their simulated twins, priced as the real models, the
    cheapest marked, nothing charged."""
    at = app()
    at.segmented_control(key="pg_mode").set_value("Compare").run()
    assert not at.exception
    assert next(b for b in at.button if b.label == "Compare").disabled  # no prompt yet
    chosen = [
        "sandbox/sandbox:openai/gpt-4o",
        "sandbox/sandbox-chat",
        "sandbox/sandbox:huggingface/meta-llama/Llama-3.1-8B-Instruct",
    ]
    at.multiselect(key="pg_compare_models").set_value(chosen).run()
    at.text_area(key="pg_compare_prompt").set_value("Name three rivers.").run()
    next(b for b in at.button if b.label == "Compare").click().run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader][:3] == [
        "GPT-4o (simulated)",
        "GPT-4o mini (simulated)",
        "Llama 3.1 8B Instruct (simulated)",
    ]
    summary = at.dataframe[0].value
    assert list(summary["priced_as"]) == [
        "openai/gpt-4o (simulated)",
        "openai/gpt-4o-mini (simulated)",
        "huggingface/meta-llama/Llama-3.1-8B-Instruct (simulated)",
    ]
    assert "cheapest" in summary["mark"][2]
    assert all(cost.startswith("$0.0") for cost in summary["cost"])
    # each answer's line under it: a cheap call is "1 base credit" (the one rule for credits in sentences)
    lines = [c.value for c in at.caption if " · markup " in c.value]
    assert len(lines) == 3 and all(" · 1 base credit · " in line for line in lines), lines
    assert any("whole-credit rounding" in c.value for c in at.caption)
    assert metric(at, "Available credits") == "250"
    assert {(r.provider, r.cost_credits) for r in usage_rows(db)} == {("sandbox", 0)}


def test_a_bad_upload_shows_a_message_not_a_traceback(db: Database) -> None:
    at = app()
    at.selectbox(key="pg_category").set_value("speech_to_text").run()
    at.file_uploader(key="pg_stt_file").upload("talk.wav", b"this is not audio", "audio/wav").run()
    at.button[0].click().run()
    assert not at.exception
    assert any("Cannot measure this audio" in e.value for e in at.error)
    assert usage_rows(db) == []


def test_compare_two_models_with_a_configured_provider(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an OpenAI key (a fake one, against a loopback server) OpenAI is offered and compare mode bills each call."""
    with openai_configured(monkeypatch) as (at, state):
        assert "openai" in at.selectbox(key="pg_provider_chat").options
        at.segmented_control(key="pg_mode").set_value("Compare").run()
        at.multiselect(key="pg_compare_models").set_value(["openai/gpt-4o-mini", "sandbox/sandbox-chat"]).run()
        at.text_area(key="pg_compare_prompt").set_value("Say hello").run()
        at.button[0].click().run()
        assert not at.exception, at.exception
        assert [h.value for h in at.subheader] == ["GPT-4o mini", "GPT-4o mini (simulated)", "Summary"]
        assert any("Hello from the loopback." in m.value for m in at.markdown)
        charged = [m.value for m in at.metric if m.label == "Credits charged"]
        would_be = [m.value for m in at.metric if m.label == "Would cost (not charged)"]
        assert charged == ["2"] and would_be == ["2"]  # the real call is billed; the simulated one would cost as much
        assert len(state.requests) == 1 and state.requests[0].path == "/v1/chat/completions"
    rows = usage_rows(db)
    assert sorted((r.provider, r.cost_credits) for r in rows) == [("openai", 2), ("sandbox", 0)]


def test_compare_speech_from_two_models(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compare mode beyond chat: one text spoken by OpenAI's tts-1 and the sandbox, each with its player and cost."""
    with openai_configured(monkeypatch) as (at, state):
        at.segmented_control(key="pg_mode").set_value("Compare").run()
        at.selectbox(key="pg_compare_category").set_value("tts").run()
        at.multiselect(key="pg_compare_models_tts").set_value(["openai/tts-1", "sandbox/sandbox-tts"]).run()
        at.text_area(key="pg_compare_prompt").set_value("Welcome aboard!").run()
        next(b for b in at.button if b.label == "Compare").click().run()
        assert not at.exception, at.exception
        assert len(at.get("audio")) == 2
        charged = [m.value for m in at.metric if m.label == "Credits charged"]
        assert len(charged) == 1 and int(charged[0]) > 0
        assert [r.path for r in state.requests] == ["/v1/audio/speech"]
    assert sorted(r.provider for r in usage_rows(db)) == ["openai", "sandbox"]


def test_sidebar_totals_include_the_call_just_made(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with openai_configured(monkeypatch) as (at, _):
        at.selectbox(key="pg_category").set_value("tts").run()
        at.selectbox(key="pg_provider_tts").set_value("openai").run()
        at.text_area(key="pg_tts_text").set_value("Hello " * 1000).run()  # 6,000 chars of tts-1 = $0.09
        at.button[0].click().run()
        assert not at.exception, at.exception
        assert metric(at, "Credits charged") == "6"  # 3 base credits at 100% markup
        assert metric(at, "This session") == "6 credits"
        assert metric(at, "Available credits") == "244" and metric(at, "Balance after") == "244"


def test_an_admin_chooses_whose_credits_pay(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.session() as s:
        add_user(s, email="ada@example.com", name="Ada", role="admin", markup_pct=Decimal(100))
    monkeypatch.setenv("LOCAL_USER_EMAIL", "ada@example.com")
    at = app()
    payer = at.selectbox(key="pg_payer")
    assert payer.options == ["Ada <ada@example.com>", "Ana <ana@example.com>", "Ben <ben@example.com>"]  # herself first
    assert metric(at, "Available credits") == "0"
    with db.session() as s:
        ana_id = get_user(s, "ana@example.com").id
    payer.set_value(ana_id).run()
    assert metric(at, "Available credits") == "250"


def test_a_pm_sees_no_payer_choice(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_USER_EMAIL", "ana@example.com")
    at = app()
    assert not [s for s in at.selectbox if s.key == "pg_payer"]


def test_what_a_person_types_is_shown_as_typed_not_as_markdown(db: Database) -> None:
    at = app()
    typed = "<b>x</b> **bold** $x^2$ :red[y]"
    at.chat_input[0].set_value(typed).run()
    at.chat_input[0].set_value("again").run()  # the first message now drawn from the history
    assert not at.exception, at.exception
    mine = [m.markdown[0].value for m in at.chat_message if m.name == "user"]
    assert mine[0] == plain(typed) and mine[1] == "again"  # escaped: no bold, no LaTeX, no colour
    # the sandbox's answer quotes what was typed: shown as text too (it was Markdown: bold, LaTeX, a live link)
    answers = [m.markdown[0].value for m in at.chat_message if m.name == "assistant"]
    assert len(answers) == 2 and all(a.startswith(plain(LABEL)) for a in answers), answers
    assert "**bold**" not in answers[0] and plain("**bold**") in answers[0]


def test_a_typed_link_is_never_live(db: Database) -> None:
    """Streamlit links bare URLs and www. names in any text, escaped or not: `plain` keeps them text. An email stays
    whole (copied into a command, a hidden character would break it)."""
    typed = "see http://evil.example, www.evil.example or ana@evil.example"
    shown = plain(typed)
    for linked in ("http://", "www."):
        assert linked not in shown.replace("\\", "")
    assert shown.replace("\\", "").replace("\u2060", "") == typed and "ana@evil\\.example" in shown
    icon = plain("A :material/home: B")  # Streamlit draws an icon for this, escaped or not
    assert ":material/" not in icon.replace("\\", "") and icon.replace("\\", "").replace("\u2060", "") == (
        "A :material/home: B"
    )


def test_a_call_that_ends_while_the_database_is_down_shows_its_charge_as_pending(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is shown; the card says "pending" where the charge and the balance after would be, and why; the
    charge is posted once the database is back."""
    import sqlite3

    from core.billing.spool import SpoolDrainer

    def down(*args: object, **kwargs: object) -> object:
        raise sqlite3.OperationalError("unable to open database file")

    with openai_configured(monkeypatch) as (at, _state):
        monkeypatch.setattr(BillingService, "settle", down)
        monkeypatch.setattr(SpoolDrainer, "wake", lambda self: None)
        at.selectbox(key="pg_provider_chat").set_value("openai").run()
        at.selectbox(key="pg_model_chat_openai").set_value("gpt-4o-mini").run()
        at.chat_input[0].set_value("Say hello").run()
        assert not at.exception, at.exception
        assert any("Hello from the loopback." in m.value for m in at.markdown)
        assert metric(at, "Credits charged") == "pending" and metric(at, "Balance after") == "pending"
        assert any(plain("its charge is kept on this server") in c.value for c in at.caption)
        assert "1 charge pending" in next(m.delta for m in at.metric if m.label == "This session")
    assert usage_rows(db) == []
    billing = BillingService(db.session_factory, db.settings)
    monkeypatch.undo()
    assert billing.drain_spool().posted == 1
    [row] = usage_rows(db)
    assert (row.provider, row.cost_credits) == ("openai", 2)


def test_a_chat_message_can_show_the_model_images(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import json

    from tests.support.loopback import PNG_1PX

    with openai_configured(monkeypatch) as (at, state):
        at.selectbox(key="pg_provider_chat").set_value("openai").run()
        at.selectbox(key="pg_model_chat_openai").set_value("gpt-4o-mini").run()
        at.chat_input[0].set_value("What is in this image?").upload("dot.png", PNG_1PX, "image/png").run()
        assert not at.exception, at.exception
        assert at.get("image"), "the attached image is not shown"
        png = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
        assert json.loads(state.requests[-1].body)["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": png}},
                ],
            }
        ]
        at.chat_input[0].set_value("And now?").run()  # the image stays in the conversation sent next
        assert not at.exception, at.exception
        sent = json.loads(state.requests[-1].body)["messages"]
        assert sent[0]["content"][1]["image_url"]["url"] == png and sent[-1] == {"role": "user", "content": "And now?"}
        assert len(at.get("image")) == 1  # drawn again from the history
    rows = usage_rows(db)
    assert len(rows) == 2 and all(r.cost_credits > 0 for r in rows)
