"""The billing service's rules, on SQLite and PostgreSQL: grants, balances, holds, settlement, charges, refunds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.billing import (
    BillingService,
    HoldStateError,
    InsufficientCreditsError,
    InvalidAmountError,
    UnknownUserError,
    UsageRecord,
)
from core.billing.ledger_check import check_ledger
from core.billing.types import Hold
from core.catalog import ModelPrice
from core.db import Database
from core.db.models import AIUsageLog, AuditLog, CreditHold, CreditTransaction, User, utcnow
from core.errors import ConfigError, InvalidInputError
from core.usage import Usage
from core.users import UserView
from tests.core.billing.conftest import catalog_model, make_user, record_for


def usage_rows(rt: Database) -> list[AIUsageLog]:
    with rt.session() as s:
        return list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))


def ledger_rows(rt: Database) -> list[CreditTransaction]:
    with rt.session() as s:
        return list(s.scalars(select(CreditTransaction).order_by(CreditTransaction.id)))


def assert_consistent(rt: Database) -> None:
    assert check_ledger(rt.session_factory) == []


# ---- grants and balances -----------------------------------------------------------------------------------------
def test_grant_then_balance_by_id_email_and_view(runtime: Database, billing: BillingService, user: UserView) -> None:
    tx = billing.grant(user, 500, note="welcome", actor="boss@example.com")
    assert tx.amount == 500 and tx.balance_after == 500 and tx.transaction_type == "grant"
    for ref in (user, user.id, user.email, user.email.upper(), str(user.id)):
        assert billing.balance(ref).total == 500
    with runtime.session() as s:
        audit = s.scalars(select(AuditLog)).one()
    assert audit.actor == "boss@example.com" and audit.action == "credits.grant" and audit.target == user.email
    assert audit.details["credits"] == 500 and audit.details["transaction_id"] == tx.id
    assert_consistent(runtime)


def test_grant_idempotency_key_posts_once(runtime: Database, billing: BillingService, user: UserView) -> None:
    first = billing.grant(user, 100, kind="topup", idempotency_key="form-1")
    again = billing.grant(user, 100, kind="topup", idempotency_key="form-1")
    assert again == first
    assert billing.balance(user).total == 100
    with runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == 1


def test_adjustment_may_be_negative_but_not_below_available(
    runtime: Database, billing: BillingService, user: UserView
) -> None:
    billing.grant(user, 100)
    billing.reserve(user, 30, "call-1")
    billing.grant(user, -70, kind="adjustment", note="correction")
    assert billing.balance(user).total == 30 and billing.balance(user).available == 0
    with pytest.raises(InsufficientCreditsError) as err:
        billing.grant(user, -1, kind="adjustment")
    assert err.value.needed == 1 and err.value.available == 0
    assert billing.balance(user).total == 30
    assert_consistent(runtime)


def test_grant_and_topup_cannot_be_negative(billing: BillingService, user: UserView) -> None:
    for kind in ("grant", "topup"):
        with pytest.raises(InvalidAmountError):
            billing.grant(user, -5, kind=kind)


# ---- holds and settlement ----------------------------------------------------------------------------------------
def test_reserve_lowers_available_and_same_key_returns_same_hold(billing: BillingService, user: UserView) -> None:
    billing.grant(user, 100)
    hold = billing.reserve(user, 40, "req-1")
    assert billing.reserve(user, 40, "req-1") == hold
    assert billing.balance(user) == billing.balance(user.email)
    bal = billing.balance(user)
    assert (bal.total, bal.held, bal.available) == (100, 40, 60)
    with pytest.raises(InsufficientCreditsError) as err:
        billing.reserve(user, 61, "req-2")
    assert (err.value.needed, err.value.available) == (61, 60)
    assert "needs 61" in str(err.value) and "60 available" in str(err.value)


def test_settle_writes_usage_row_and_debit_together(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 100)
    hold = billing.reserve(user, 10, "req-1")
    usage = Usage(input_tokens=1000, cached_tokens=400, output_tokens=500)
    rec = record_for(gpt4o, usage, latency_ms=812, request_id="upstream-abc", metadata={"temperature": Decimal("0.2")})
    st = billing.settle(hold, rec)
    # $0.007 -> 1 base credit -> 2 credits at the user's 100% markup
    assert (st.base_cost_usd, st.base_credits, st.markup_pct, st.credits_charged) == (Decimal("0.007"), 1, 100, 2)
    assert not st.overage and st.balance_after == 98 and st.transaction is not None
    assert billing.balance(user) == billing.balance(user.id)
    assert billing.balance(user).held == 0 and billing.balance(user).total == 98
    [row] = usage_rows(runtime)
    assert row.id == st.usage_id and row.transaction_id == st.transaction.id
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (1000, 400, 500)
    assert row.base_cost_usd == Decimal("0.007") and row.markup_pct == 100
    assert row.cost_credits == 2 and row.charged_usd == Decimal("0.08")
    assert row.status == "success" and row.latency_ms == 812 and row.request_id == "upstream-abc"
    assert row.idempotency_key == "req-1" and row.provider == "openai" and row.ai_model_id == gpt4o.id
    assert row.meta == {"temperature": "0.2"}
    tx = st.transaction
    assert tx.amount == -2 and tx.transaction_type == "usage" and tx.idempotency_key == "req-1"
    assert tx.metadata == {"usage_id": row.id, "hold_id": hold.id}
    assert billing.transactions(user)[-1] == tx  # the debit as stored is the one returned (PostgreSQL: one statement)
    with runtime.session() as s:
        h = s.get(CreditHold, hold.id)
        assert h.status == "settled" and h.transaction_id == tx.id
    assert_consistent(runtime)


def test_settle_twice_or_after_release_raises_and_writes_nothing(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 100)
    rec = record_for(gpt4o, Usage(input_tokens=10, output_tokens=10))
    hold = billing.reserve(user, 5, "req-1")
    billing.settle(hold, rec)
    before = (len(usage_rows(runtime)), len(ledger_rows(runtime)))
    with pytest.raises(HoldStateError, match="already settled"):
        billing.settle(hold, rec)
    other = billing.reserve(user, 5, "req-2")
    billing.release(other)
    with pytest.raises(HoldStateError, match="already released"):
        billing.settle(other, rec)
    with pytest.raises(HoldStateError, match="already released"):
        billing.release(other)
    with pytest.raises(HoldStateError, match="already settled"):
        billing.release(hold)
    assert (len(usage_rows(runtime)), len(ledger_rows(runtime))) == before
    assert_consistent(runtime)


def test_release_with_failure_writes_failed_row_without_charge(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 100)
    hold = billing.reserve(user, 50, "req-1")
    failure = UsageRecord(
        model=gpt4o, usage=Usage(input_tokens=100), base_cost_usd=Decimal(0), status="failed", error="upstream 503"
    )
    billing.release(hold, failure)
    assert billing.balance(user).available == 100
    [row] = usage_rows(runtime)
    assert row.status == "failed" and row.cost_credits == 0 and row.transaction_id is None
    assert row.error == "upstream 503" and row.idempotency_key == "req-1"
    assert len(ledger_rows(runtime)) == 1  # only the grant
    assert_consistent(runtime)


def test_sandbox_and_dedicated_rows_are_logged_but_never_debited(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 100)
    sandbox = catalog_model(runtime, "sandbox-chat")
    usage = Usage(input_tokens=2000, output_tokens=1000)
    would_be = record_for(gpt4o, usage).base_cost_usd
    st = billing.settle(
        billing.reserve(user, 0, "sb-1"), UsageRecord(model=sandbox, usage=usage, base_cost_usd=would_be, sandbox=True)
    )
    assert st.transaction is None and st.credits_charged == 0 and st.base_cost_usd == would_be
    dedicated = catalog_model(runtime, "meta-llama/Llama-3.1-8B-Instruct", "huggingface_endpoint")
    st2 = billing.settle(
        billing.reserve(user, 0, "ded-1"),
        UsageRecord(model=dedicated, usage=usage, base_cost_usd=Decimal(0), endpoint_id=7),
    )
    assert st2.transaction is None and st2.credits_charged == 0
    rows = usage_rows(runtime)
    assert [r.cost_credits for r in rows] == [0, 0] and rows[0].sandbox and rows[0].base_cost_usd == would_be
    assert rows[1].endpoint_id == 7 and rows[1].deployment_type == "dedicated"
    assert billing.balance(user).total == 100
    assert_consistent(runtime)


def test_overage_is_posted_and_flagged_even_below_zero(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 3)
    hold = billing.reserve(user, 2, "req-1")
    big = record_for(gpt4o, Usage(input_tokens=100_000, output_tokens=10_000))  # $0.35 -> 9 -> 18 credits
    st = billing.settle(hold, big)
    assert st.overage and st.credits_charged == 18 and st.balance_after == -15
    assert st.transaction.metadata["overage"] == {"held": 2, "charged": 18}
    assert st.transaction.metadata["overdraft"] is True
    assert billing.transactions(user)[-1] == st.transaction  # stored as returned, flags and all
    [row] = usage_rows(runtime)
    assert row.meta["overage"] == {"held": 2, "charged": 18}
    assert billing.balance(user).available == -15
    with pytest.raises(InsufficientCreditsError):
        billing.reserve(user, 1, "req-2")
    assert_consistent(runtime)  # a flagged overdraft is not a violation


@pytest.fixture
def hold(billing: BillingService, user: UserView) -> Hold:
    """60 of the user's 100 credits held for a call, for one second."""
    billing.grant(user, 100)
    return billing.reserve(user, 60, "req-1", ttl_seconds=1)


def test_expired_hold_frees_credits_and_its_delivered_call_is_still_settled(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice, hold: Hold
) -> None:
    assert billing.balance(user).held == 60
    assert billing.expire_holds(now=utcnow() + timedelta(seconds=5)) == 1
    assert billing.balance(user).held == 0
    assert not billing.extend_hold(hold, until=utcnow() + timedelta(hours=1))  # an expired hold is not revived
    # the call outlived its hold but delivered: billed, flagged (it used to be refused and the output lost)
    st = billing.settle(hold, record_for(gpt4o, Usage(input_tokens=10)))
    assert st.credits_charged == 2 and st.transaction is not None and st.transaction.metadata["hold_expired"] is True
    [row] = usage_rows(runtime)
    assert row.meta["hold_expired"] is True and row.cost_credits == 2
    with pytest.raises(HoldStateError, match="already settled"):
        billing.release(hold)
    assert billing.expire_holds() == 0
    assert_consistent(runtime)


def test_an_expired_hold_may_be_released_to_record_a_failure(
    runtime: Database, billing: BillingService, gpt4o: ModelPrice, hold: Hold
) -> None:
    billing.expire_holds(now=utcnow() + timedelta(seconds=5))
    billing.release(hold, UsageRecord(model=gpt4o, usage=Usage(), base_cost_usd=Decimal(0), status="failed"))
    assert len(usage_rows(runtime)) == 1
    assert_consistent(runtime)


def test_reserve_sweeps_the_accounts_expired_holds(
    runtime: Database, billing: BillingService, user: UserView, hold: Hold
) -> None:
    old = hold
    with runtime.session() as s:  # time passes
        s.get(CreditHold, old.id).expires_at = utcnow() - timedelta(seconds=1)
    assert billing.balance(user).available == 100  # no longer counted, even before any sweep
    billing.reserve(user, 80, "req-2")
    with runtime.session() as s:
        assert s.get(CreditHold, old.id).status == "expired"  # the stored status is true again


def test_a_live_hold_is_extended_and_stays_counted(runtime: Database, billing: BillingService, user: UserView) -> None:
    billing.grant(user, 100)
    hold = billing.reserve(user, 60, "req-1", ttl_seconds=1)
    later = utcnow() + timedelta(minutes=10)
    assert billing.extend_hold(hold, until=later)
    assert billing.expire_holds(now=utcnow() + timedelta(seconds=5)) == 0 and billing.balance(user).held == 60


# ---- direct charges ----------------------------------------------------------------------------------------------
def test_charge_uses_the_users_markup_and_key_returns_first(
    runtime: Database, billing: BillingService, user: UserView
) -> None:
    billing.grant(user, 10)
    tx = billing.charge(user, Decimal("0.003"), idempotency_key="c-1", description="spec example")
    assert tx.amount == -2 and tx.balance_after == 8  # $0.003 -> 1 -> 2 credits at 100%
    assert billing.charge(user, Decimal("0.5"), idempotency_key="c-1", description="retry") == tx
    assert billing.balance(user).total == 8
    tx2 = billing.charge(user, Decimal("0.003"), markup_pct=Decimal(0), idempotency_key="c-2", description="x")
    assert tx2.amount == -1 and tx2.metadata["markup_pct"] == "0"
    assert_consistent(runtime)


def test_charge_refuses_overdraft_unless_allowed(runtime: Database, billing: BillingService, user: UserView) -> None:
    billing.grant(user, 3)
    with pytest.raises(InsufficientCreditsError) as err:
        billing.charge(user, Decimal("0.08"), idempotency_key="c-1", description="x")  # 2 -> 4 credits
    assert (err.value.needed, err.value.available) == (4, 3)
    assert len(ledger_rows(runtime)) == 1
    tx = billing.charge(
        user,
        Decimal("0.08"),
        idempotency_key="uptime-1",
        description="endpoint uptime",
        kind="endpoint_uptime",
        allow_overdraft=True,
        metadata={"endpoint_id": 3, "minutes": 2},
    )
    assert tx.balance_after == -1 and tx.metadata["overdraft"] is True and tx.metadata["minutes"] == 2
    assert_consistent(runtime)


def test_calculate_cost_with_markup_takes_base_credits(billing: BillingService, runtime: Database) -> None:
    u = make_user(runtime, "ben@example.com", markup="50")
    assert billing.calculate_cost_with_markup(u, 1) == 2  # 1 x 1.5 -> 2
    assert billing.calculate_cost_with_markup(u.id, 1, Decimal(100)) == 2
    assert billing.calculate_cost_with_markup(u, 25) == 38  # 25 x 1.5 = 37.5 -> 38
    assert billing.calculate_cost_with_markup(user_id=u.id, base_cost=3, developer_markup="0") == 3
    assert billing.calculate_cost_with_markup(u, 0) == 0
    with pytest.raises(InvalidAmountError):
        billing.calculate_cost_with_markup(u, 1, Decimal("1000.5"))
    with pytest.raises(InvalidAmountError, match="must be positive"):
        billing.calculate_cost_with_markup(u, -1)


@pytest.mark.parametrize("ambiguous", [Decimal("0.003"), Decimal("1"), "1", 0.5, True, None])
def test_calculate_cost_with_markup_refuses_what_could_be_dollars(
    billing: BillingService, runtime: Database, ambiguous: object
) -> None:
    u = make_user(runtime, "ben@example.com")
    with pytest.raises(InvalidAmountError, match=r"whole credits.*calculate_cost_with_markup_from_usd"):
        billing.calculate_cost_with_markup(u, ambiguous)  # type: ignore[arg-type]


def test_calculate_cost_with_markup_from_usd(billing: BillingService, runtime: Database) -> None:
    u = make_user(runtime, "ben@example.com", markup="50")
    assert billing.calculate_cost_with_markup_from_usd(u, Decimal("0.003")) == 2  # 1 credit x 1.5 -> 2
    assert billing.calculate_cost_with_markup_from_usd(u, Decimal("0.003"), Decimal(100)) == 2
    assert billing.calculate_cost_with_markup_from_usd(u, Decimal("1")) == 38  # 25 x 1.5 = 37.5 -> 38
    assert billing.calculate_cost_with_markup_from_usd(u, "0") == 0
    with pytest.raises(InvalidAmountError, match="not float"):
        billing.calculate_cost_with_markup_from_usd(u, 0.003)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError, match="negative"):
        billing.calculate_cost_with_markup_from_usd(u, Decimal("-0.01"))


# ---- refunds -----------------------------------------------------------------------------------------------------
def test_refund_once_and_at_most_the_debit(runtime: Database, billing: BillingService, user: UserView) -> None:
    grant = billing.grant(user, 100)
    debit = billing.charge(user, Decimal("0.4"), idempotency_key="c-1", description="x")  # 10 -> 20 credits
    with pytest.raises(InvalidAmountError, match="more than the 20"):
        billing.refund(debit, "too much", credits=21)
    refund = billing.refund(debit.id, "customer complaint", actor="fin@example.com")
    assert refund.amount == 20 and refund.transaction_type == "refund" and refund.balance_after == 100
    assert refund.metadata["refund_of"] == debit.id
    with pytest.raises(InvalidInputError, match="already refunded"):
        billing.refund(debit, "again")
    with pytest.raises(InvalidInputError, match="only debits"):
        billing.refund(grant, "not a debit")
    with pytest.raises(InvalidInputError, match="only debits"):
        billing.refund(refund, "refund of a refund")
    with runtime.session() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "credits.refund")).one()
    assert audit.actor == "fin@example.com" and audit.details["refund_of"] == debit.id
    assert_consistent(runtime)


def test_partial_refund(billing: BillingService, user: UserView) -> None:
    billing.grant(user, 100)
    debit = billing.charge(user, Decimal("0.4"), idempotency_key="c-1", description="x")
    assert billing.refund(debit, "half", credits=10).amount == 10
    assert billing.balance(user).total == 90


# ---- history and usage -------------------------------------------------------------------------------------------
def test_transactions_in_order_with_limit_and_window(billing: BillingService, user: UserView) -> None:
    billing.grant(user, 100)
    for i in range(5):
        billing.charge(user, Decimal("0.04"), idempotency_key=f"c-{i}", description=f"charge {i}")
    txs = billing.transactions(user)
    assert [t.amount for t in txs] == [100, -2, -2, -2, -2, -2]
    assert [t.balance_after for t in txs] == [100, 98, 96, 94, 92, 90]
    assert billing.transactions(user, limit=2) == txs[-2:]
    assert billing.transactions(user, since=utcnow() + timedelta(hours=1)) == []
    assert billing.transactions(user, until=txs[1].created_at) == txs[:1]


def test_usage_totals_and_by_provider(billing: BillingService, user: UserView, runtime: Database) -> None:
    billing.grant(user, 1000)
    gpt = catalog_model(runtime, "gpt-4o")
    claude = catalog_model(runtime, "claude-sonnet-4-5")
    billing.settle(billing.reserve(user, 10, "a"), record_for(gpt, Usage(input_tokens=1000, output_tokens=500)))
    billing.settle(billing.reserve(user, 10, "b"), record_for(claude, Usage(input_tokens=1000, output_tokens=500)))
    billing.release(
        billing.reserve(user, 10, "c"),
        UsageRecord(model=gpt, usage=Usage(), base_cost_usd=Decimal(0), status="failed"),
    )
    totals = billing.get_total_usage(user.id)
    assert (totals.requests, totals.failed) == (3, 1)
    assert totals.credits == 1000 - billing.balance(user).total
    assert totals.cost_usd == Decimal(totals.credits) * Decimal("0.04")
    by = {p.provider: p for p in billing.get_usage_by_provider(user.id)}
    assert set(by) == {"openai", "anthropic"} and by["openai"].requests == 2
    assert sum(p.credits for p in by.values()) == totals.credits


def test_usage_totals_come_from_the_analytics_engine(
    billing: BillingService, user: UserView, runtime: Database
) -> None:
    """The specification's two questions are answered by core.analytics: a store appears, it follows every new
    call, and endpoint uptime and refunds count as spend the way the Spend page counts them."""
    from tests.support.analytics import store_for

    billing.grant(user, 1000)
    gpt = catalog_model(runtime, "gpt-4o")
    billing.settle(billing.reserve(user, 10, "a"), record_for(gpt, Usage(input_tokens=1000, output_tokens=500)))
    first = billing.get_total_usage(user.email)
    store = store_for(runtime)
    assert store.exists() and first.requests == 1
    version = store.current_version()

    uptime = billing.charge(
        user,
        Decimal("0.80"),
        idempotency_key="up-1",
        description="uptime",
        kind="endpoint_uptime",
        metadata={"ai_model_id": gpt.id},
    )
    debit = billing.settle(billing.reserve(user, 10, "b"), record_for(gpt, Usage(input_tokens=10, output_tokens=5)))
    assert debit.transaction is not None
    billing.refund(debit.transaction, "bad answer", credits=1)
    again = billing.get_total_usage(user.id)
    assert store.current_version() > version  # synced for the new rows
    assert again.requests == 2
    assert again.credits == first.credits + (-uptime.amount) + debit.credits_charged - 1
    assert again.credits == 1000 - billing.balance(user).total
    by = billing.get_usage_by_provider(user.id)
    assert {p.provider for p in by} == {"openai", "huggingface_endpoint"}
    assert billing.get_total_usage(user.id).as_of >= again.as_of  # nothing new: no new version, same answer
    assert store.current_version() == version + 1


def test_usage_questions_need_the_analytics_engine_plugged_in(runtime: Database, user: UserView) -> None:
    """Billing ends at the ledger: a BillingService built without the analytics engine says where to get one."""
    bare = BillingService(runtime.session_factory, runtime.settings)
    with pytest.raises(ConfigError, match=r"core\.services"):
        bare.get_total_usage(user.id)


# ---- bad input: typed errors, nothing written --------------------------------------------------------------------
BAD_USD = [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal(0), 0.5, "abc"]


@pytest.mark.parametrize("bad", BAD_USD, ids=str)
def test_charge_refuses_bad_amounts(runtime: Database, billing: BillingService, user: UserView, bad: object) -> None:
    billing.grant(user, 100)
    with pytest.raises(InvalidAmountError) as err:
        billing.charge(user, bad, idempotency_key="k", description="x")  # type: ignore[arg-type]
    assert str(err.value).endswith(".")
    assert len(ledger_rows(runtime)) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, Decimal("NaN"), True, "10", None])
def test_grant_refuses_bad_credits(runtime: Database, billing: BillingService, user: UserView, bad: object) -> None:
    with pytest.raises(InvalidAmountError):
        billing.grant(user, bad)  # type: ignore[arg-type]
    assert ledger_rows(runtime) == []


@pytest.mark.parametrize("bad", [Decimal("-1"), Decimal("1000.01"), Decimal("NaN"), Decimal("Infinity"), "x"])
def test_markup_out_of_range_is_refused(
    runtime: Database, billing: BillingService, user: UserView, bad: object
) -> None:
    billing.grant(user, 100)
    with pytest.raises(InvalidAmountError, match="Markup"):
        billing.charge(user, Decimal("0.04"), markup_pct=bad, idempotency_key="k", description="x")  # type: ignore[arg-type]
    assert len(ledger_rows(runtime)) == 1


def test_unknown_user_is_refused_everywhere(runtime: Database, billing: BillingService) -> None:
    for call in (
        lambda: billing.grant("nobody@example.com", 5),
        lambda: billing.balance(999),
        lambda: billing.reserve("nobody@example.com", 5, "k"),
        lambda: billing.charge(999, Decimal("0.04"), idempotency_key="k", description="x"),
        lambda: billing.transactions("nobody@example.com"),
        lambda: billing.calculate_cost_with_markup(999, 1),
        lambda: billing.calculate_cost_with_markup_from_usd(999, Decimal(1)),
    ):
        with pytest.raises(UnknownUserError, match="users list"):
            call()
    assert ledger_rows(runtime) == []


def test_unknown_model_is_refused(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    from dataclasses import replace

    from core.catalog import UnknownModelError

    billing.grant(user, 100)
    hold = billing.reserve(user, 5, "k")
    ghost = replace(gpt4o, id=99_999, model_id="ghost")
    with pytest.raises(UnknownModelError):
        billing.settle(hold, record_for(ghost, Usage(input_tokens=10)))
    with pytest.raises(UnknownModelError):
        billing.settle(hold, UsageRecord(model=replace(gpt4o, id=None), usage=Usage(), base_cost_usd=Decimal(0)))
    assert usage_rows(runtime) == [] and billing.balance(user).held == 5


def test_bad_keys_holds_and_kinds(billing: BillingService, user: UserView, gpt4o: ModelPrice) -> None:
    billing.grant(user, 100)
    with pytest.raises(InvalidInputError, match="idempotency key is required"):
        billing.charge(user, Decimal(1), idempotency_key=None, description="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at most 200"):
        billing.reserve(user, 1, "k" * 201)
    with pytest.raises(InvalidAmountError):
        billing.reserve(user, -1, "k")
    with pytest.raises(InvalidInputError, match="time to live"):
        billing.reserve(user, 1, "k", ttl_seconds=0)
    with pytest.raises(InvalidInputError, match="Unknown kind"):
        billing.grant(user, 1, kind="gift")
    with pytest.raises(InvalidInputError, match="Unknown charge kind"):
        billing.charge(user, Decimal(1), idempotency_key="k", description="x", kind="grant")
    with pytest.raises(HoldStateError, match="No hold"):
        billing.settle(123_456, record_for(gpt4o, Usage(input_tokens=1)))
    with pytest.raises(InvalidInputError, match="description"):
        billing.charge(user, Decimal(1), idempotency_key="k", description=" ")
    assert billing.balance(user) == billing.balance(user.id) and billing.balance(user).total == 100


def test_negative_usage_cost_in_record_is_refused(
    runtime: Database, billing: BillingService, user: UserView, gpt4o: ModelPrice
) -> None:
    billing.grant(user, 100)
    hold = billing.reserve(user, 5, "k")
    with pytest.raises(InvalidAmountError):
        billing.settle(hold, UsageRecord(model=gpt4o, usage=Usage(), base_cost_usd=Decimal("-1")))
    with runtime.session() as s:
        assert s.get(User, user.id).credit_balance == 100
    assert usage_rows(runtime) == []
