"""The API keys page: a key is created for oneself and shown once (the database keeps only its hash), listed by its
prefix, revoked after a confirmation; a PM sees only their own keys, an admin everyone's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.access import SYSTEM
from core.db import Database
from core.db.models import ApiKey, AuditLog
from core.services import Services
from core.users import add_user
from tests.conftest import make_runtime
from tests.pages.apptest import open_page, shown


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    with rt.session() as s:
        add_user(s, email="admin@x.io", name="Admin", role="admin")
        add_user(s, email="pm@x.io", name="Pm", role="pm")
        add_user(s, email="other@x.io", name="Other", role="pm")
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    yield rt
    rt.dispose()


def run_as(email: str) -> AppTest:
    return open_page("keys", acting_as=email)


def test_a_pm_creates_a_key_sees_it_once_and_revokes_it(db: Database) -> None:
    Services(db).keys.create(SYSTEM, "other@x.io", "someone else's")
    at = run_as("pm@x.io")
    assert at.selectbox(key="key_owner").options == ["pm@x.io"]
    at.text_input(key="key_name").input("my script")
    for typed, said in (("2.5", "Requests per minute: 2.5 is not a whole number. Type 2 or 3"), ("1e20", "scientific")):
        at.text_input(key="key_rpm").input(typed)  # a browser's whole-number field took 1e20 for 1, 2.5 for 2
        next(b for b in at.button if b.label == "Create key").click().run()
        assert any(said in shown(e.value) for e in at.error), [e.value for e in at.error]
    with db.session() as s:
        assert s.scalars(select(ApiKey).where(ApiKey.name == "my script")).first() is None  # nothing made
    at.text_input(key="key_name").input("my script")
    at.text_input(key="key_rpm").input("30")
    next(b for b in at.button if b.label == "Create key").click().run()
    assert not at.exception, at.exception
    secret = at.code[0].value
    assert secret.startswith("sk-ac-") and secret in at.code[1].value  # the key, and an SDK example with it
    with db.session() as s:
        stored = s.scalars(select(ApiKey).where(ApiKey.name == "my script")).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "api_key.create")).all()
    assert stored.key_hash != secret and secret[:12] == stored.prefix and stored.rpm == 30
    assert all(secret not in str(a.details) for a in audit)
    table = at.dataframe[0].value
    assert list(table["name"]) == ["my script"] and list(table["owner"]) == ["pm@x.io"]  # not other@x.io's
    next(b for b in at.button if b.label == "I have stored it").click().run()
    assert not at.code  # shown once
    at.checkbox(key="revoke_sure").check()
    next(b for b in at.button if b.label == "Revoke").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["status"]) == ["revoked"]


def test_each_revocation_is_confirmed_on_its_own(db: Database) -> None:
    """The ticked box stayed ticked after a revocation, so a second click revoked the next key unconfirmed."""
    svc = Services(db)
    for name in ("first", "second"):
        svc.keys.create(SYSTEM, "pm@x.io", name)
    at = run_as("pm@x.io")
    at.checkbox(key="revoke_sure").check()
    next(b for b in at.button if b.label == "Revoke").click().run()
    assert not at.exception, at.exception
    assert any("Revoked" in m.value for m in at.success) and not at.checkbox(key="revoke_sure").value
    next(b for b in at.button if b.label == "Revoke").click().run()  # not ticked again
    assert any("Tick the box" in w.value for w in at.warning)
    assert sorted(at.dataframe[0].value["status"]) == ["active", "revoked"]


def test_an_admin_sees_and_makes_everyones_keys(db: Database) -> None:
    Services(db).keys.create(SYSTEM, "pm@x.io", "pm's")
    at = run_as("admin@x.io")
    assert set(at.selectbox(key="key_owner").options) == {"admin@x.io", "pm@x.io", "other@x.io"}
    at.selectbox(key="key_owner").set_value("other@x.io")
    at.text_input(key="key_name").input("for other")
    next(b for b in at.button if b.label == "Create key").click().run()
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["owner"]) == {"pm@x.io", "other@x.io"}


def test_mistakes_are_sentences(db: Database) -> None:
    at = run_as("pm@x.io")
    next(b for b in at.button if b.label == "Create key").click().run()  # no name
    assert at.error and "needs a name" in at.error[0].value


def test_the_sample_call_names_a_model_the_key_may_call(db: Database) -> None:
    at = run_as("pm@x.io")
    at.text_input(key="key_name").input("claude only")
    at.multiselect(key="key_models").set_value(["claude-haiku-4-5"])
    next(b for b in at.button if b.label == "Create key").click().run()
    assert not at.exception, at.exception
    assert 'model="claude-haiku-4-5"' in at.code[1].value  # "sandbox-chat" was refused to such a key
