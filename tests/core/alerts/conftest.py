"""Alert fixtures: the budget fixtures (ledger, budget book, teams, clock, a one-credit model) plus the alert log,
the after-settle hook and a runner without delivery."""

from __future__ import annotations

import pytest

from core.alerts import AlertHook, AlertLog, AlertRunner
from core.billing import BillingService
from core.db import Database
from tests.core.budgets.conftest import billing, book, gpt4o, set_clock, teams  # noqa: F401 - shared fixtures


@pytest.fixture
def log(runtime: Database) -> AlertLog:
    return AlertLog(runtime.session_factory, runtime.settings)


@pytest.fixture
def hook(runtime: Database) -> AlertHook:
    return AlertHook(runtime.session_factory, runtime.settings)


@pytest.fixture
def runner(runtime: Database, billing: BillingService) -> AlertRunner:  # noqa: F811 - the shared fixture
    return AlertRunner(runtime.session_factory, runtime.settings, billing)
