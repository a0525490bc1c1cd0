"""The Budgets & alerts page: finance sets a budget through the form and sees its table, burn-down and the alert it
raised; a product manager sees only their own budgets and their banner; names people typed are shown literally."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.alerts import AlertHook
from core.billing import BillingService
from core.budgets import BudgetBook
from core.db import Database
from core.db.models import User
from tests.pages.apptest import dates_drawn_as_text, open_page


def email_of(rt: Database, role: str) -> tuple[int, str]:
    with rt.session() as s:
        return s.execute(select(User.id, User.email).where(User.role == role).order_by(User.id)).first()  # type: ignore[return-value]


def test_finance_sets_a_budget_and_sees_its_burn_down(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _, finance = email_of(demo, "finance")
    _, pm = email_of(demo, "pm")
    monkeypatch.setenv("LOCAL_USER_EMAIL", finance)
    at = open_page("budgets")
    at.text_input(key="set_target").input(pm)
    at.number_input(key="set_credits").set_value(5)
    at.button[0].click().run()  # the form's Save budget
    assert not at.exception and any("Saved budget 1" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["covers"]) == [pm] and table["limit"].iloc[0] == 5
    assert len(at.get("plotly_chart")) == 1
    at.text_input(key="set_target").input("nobody@example.com")
    at.button[0].click().run()
    assert not at.exception and any("No user" in e.value for e in at.error)  # a sentence, not a stack trace


def test_a_pm_sees_only_their_budgets_and_their_banner(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    pm_id, pm = email_of(demo, "pm")
    with demo.session() as s:
        other = s.scalars(select(User.email).where(User.role == "pm", User.id != pm_id)).first()
    book = BudgetBook(demo.session_factory, demo.settings)
    mine = book.set(user=pm, credits=1, name="*bold* [link](http://x)")
    book.set(user=other, credits=100)
    billing = BillingService(demo.session_factory, demo.settings)
    billing.grant(pm, 100)

    billing.charge(pm, "0.04", markup_pct=0, idempotency_key="pm-spend", description="x")
    AlertHook(demo.session_factory, demo.settings).after_settle(pm_id, charged=1, balance_after=10**6)
    monkeypatch.setenv("LOCAL_USER_EMAIL", pm)
    at = open_page("budgets")
    assert list(at.dataframe[0].value["id"]) == [mine.id]
    assert not any(b.label == "Save budget" for b in at.button)  # a PM cannot set budgets
    (banner,) = at.warning
    assert "\\*bold\\*" in banner.value and "\\[link\\]" in banner.value  # shown literally, not as Markdown


def test_the_day_a_budget_resets_reads_as_a_date(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _, finance = email_of(demo, "finance")
    _, pm = email_of(demo, "pm")
    BudgetBook(demo.session_factory, demo.settings).set(user=pm, credits=50)  # monthly: it resets on a day
    monkeypatch.setenv("LOCAL_USER_EMAIL", finance)
    at = open_page("budgets")
    assert at.dataframe[0].value["resets on"].notna().all()
    assert dates_drawn_as_text(at) == []
