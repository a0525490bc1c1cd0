"""The Ledger page: balances with filters, a user's history, the grant form with its confirmation step (a double
click posts once), CSV exports and the audit log."""

from __future__ import annotations

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from core.billing import BillingService
from core.db import Database
from core.db.models import AuditLog, CreditTransaction, User
from tests.pages.apptest import open_page, page_path, shown

PAGE = page_path("ledger")


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_balances_table_and_filters(demo: Database) -> None:
    at = open_page("ledger")
    with demo.session() as s:
        users = s.scalar(select(func.count()).select_from(User))
        admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin"))
    table = at.dataframe[0].value
    assert len(table) == users and {"balance", "held", "available"} <= set(table.columns)
    at.selectbox(key="bal_role").set_value("admin").run()
    assert len(at.dataframe[0].value) == admins
    at.text_input(key="bal_search").input("zzz-nobody").run()
    assert len(at.dataframe[0].value) == 0
    assert any(d.label == "Download balances (CSV)" for d in at.download_button)


def test_history_shows_the_running_balance(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    who = at.selectbox(key="hist_user").value
    txs = billing.transactions(who)
    assert at.metric[0].value == f"{txs[-1].balance_after:,} credits"
    history = at.dataframe[1].value
    assert len(history) == len(txs)
    assert next(iter(history["balance after"])) == txs[-1].balance_after  # newest first
    assert any(d.label == "Download history (CSV)" for d in at.download_button)


def test_grant_needs_confirmation_and_posts_once(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    actor = "admin@demo.example"  # local mode acts as the first admin
    target = at.selectbox(key="grant_user").options[3]
    before = billing.balance(target).total
    at.selectbox(key="grant_user").set_value(target)
    at.radio(key="grant_kind").set_value("topup")
    at.number_input(key="grant_credits").set_value(250)
    at.text_input(key="grant_note").input("quarterly top-up")
    button(at, "Review").click().run()
    assert billing.balance(target).total == before  # nothing posted before the confirmation
    assert any("Confirm" in w.value and target in shown(w.value) for w in at.warning)
    pending = dict(at.session_state["grant_pending"])
    button(at, "Confirm").click().run()
    assert not at.exception, at.exception
    assert billing.balance(target).total == before + 250
    assert any("+250 credits" in s.value for s in at.success)
    # a second click that arrives with the same reviewed submission posts nothing more
    at.session_state["grant_pending"] = pending
    at.run()
    button(at, "Confirm").click().run()
    assert billing.balance(target).total == before + 250
    with demo.session() as s:
        posted = s.scalar(select(func.count()).where(CreditTransaction.idempotency_key == pending["key"]))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "credits.topup")).one()
    assert posted == 1 and audit.actor == actor and audit.target == target
    assert audit.details["note"] == "quarterly top-up"
    # the audit tab shows it
    at.run()
    audit_table = at.dataframe[-1].value
    assert "credits.topup" in set(audit_table["action"]) and actor in set(audit_table["actor"])


def test_bad_grant_shows_the_error_and_writes_nothing(demo: Database) -> None:
    at = open_page("ledger")
    with demo.session() as s:
        n = s.scalar(select(func.count()).select_from(CreditTransaction))
    at.number_input(key="grant_credits").set_value(-5)
    button(at, "Review").click().run()
    button(at, "Confirm").click().run()
    assert any("adjustment" in e.value for e in at.error)
    with demo.session() as s:
        assert s.scalar(select(func.count()).select_from(CreditTransaction)) == n


def test_a_pm_sees_only_their_own_credits(demo: Database) -> None:
    from core.users import list_users

    with demo.session() as s:
        pm = list_users(s, role="pm")[0]
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["local_user_email"] = pm.email
    at.run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Balances", "History"]  # no grant form, no audit log
    balances = at.dataframe[0].value
    assert list(balances["email"]) == [pm.email]
    assert at.selectbox(key="hist_user").options == [pm.email]
    assert not [b for b in at.button if b.label in ("Review", "Confirm")]


def test_finance_sees_the_disputed_calls(demo: Database, monkeypatch) -> None:
    """A call whose upstream claimed 50M output tokens for max_tokens 5 is billed at 5 and listed for finance, with the
    figures as reported and as billed; a PM's Ledger has no such tab."""
    from core.providers.types import GenerationRequest
    from core.services import SYSTEM
    from tests.core.providers.fakes import json_response
    from tests.core.test_generate import Env
    from tests.core.test_usage_limits import INFLATED

    env = Env(demo, [json_response(200, INFLATED, {"x-request-id": "req_inflated"})])
    with demo.session() as s:
        pm = s.scalar(select(User).where(User.role == "pm").order_by(User.id))
        pm_email = pm.email
    env.services.generation.generate(
        SYSTEM, pm_email, "gpt-4o-mini", GenerationRequest(category="chat", text="Hi", max_tokens=5)
    )
    at = open_page("ledger")
    tab = next(t for t in at.tabs if t.label == "Disputed calls")
    [table] = [d.value for d in tab.dataframe]
    assert list(table["user"]) == [pm_email] and list(table["request id"]) == ["req_inflated"]
    assert "output_tokens 50000000 -> 5" in table["reported -> billed"][0]

    monkeypatch.setenv("LOCAL_USER_EMAIL", pm_email)
    at = open_page("ledger")
    assert "Disputed calls" not in [t.label for t in at.tabs]
