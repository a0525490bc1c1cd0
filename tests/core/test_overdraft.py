"""An account below zero (a delivered call cost more than its hold): a zero-cost hold (the free sandbox) still
passes, anything that costs a credit is refused before any upstream call, and every page's banners lead with one
saying so and what to do, until a top-up. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from core.access import Principal
from core.billing.errors import InsufficientCreditsError
from core.db import Database
from core.providers import GenerationRequest
from tests.core.test_generate import Env, funded_user
from tests.support.billing import overdraw_by_uptime


def overdraw(env: Env, credits: int) -> None:
    """Take the user `credits` below zero the way production does: delivered endpoint uptime, posted anyway."""
    overdraw_by_uptime(env.billing, "ana@example.com", credits)


def test_an_overdrawn_user_keeps_the_free_sandbox_and_nothing_else(runtime: Database) -> None:
    env = Env(runtime, [])
    ana = funded_user(runtime, credits=5)
    overdraw(env, 2_010)
    assert env.billing.balance(ana.id).available == -2_005
    r = env.generate(ana.email, "sandbox-chat", GenerationRequest(category="chat", text="hello"))
    assert r.sandbox and r.credits_charged == 0 and r.balance_after == -2_005
    with pytest.raises(
        InsufficientCreditsError,
        match=r"needs 2, you have none available \(the balance, less what is held, is -2,005\)",
    ):
        env.generate(ana.email, "gpt-4o-mini", GenerationRequest(category="chat", text="hi", max_tokens=10))
    assert env.upstream.requests == []  # refused before the provider was asked
    assert env.billing.balance(ana.id).total == -2_005


def test_a_zero_credit_hold_passes_below_zero_and_a_one_credit_hold_does_not(runtime: Database) -> None:
    env = Env(runtime, [])
    ana = funded_user(runtime, credits=1)
    overdraw(env, 3)
    hold = env.billing.reserve(ana.id, 0, "free-1")
    assert hold.credits == 0 and hold.status == "held"
    with pytest.raises(InsufficientCreditsError):
        env.billing.reserve(ana.id, 1, "paid-1")


def test_the_overdraft_banner_says_how_far_below_zero_and_goes_with_the_top_up(runtime: Database) -> None:
    env = Env(runtime, [])
    ana = funded_user(runtime, credits=5)
    me = Principal.of(ana)
    assert [b.kind for b in env.services.budgets.banners(me)] == []
    overdraw(env, 2_010)
    [banner] = env.services.budgets.banners(me)
    assert banner.kind == "overdraft" and banner.severity == "critical"
    assert banner.message.startswith("Your balance is -2,005 credits: overdrawn by 2,005 credits ($80.20).")
    assert "the free sandbox models still work" in banner.message
    assert "top-up of at least 2,005 credits" in banner.message
    env.billing.grant(ana.id, 2_005, kind="topup")
    assert env.services.budgets.banners(me) == []
