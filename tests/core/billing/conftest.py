"""Billing fixtures: a service on the `runtime` database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
a funded user and a usage record priced from the catalog."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.billing import BillingService, UsageRecord, price_usage
from core.catalog import ModelPrice, get_model
from core.db import Database
from core.usage import Usage
from core.users import UserView, add_user
from tests.conftest import services_of


@pytest.fixture
def billing(runtime: Database) -> BillingService:
    return services_of(runtime).billing


def make_user(rt: Database, email: str = "ana@example.com", markup: str = "100") -> UserView:
    with rt.session() as s:
        return add_user(s, email=email, name=email.split("@")[0], role="pm", markup_pct=Decimal(markup))


@pytest.fixture
def user(runtime: Database) -> UserView:
    return make_user(runtime)


def catalog_model(rt: Database, model_id: str, provider: str | None = None) -> ModelPrice:
    with rt.session() as s:
        return get_model(s, model_id, provider)


def record_for(model: ModelPrice, usage: Usage, **kw: object) -> UsageRecord:
    return UsageRecord(model=model, usage=usage, base_cost_usd=price_usage(model, usage), **kw)


@pytest.fixture
def gpt4o(runtime: Database) -> ModelPrice:
    return catalog_model(runtime, "gpt-4o")
