"""Alert fixtures: the budget fixtures (ledger, budget book, teams, clock, a one-credit model) plus the alert log,
the after-settle hook and a runner without delivery; and a history with a spend anomaly in it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from core.alerts import AlertHook, AlertLog, AlertRunner
from core.billing import BillingService
from core.catalog import ModelPrice
from core.db import Database
from core.db.models import utcnow
from core.users import UserView
from tests.core.budgets.conftest import billing, book, funded, gpt4o, set_clock, spend_one, teams  # noqa: F401

DAY = timedelta(days=1)


def spend_spike(
    rt: Database, ledger: BillingService, model: ModelPrice, clock: Callable[[datetime], None]
) -> tuple[UserView, datetime]:
    """ana spent a credit a day for five weeks, then $10 of endpoint uptime today at noon UTC, where the clock is
    left: a spend anomaly for the analytics store (`anomaly_message` says it). Returns her and that noon."""
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    ana = funded(rt, ledger, "ana@example.com", credits=100_000)
    for day in range(35, 0, -1):
        clock(today - day * DAY)
        spend_one(ledger, model, ana, f"day-{day}")
    clock(today)
    ledger.charge(
        ana.id, Decimal("10"), markup_pct=0, idempotency_key="spike", description="uptime", kind="endpoint_uptime"
    )
    return ana, today


def anomaly_message(today: datetime) -> str:
    return f"Spend anomaly: user ana@example.com spent $10.00 on {today:%Y-%m-%d}, 250.0x the 28-day median of $0.04."


@pytest.fixture
def log(runtime: Database) -> AlertLog:
    return AlertLog(runtime.session_factory, runtime.settings)


@pytest.fixture
def hook(runtime: Database) -> AlertHook:
    return AlertHook(runtime.session_factory, runtime.settings)


@pytest.fixture
def runner(runtime: Database, billing: BillingService) -> AlertRunner:  # noqa: F811 - the shared fixture
    return AlertRunner(runtime.session_factory, runtime.settings, billing)
