"""Budget fixtures on the `runtime` database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set): the ledger,
the budget book, the team directory, funded users at 0% markup (so a credit held is a credit charged) and a clock
the tests can set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest

from core.billing import BillingService, Hold, Settlement
from core.budgets import BudgetBook, TeamDirectory
from core.catalog import ModelPrice
from core.db import Database
from core.usage import Usage
from core.users import UserView, add_user
from tests.core.billing.conftest import catalog_model, record_for

ONE_CREDIT = Usage(input_tokens=1000, output_tokens=500)  # gpt-4o: $0.0075 -> 1 credit at 0% markup
CLOCKED_MODULES = (
    "core.billing.ledger",
    "core.budgets.budgets",
    "core.budgets.teams",
    "core.billing.ledger_check",
    "core.alerts.hook",
    "core.alerts.runner",
    "core.alerts.records",
    "core.alerts.delivery",
)


@pytest.fixture
def billing(runtime: Database) -> BillingService:
    return BillingService(runtime.session_factory, runtime.settings)


@pytest.fixture
def book(runtime: Database) -> BudgetBook:
    return BudgetBook(runtime.session_factory, runtime.settings)


@pytest.fixture
def teams(runtime: Database) -> TeamDirectory:
    return TeamDirectory(runtime.session_factory)


def funded(rt: Database, billing: BillingService, email: str, credits: int = 10_000) -> UserView:
    with rt.session() as s:
        user = add_user(s, email=email, name=email.split("@")[0], role="pm", markup_pct=Decimal(0))
    billing.grant(user, credits)
    return user


@pytest.fixture
def gpt4o(runtime: Database) -> ModelPrice:
    return catalog_model(runtime, "gpt-4o")


def spend_one(billing: BillingService, model: ModelPrice, user: UserView | int, key: str, **kw: object) -> Settlement:
    """Reserve one credit and settle a call that costs exactly one (for a user at 0% markup)."""
    hold: Hold = billing.reserve(user if isinstance(user, int) else user.id, 1, key, **kw)  # type: ignore[arg-type]
    return billing.settle(hold, record_for(model, ONE_CREDIT))


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Make the ledger and the budgets believe it is `when` (naive UTC)."""

    def set_to(when: datetime) -> None:
        for module in CLOCKED_MODULES:
            monkeypatch.setattr(f"{module}.utcnow", lambda: when)

    return set_to


def api_key_of(rt: Database, user: UserView, name: str = "test key") -> int:
    """A real API key of `user` (a key's calls are paid by its owner): its id."""
    from core.keys.store import KeyLimits, create

    return create(rt.engine, user_id=user.id, name=name, limits=KeyLimits(), expires_at=None, actor="test").key.id
