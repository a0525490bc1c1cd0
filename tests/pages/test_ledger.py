"""The Ledger page: balances with filters, a user's history, the grant form with its confirmation step (a double
click posts once), CSV exports and the audit log."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import streamlit as st
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from core.billing import BillingService
from core.db import Database
from core.db.models import AuditLog, CreditTransaction, User
from pages.ui import plain
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
    at.text_input(key="bal_search").input("").run()
    at.selectbox(key="bal_role").set_value("all").run()
    at.number_input(key="bal_min").set_value(1e20).run()  # an integer field read it as 1: every funded account
    assert not at.exception and len(at.dataframe[0].value) == 0
    at.number_input(key="bal_min").set_value(None).run()
    everyone = at.dataframe[0].value
    least = int(everyone["available"].min())
    at.number_input(key="bal_min").set_value(least + 0.5).run()  # whole credits of at least 0.5 more
    assert int(at.dataframe[0].value["available"].min()) > least


def test_history_shows_the_running_balance(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    who = at.selectbox(key="hist_user").value
    txs = billing.transactions(who)
    assert at.metric[0].value == f"{txs[-1].balance_after:,} credits"
    history = at.dataframe[1].value
    shown = min(len(txs), 200)  # a page at a time, newest first
    assert list(history["id"]) == [t.id for t in reversed(txs)][:shown]
    assert next(iter(history["balance_after"])) == txs[-1].balance_after
    assert any(d.label == f"Download the {shown:,} shown (CSV)" for d in at.download_button)
    assert not [m for m in at.metric if m.delta and "↑" in m.delta]


def test_history_loads_a_page_at_a_time_and_filters_by_type(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    who = at.selectbox(key="hist_user").value
    billing.grant(who, 1000, kind="topup")
    for i in range(250):
        billing.charge(who, Decimal("0.04"), markup_pct=0, idempotency_key=f"page-{i}", description="x")
    total = len(billing.transactions(who))
    st.cache_data.clear()  # the page caches a history for 30 s
    at.run()
    assert [p.text for p in at.get("progress")] == [f"200 of {total:,} transactions shown, newest first"]
    button(at, f"Load {min(200, total - 200):,} more").click().run()
    ids = list(at.dataframe[1].value["id"])
    assert ids == sorted(ids, reverse=True) and len(ids) == min(400, total) and len(set(ids)) == len(ids)
    at.multiselect(key="hist_types").set_value(["topup"]).run()  # new filters start from the newest page again
    history = at.dataframe[1].value
    assert set(history["transaction_type"]) == {"topup"} and len(history) == len(
        [t for t in billing.transactions(who) if t.transaction_type == "topup"]
    )
    assert not [b for b in at.button if b.label.startswith("Load ")]
    at.date_input(key="hist_since").set_value(date.today() + timedelta(days=365)).run()  # no history yet
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert [i.value for i in at.info if "disputed" not in i.value] == [
        plain(f"No transactions of {who} match these filters: clear the types or dates to see them all.")
    ]


def select_history_row(at: AppTest, row: int) -> None:
    """What clicking a row of the history table does (AppTest cannot click a grid's row)."""
    key = f"hist_table_{at.session_state['hist_table_n']}"  # a new one each time the rows change
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()


def test_a_refund_of_an_impossible_amount_is_refused_at_review(demo: Database) -> None:
    """ "abc", 0, -1, 2.5 or more than the debit reached Confirm ("refund abc of the 6 credits"); refused at Review now,
    as a grant is, and a part the debit covers is reviewed as itself."""
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    who = at.selectbox(key="hist_user").value
    row = list(at.dataframe[1].value["refund"]).index("refundable")
    debit = billing.transactions(who)[::-1][row]
    debited = -debit.amount
    select_history_row(at, row)
    for typed, says in (("abc", "not a number"), ("0", "not above 0"), ("-1", "not above 0"), ("2.5", "whole")):
        at.text_input(key="refund_credits").input(typed)
        button(at, "Review refund").click().run()
        assert any(says in shown(e.value) for e in at.error), (typed, [e.value for e in at.error])
        assert not [b for b in at.button if b.label == "Confirm refund"], typed
    at.text_input(key="refund_credits").input(str(debited + 1))
    button(at, "Review refund").click().run()
    assert any("is more than the" in shown(e.value) for e in at.error)
    assert not [b for b in at.button if b.label == "Confirm refund"]
    if debited > 1:
        at.text_input(key="refund_credits").input("1")
        button(at, "Review refund").click().run()
        assert any(plain(f"refund 1 credit of the {debited:,} credits") in w.value for w in at.warning)


def test_finance_refunds_a_debit_from_its_row_after_a_confirmation(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    who = at.selectbox(key="hist_user").value
    history = at.dataframe[1].value
    row = list(history["refund"]).index("refundable")
    debit = billing.transactions(who)[::-1][row]
    assert debit.amount < 0 and debit.transaction_type in ("usage", "endpoint_uptime", "adjustment")
    before = billing.balance(who).total

    select_history_row(at, row)
    assert any(f"Refund transaction {debit.id}" in m.value for m in at.markdown)
    at.text_input(key="refund_reason").input("the model answered in the wrong language")
    button(at, "Review refund").click().run()
    assert billing.balance(who).total == before  # nothing posted before the confirmation
    assert any(plain(f"refund all {-debit.amount:,} credits of transaction {debit.id}") in w.value for w in at.warning)
    button(at, "Confirm refund").click().run()
    assert not at.exception, at.exception
    assert billing.balance(who).total == before - debit.amount
    assert any(f"Refunded {-debit.amount:+,} credits of transaction {debit.id}" in shown(s.value) for s in at.success)
    newest = billing.transactions(who)[-1]
    assert newest.transaction_type == "refund" and newest.metadata["refund_of"] == debit.id
    history = at.dataframe[1].value  # the refunded debit no longer offers a refund
    assert history.loc[history["id"] == debit.id, "refund"].item() == ""
    assert not [m for m in at.markdown if "Refund transaction" in m.value]  # and no other row is selected instead
    assert not at.session_state[f"hist_table_{at.session_state['hist_table_n']}"]["selection"]["rows"]  # a new table

    select_history_row(at, 0)  # the refund itself is no debit
    assert any(f"Transaction {newest.id} is a refund" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Review refund"]


def test_grant_needs_confirmation_and_posts_once(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    actor = "admin@demo.example"  # local mode acts as the first admin
    target = at.selectbox(key="grant_user").options[3]
    before = billing.balance(target).total
    at.selectbox(key="grant_user").set_value(target)
    at.radio(key="grant_kind").set_value("topup")
    at.text_input(key="grant_credits").input("250")
    at.text_input(key="grant_note").input("quarterly top-up")
    button(at, "Review").click().run()
    assert billing.balance(target).total == before  # nothing posted before the confirmation
    assert any("Confirm" in w.value and target in shown(w.value) and "$10.00" in shown(w.value) for w in at.warning)
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


def test_bad_grants_are_refused_at_review_naming_what_was_typed(demo: Database) -> None:
    at = open_page("ledger")
    with demo.session() as s:
        n = s.scalar(select(func.count()).select_from(CreditTransaction))
    for typed, said in (
        ("-5", "-5 is negative; use kind 'adjustment'"),
        ("12.7", "12.7 is not a whole number"),
        ("0", "0 posts nothing"),
    ):
        at.text_input(key="grant_credits").input(typed)
        button(at, "Review").click().run()
        [error] = at.error
        assert error.value.startswith(plain("Not posted: Credits: ")) and plain(said) in error.value
        assert at.text_input(key="grant_credits").value == typed  # the form keeps what was typed
        assert not [b for b in at.button if b.label == "Confirm"]  # nothing to confirm
    at.text_input(key="grant_credits").input("12")
    button(at, "Review").click().run()
    assert not at.error and any("+12 credits" in w.value for w in at.warning)  # the new value, not a stale one
    with demo.session() as s:
        assert s.scalar(select(func.count()).select_from(CreditTransaction)) == n


def test_a_large_grant_needs_the_second_confirmation(demo: Database) -> None:
    billing = BillingService(demo.session_factory, demo.settings)
    at = open_page("ledger")
    target = at.selectbox(key="grant_user").value
    before = billing.balance(target).total
    at.text_input(key="grant_credits").input("2,000,000,000")
    button(at, "Review").click().run()
    assert any(r"\$80,000,000\.00" in w.value for w in at.warning)
    assert button(at, "Confirm").disabled  # until the second yes
    [second_yes] = [c for c in at.checkbox if c.label.startswith("Yes, post +2,000,000,000 credits")]
    second_yes.check().run()
    button(at, "Confirm").click().run()
    assert not at.exception, at.exception
    assert billing.balance(target).total == before + 2_000_000_000


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
    # no filters over one row: a role, a search and available-credit bounds would do nothing there
    assert not [w for w in (*at.selectbox, *at.text_input, *at.number_input) if w.key and w.key.startswith("bal_")]


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


def test_history_times_and_day_filter_are_in_the_reporting_time_zone(
    demo: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grant at 23:30 in New York (04:30 UTC the next day) is shown at 23:30 and found by its New York day, the
    day Spend counts it on; the filters and the caption name the zone."""
    import core.billing.ledger as ledger_module

    tz = "America/New_York"
    monkeypatch.setenv("REPORTING_TZ", tz)
    billing = BillingService(demo.session_factory, demo.settings)
    who = sorted(billing_emails(demo))[0]
    with monkeypatch.context() as clock:
        clock.setattr(ledger_module, "utcnow", lambda: datetime(2026, 11, 10, 4, 30))  # naive UTC, as stored
        tx = billing.grant(who, 7, note="late grant")
    at = open_page("ledger")
    assert any(f"Times and days are in {tz}" in c.value for c in at.caption)
    at.selectbox(key="hist_user").set_value(who).run()
    assert at.date_input(key="hist_since").label == f"From ({tz})"
    at.date_input(key="hist_since").set_value(date(2026, 11, 9)).run()
    at.date_input(key="hist_until").set_value(date(2026, 11, 9)).run()
    history = at.dataframe[1].value
    assert list(history["id"]) == [tx.id]
    assert history["created_at"].iloc[0] == pd.Timestamp("2026-11-09 23:30")  # shown in New York time
    at.date_input(key="hist_since").set_value(date(2026, 11, 10)).run()
    at.date_input(key="hist_until").set_value(date(2026, 11, 10)).run()
    assert not any("id" in f.value.columns and tx.id in set(f.value["id"]) for f in at.dataframe)


def billing_emails(demo: Database) -> list[str]:
    with demo.session() as s:
        return list(s.scalars(select(User.email)))


def test_writes_waiting_for_the_database_are_shown_and_posted_from_the_page(
    demo: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.billing.spool import SpoolDrainer
    from core.billing.types import UsageRecord
    from core.catalog import get_model
    from core.usage import Usage

    monkeypatch.setattr(SpoolDrainer, "wake", lambda self: None)  # else the page's process posts it at once
    billing = BillingService(demo.session_factory, demo.settings)
    with demo.session() as s:
        who = s.scalars(select(User).where(User.role == "pm").order_by(User.id)).first()
        model = get_model(s, "gpt-4o")
    assert who is not None
    billing.grant(who.id, 100)
    before = billing.balance(who.id)
    hold = billing.reserve(who.id, 10, "spooled-call")
    record = UsageRecord(
        model=model, usage=Usage(input_tokens=1000, output_tokens=500), base_cost_usd=Decimal("0.0075")
    )
    assert billing.spool is not None
    billing.spool.put("settle", hold, record, "OperationalError: unable to open database file")
    at = open_page("ledger")
    [warning] = [w for w in at.warning if "wait on this server" in w.value]
    assert shown(warning.value).startswith("1 ledger write(s) wait on this server")
    assert warning.value.endswith("`python -m core ledger spool` lists them.")  # code, not escaped backticks
    button(at, "Post the waiting writes now").click().run()
    assert not at.exception
    assert any("Posted 1" in shown(s.value) for s in at.success)
    assert not [w for w in at.warning if "wait on this server" in w.value]  # gone with what it said
    assert billing.balance(who.id).total == before.total - 2 and billing.balance(who.id).held == before.held
    assert billing.spool.waiting() == []
