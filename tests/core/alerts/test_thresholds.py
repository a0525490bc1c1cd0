"""Budget alerts on SQLite and PostgreSQL: each threshold fires once per period (a December and a January that end
in Los Angeles, not in UTC), a soft limit lets calls through and alerts once, a hard limit's refusal alerts once,
`alerts run` catches what no settle saw and repeats safely; and the generation flow calls the hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from core.alerts import AlertHook, AlertLog, AlertRunner
from core.billing import BillingService
from core.budgets import BudgetBook, BudgetExceededError
from core.catalog import ModelPrice
from core.db import Database
from core.providers import GenerationRequest
from core.services import SYSTEM
from core.users import UserView
from tests.core.budgets.conftest import funded, spend_one
from tests.core.test_generate import CHAT_OK, Env, funded_user


def call(billing: BillingService, hook: AlertHook, model: ModelPrice, user: UserView, key: str) -> list[int]:
    """One settled one-credit call, then the hook as the generation flow runs it: the new alerts' ids."""
    st = spend_one(billing, model, user, key)
    return hook.after_settle(user.id, charged=st.credits_charged, balance_after=st.balance_after)


def test_thresholds_fire_once_each_per_period_across_a_month_end_in_los_angeles(
    runtime: Database, set_clock: Callable[[datetime], None], gpt4o: ModelPrice
) -> None:
    la = replace(runtime.settings, reporting_tz="America/Los_Angeles", low_balance_credits=0)
    billing = BillingService(runtime.session_factory, la)
    hook = AlertHook(runtime.session_factory, la)
    runner = AlertRunner(runtime.session_factory, la, billing)
    log = AlertLog(runtime.session_factory, la)
    set_clock(datetime(2026, 12, 20, 12, 0))
    ana = funded(runtime, billing, "ana@example.com")
    BudgetBook(runtime.session_factory, la).set(user=ana.id, credits=10, enforcement="soft")

    fired = {n: call(billing, hook, gpt4o, ana, f"dec-{n}") for n in range(1, 13)}
    assert [n for n, ids in fired.items() if ids] == [5, 8, 10]  # 50%, 80%, 100%: then calls go on, silently
    assert runner.run().alerts == []
    set_clock(datetime(2027, 1, 1, 7, 59))  # still December 31 in Los Angeles
    assert call(billing, hook, gpt4o, ana, "dec-13") == []
    set_clock(datetime(2027, 1, 1, 8, 0))  # January there: a new period, counted from zero
    fired = {n: call(billing, hook, gpt4o, ana, f"jan-{n}") for n in range(1, 6)}
    assert [n for n, ids in fired.items() if ids] == [5]
    assert runner.run().alerts == [] and runner.run().alerts == []

    alerts = sorted(log.list_alerts(kinds=("threshold",)), key=lambda a: a.id)
    assert [(a.threshold_pct, a.period_start) for a in alerts] == [
        (50, datetime(2026, 12, 1, 8, 0)),
        (80, datetime(2026, 12, 1, 8, 0)),
        (100, datetime(2026, 12, 1, 8, 0)),
        (50, datetime(2027, 1, 1, 8, 0)),
    ]
    assert alerts[2].message == (
        "Budget 'ana@example.com, December 2026' has reached its limit (a soft budget: calls go on): "
        "10 of 10 credits spent; it resets on 2027-01-01."
    )
    assert alerts[2].severity == "critical" and alerts[0].severity == "info" and alerts[1].severity == "warning"
    assert "January 2027" in alerts[3].message and "resets on 2027-02-01" in alerts[3].message


def test_a_hard_limit_refusal_alerts_once_per_period(
    runtime: Database, billing: BillingService, book: BudgetBook, hook: AlertHook, log: AlertLog, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    budget = book.set(user=ana.id, credits=2, thresholds=[100])
    call(billing, hook, gpt4o, ana, "c1")
    assert call(billing, hook, gpt4o, ana, "c2") != []  # 100%: used up
    for key in ("c3", "c4"):
        with pytest.raises(BudgetExceededError) as refused:
            billing.reserve(ana.id, 1, key)
        hook.after_refusal(refused.value, ana.id)
    hard = log.list_alerts(kinds=("hard_limit",))
    assert len(hard) == 1 and hard[0].budget_id == budget.id and hard[0].user_id == ana.id
    assert hard[0].message.startswith("A call by ana@example.com was refused: Budget 'ana@example.com, ")
    assert [b.kind for b in log.banners(ana.id)] == ["hard_limit"]  # the latest word on that budget
    book.set(user=ana.id, credits=50, thresholds=[100])  # a raised limit: "used up" no longer holds
    assert log.banners(ana.id) == []
    assert call(billing, hook, gpt4o, ana, "c5") == []  # a banner comes again only from a new alert
    book.remove(budget.id, actor="finance@example.com")
    assert log.banners(ana.id) == [] and len(log.list_alerts(kinds=("hard_limit",))) == 1  # kept in the list


@pytest.mark.parametrize(
    ("limit", "usd", "pct", "says"),
    [
        (10, "0.32", 80, "has reached 80%: 8 of 10 credits spent (passing 50% and 80% at once); it resets"),
        (
            20,
            "0.88",
            100,
            "is used up: 22 of 20 credits spent, further calls are refused (passing 50%, 80% and 100% at once)",
        ),
    ],
)
def test_alerts_run_catches_spend_no_settle_saw_and_is_safe_to_repeat(
    runtime: Database,
    billing: BillingService,
    book: BudgetBook,
    runner: AlertRunner,
    log: AlertLog,
    limit: int,
    usd: str,
    pct: int,
    says: str,
) -> None:
    """Endpoint uptime (no call, so no hook) past several thresholds at once: one alert at the highest, whose figures
    agree with it (not "has reached 50%: 22 of 20 credits spent"), and the lower ones never fire afterwards."""
    ana = funded(runtime, billing, "ana@example.com")
    book.set(user=ana.id, credits=limit)
    billing.charge(
        ana.id, Decimal(usd), markup_pct=0, idempotency_key="up-1", description="uptime", kind="endpoint_uptime"
    )
    (found,) = runner.run().alerts
    assert says in found["message"], found["message"]
    assert runner.run().alerts == []
    (alert,) = log.list_alerts()
    assert alert.threshold_pct == pct and alert.severity == ("critical" if pct == 100 else "warning")


def test_a_team_budget_alerts_its_owner_and_shows_its_members_a_banner(
    runtime: Database, billing: BillingService, book: BudgetBook, teams: object, hook: AlertHook, log: AlertLog,
    gpt4o: ModelPrice,
) -> None:  # fmt: skip
    ana, ben, boss = (funded(runtime, billing, f"{n}@example.com") for n in ("ana", "ben", "boss"))
    teams.add("research", owner=boss.email)  # type: ignore[attr-defined]
    teams.add_member("research", ana.email)  # type: ignore[attr-defined]
    teams.add_member("research", ben.email)  # type: ignore[attr-defined]
    book.set(team="research", credits=4, thresholds=[50])
    call(billing, hook, gpt4o, ana, "a1")
    assert call(billing, hook, gpt4o, ben, "b1") != []
    (alert,) = log.list_alerts()
    assert alert.user_id == boss.id and alert.team_name == "research"
    for person in (ana, ben, boss):
        assert [b.id for b in log.banners(person.id)] == [alert.id]
    log.dismiss(alert.id, "boss@example.com")
    assert log.banners(ana.id) == [] and log.list_alerts()[0].dismissed_at is not None


def test_the_generation_flow_checks_after_settle_and_on_refusal(runtime: Database) -> None:
    env = Env(runtime, [httpx.Response(200, json=CHAT_OK) for _ in range(30)])
    env.services.flow.alerts = AlertHook(runtime.session_factory, env.settings)
    user = funded_user(runtime, credits=10_000)
    BudgetBook(runtime.session_factory, env.settings).set(user=user.id, credits=20, thresholds=[50])
    request = GenerationRequest(category="chat", text="Capital of France?", max_tokens=100)
    made = 0
    with pytest.raises(BudgetExceededError):
        for _ in range(30):
            env.generate(user, "gpt-4o", request)
            made += 1
    with pytest.raises(BudgetExceededError):
        env.generate(user, "gpt-4o", request)
    assert 5 <= made < 30 and len(env.upstream.requests) == made  # refused calls never reached the provider
    log = AlertLog(runtime.session_factory, env.settings)
    assert sorted(a.kind for a in log.list_alerts()) == ["hard_limit", "threshold"]


def test_a_budget_on_an_api_key_alerts_when_calls_through_that_key_cross_its_threshold(runtime: Database) -> None:
    """Calls that come through an API key (the gateway's way in) are checked against that key's budget after each
    settle, not only the user's and team's: a key budget crossing 50% records its threshold alert."""
    env = Env(runtime, [httpx.Response(200, json=CHAT_OK) for _ in range(30)])
    env.services.flow.alerts = AlertHook(runtime.session_factory, env.settings)
    user = funded_user(runtime, credits=10_000)
    new = env.services.keys.create(SYSTEM, user.id, "app key")
    BudgetBook(runtime.session_factory, env.settings).set(api_key_id=new.key.id, credits=20, thresholds=[50])
    caller = env.services.keys.admit(SYSTEM, new.secret)
    request = GenerationRequest(category="chat", text="Capital of France?", max_tokens=100)
    log = AlertLog(runtime.session_factory, env.settings)
    for _ in range(30):
        try:
            env.generate(user.id, "gpt-4o", request, caller=caller)
        except BudgetExceededError:
            break
        if log.list_alerts():
            break
    (alert,) = [a for a in log.list_alerts() if a.kind == "threshold"]
    assert alert.details["scope"] == "api_key" and alert.details["pct"] == 50
