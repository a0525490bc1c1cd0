"""The Overview page's figures: one definition of money with the Spend page and the command line.

On a history with endpoint uptime and refunds, in a reporting time zone other than UTC, the home page's revenue this
month, last month and per day, the Spend page's KPIs and `python -m core spend forecast` give the same numbers, every
dollar derived in the engine from credits at the credit price.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.access import SYSTEM, Principal, Role
from core.analytics.filters import SpendFilter
from core.cli import main
from core.demo import write_demo_history
from core.errors import PermissionDeniedError
from tests.conftest import make_runtime
from tests.support.billing import overdraw_by_uptime


def test_overview_spend_and_cli_agree_on_revenue(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, reporting_tz="Europe/Paris")
    from core.services import Services

    svc = Services(rt)
    write_demo_history(rt, rows=2000, days=45, seed=2, end=datetime.now(UTC))
    user = svc.users.list(SYSTEM)[0]
    svc.ledger.grant(SYSTEM, user.id, 500)
    uptime = svc.billing.charge(
        user.id, Decimal("3"), idempotency_key="uptime-1", description="endpoint uptime", kind="endpoint_uptime"
    )
    svc.ledger.refund(SYSTEM, uptime.id, "goodwill", credits=50)

    ov = svc.overview.overview(SYSTEM, sync_if_older_than=0)
    kpis = svc.spend.kpis(SYSTEM, SpendFilter())
    assert ov.tz == "Europe/Paris" and ov.month == kpis.month
    assert ov.this_month == kpis.month_to_date and ov.last_month == kpis.last_month
    assert ov.vs_last_month_pct == kpis.vs_last_month_pct and ov.active_users == kpis.active_users
    # the uptime charge and the refund are part of this month's revenue, as on the Spend page
    assert ov.this_month.credits >= -uptime.amount - 50
    assert ov.this_month.revenue_usd == Decimal(ov.this_month.credits) * Decimal("0.04")
    assert all(d.revenue_usd == Decimal(d.credits) * Decimal("0.04") for d in ov.daily)
    this_month_days = [d for d in ov.daily if d.day >= ov.month]
    assert sum(d.revenue_usd for d in this_month_days) == ov.this_month.revenue_usd
    assert ov.credits_outstanding == sum(max(a.total, 0) for a in svc.ledger.balances(SYSTEM))
    assert ov.credits_outstanding_usd == Decimal(ov.credits_outstanding) * Decimal("0.04")

    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(rt.settings.analytics_path))
    monkeypatch.setenv("REPORTING_TZ", "Europe/Paris")
    capsys.readouterr()
    assert main(["spend", "forecast", "--json"]) == 0
    forecast = json.loads(capsys.readouterr().out)
    assert Decimal(forecast["revenue_to_date_usd"]) == ov.this_month.revenue_usd

    # an overdraft is owed to the company: shown apart, never netted against what the others prepaid
    other = svc.users.list(SYSTEM)[1]
    owes = svc.ledger.balance(SYSTEM, other.id).total + 2_593
    overdraw_by_uptime(svc.billing, other.id, owes)
    after = svc.overview.overview(SYSTEM, sync_if_older_than=0)
    assert svc.ledger.balance(SYSTEM, other.id).total == -2_593
    assert after.credits_outstanding == ov.credits_outstanding - (owes - 2_593)  # their positive balance is gone
    assert after.credits_overdrawn == ov.credits_overdrawn + 2_593
    assert after.accounts_overdrawn == ov.accounts_overdrawn + 1
    svc.close()


def test_only_finance_and_admins_see_the_overview(sqlite_runtime) -> None:
    from core.services import Services

    svc = Services(sqlite_runtime)
    pm = Principal(user_id=1, email="pm@x.io", name="P", role=Role.PM)
    with pytest.raises(PermissionDeniedError):
        svc.overview.overview(pm)
    svc.close()
