"""The Budgets & alerts page's data (core/budgets/view.py): finance's view and a person's own view, and a burn-down
whose forecast follows a steady synthetic burn to the day it passes the limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd

from core.alerts import AlertHook, WebhookRegistry
from core.billing import BillingService
from core.budgets import BudgetBook, TeamDirectory
from core.budgets.view import budgets_page
from core.catalog import ModelPrice
from core.db import Database
from tests.core.budgets.conftest import funded, spend_one


def test_a_steady_burn_is_forecast_to_the_day_it_passes_the_limit(
    runtime: Database, billing: BillingService, book: BudgetBook, set_clock: Callable[[datetime], None]
) -> None:
    now = datetime(2026, 12, 15, 12, 0)
    ana = funded(runtime, billing, "ana@example.com")
    for day in range(45, -1, -1):  # 10 credits a day since the end of October, today's at noon
        set_clock(now - timedelta(days=day))
        billing.charge(ana.id, Decimal("0.40"), markup_pct=0, idempotency_key=f"d{day}", description="burn")
    set_clock(now)
    budget = book.set(user=ana.id, credits=250)
    page = budgets_page(runtime.session_factory, runtime.settings, now=now)
    (shown,) = page.budgets
    assert shown.id == budget.id and shown.spent == 150 and shown.left == 100
    chart = page.burn_downs[budget.id]
    daily = chart.daily.set_index("day")
    assert list(daily.index) == [date(2026, 12, d) for d in range(1, 32)]
    assert daily.loc[date(2026, 12, 15), "cumulative"] == 150 and pd.isna(daily.loc[date(2026, 12, 16), "cumulative"])
    assert round(daily.loc[date(2026, 12, 15), "forecast"]) == 155  # the rest of today at 10 a day
    assert round(chart.forecast_total) == 155 + 16 * 10
    assert chart.over_on == date(2026, 12, 25)
    assert (daily["limit"] == 250).all()
    assert daily.loc[date(2026, 12, 31), "low"] <= chart.forecast_total <= daily.loc[date(2026, 12, 31), "high"]


def test_finance_sees_everything_and_a_person_their_own(
    runtime: Database, billing: BillingService, book: BudgetBook, teams: TeamDirectory, gpt4o: ModelPrice
) -> None:
    ana, ben, boss = (funded(runtime, billing, f"{n}@example.com") for n in ("ana", "ben", "boss"))
    teams.add("research", owner=boss.email)
    teams.add_member("research", ana.email)
    teams.add("ops")
    book.set(user=ana.id, credits=2, thresholds=[50])
    book.set(user=ben.id, credits=100)
    book.set(team="research", credits=100)
    WebhookRegistry(runtime.session_factory).add("finance", "https://hooks.example.com/x/secret-token")
    hook = AlertHook(runtime.session_factory, runtime.settings)
    st = spend_one(billing, gpt4o, ana, "a1")
    hook.after_settle(ana.id, charged=st.credits_charged, balance_after=st.balance_after)

    finance = budgets_page(runtime.session_factory, runtime.settings)
    assert [b.target for b in finance.budgets] == ["ana@example.com", "ben@example.com", "team research"]
    assert [w.host for w in finance.webhooks] == ["hooks.example.com"] and len(finance.alerts) == 1
    assert [t.name for t in finance.teams] == ["ops", "research"]

    own = budgets_page(runtime.session_factory, runtime.settings, viewer_id=ana.id, only_user=ana.id)
    assert [b.target for b in own.budgets] == ["ana@example.com", "team research"]
    assert own.webhooks == [] and own.deliveries == [] and [t.name for t in own.teams] == ["research"]
    assert [a.threshold_pct for a in own.banners] == [50] and len(own.alerts) == 1
    owner = budgets_page(runtime.session_factory, runtime.settings, viewer_id=boss.id, only_user=boss.id)
    assert [b.target for b in owner.budgets] == ["team research"] and owner.alerts == []
    assert budgets_page(runtime.session_factory, runtime.settings, only_user=ben.id).budgets[0].target == (
        "ben@example.com"
    )
