"""The pricing lab's what-if: at the settings in force it gives back what the ledger billed, exactly (per person, per
model, in total, and as the Spend page counts revenue); other settings follow the money rules' closed forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.analytics import SpendFilter
from core.billing import BillingService, UsageRecord
from core.config import Settings
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction
from core.errors import InvalidInputError
from core.optimize.pricing import PricingScenario, what_if
from core.usage import Usage
from tests.core.billing.conftest import catalog_model, make_user, record_for
from tests.core.optimize.history import synced

TODAY = datetime.now(UTC).date()


def billing(rt: Database, rounding: str = "per_call") -> BillingService:
    return BillingService(rt.session_factory, Settings(database_url=rt.settings.database_url, rounding_policy=rounding))


def call(b: BillingService, who: object, model: object, cost: str, key: str, **kw: object) -> None:
    b.settle(b.reserve(who, 1, key), UsageRecord(model=model, usage=Usage(), base_cost_usd=Decimal(cost), **kw))


def test_replay_at_the_settings_in_force_gives_back_what_was_billed(runtime: Database) -> None:
    rt = runtime
    per_call, accrual = billing(rt), billing(rt, "accrual")
    bark, gpt4o, sandbox = (
        catalog_model(rt, "suno/bark"),
        catalog_model(rt, "gpt-4o"),
        catalog_model(rt, "sandbox-chat"),
    )
    people = [make_user(rt, f"u{i}@example.com", markup=m) for i, m in enumerate(["100", "33.3333", "0", "250"])]
    for who in people:
        per_call.grant(who, 10_000)
    for i in range(12):  # accrual calls before the period: the accounts carry remainders into it
        call(accrual, people[i % 4], bark, "0.0037", f"early-{i}")
    with rt.session() as s:  # the early calls and their debits happened three days ago
        for row in [
            *s.scalars(select(AIUsageLog)),
            *s.scalars(select(CreditTransaction).where(CreditTransaction.amount < 0)),
        ]:
            row.created_at -= timedelta(days=3)
    for i in range(40):
        who = people[i % 4]
        call(per_call, who, bark, f"0.00{i % 9 + 1}", f"p{i}")
        call(accrual, who, bark, f"0.00{i % 7 + 1}3", f"a{i}")
    big = per_call.settle(
        per_call.reserve(people[1], 1, "over"), record_for(gpt4o, Usage(input_tokens=90_000, output_tokens=4_000))
    )  # costs far more than its 1-credit hold: posted as overage
    per_call.release(
        per_call.reserve(people[2], 5, "fail"), UsageRecord(model=bark, usage=Usage(), base_cost_usd=0, status="failed")
    )
    call(per_call, people[3], sandbox, "0.5", "sandbox", sandbox=True)
    # response-cache hits: charged at catalog price (per call and by accrual), and one free: replayed from the cost
    # they were priced at, with no provider cost
    call(per_call, people[0], bark, "0.007", "hit-1", cache_hit=True)
    call(accrual, people[1], bark, "0.0053", "hit-2", cache_hit=True)
    call(per_call, people[2], bark, "0", "hit-3", cache_hit=True, metadata={"catalog_cost_usd": "0.004"})
    per_call.charge(people[0], Decimal("1.80"), idempotency_key="up", description="uptime", kind="endpoint_uptime")
    per_call.refund(big.transaction, "bad answer", credits=7)

    q = synced(rt)
    result = what_if(q, PricingScenario(), since=TODAY, until=TODAY)
    with rt.session() as s:
        billed = -int(
            s.scalar(
                select(func.sum(CreditTransaction.amount)).where(
                    CreditTransaction.transaction_type.in_(("usage", "endpoint_uptime", "refund")),
                    CreditTransaction.created_at >= result.period.start,
                )
            )
        )
    assert result.billed.credits == result.what_if.credits == billed
    assert result.difference_usd == 0 and result.pays_more() == result.pays_less() == 0
    assert list(result.by_user["billed_credits"]) == list(result.by_user["what_if_credits"])
    assert list(result.by_model["billed_credits"]) == list(result.by_model["what_if_credits"])
    spend = q.breakdown("provider", SpendFilter(start=result.period.start, end=result.period.end)).frame
    # each model row names its provider (a repository served serverless and dedicated is two rows), and the rows of a
    # provider add up to its credits on Spend
    per_provider = result.by_model.groupby("provider")["billed_credits"].sum().to_dict()
    assert per_provider == {p: int(c) for p, c in zip(spend["provider"], spend["credits"], strict=True)}
    assert result.billed.revenue_usd == result.what_if.revenue_usd == billed * Decimal("0.04")
    assert result.billed.revenue_usd == sum(spend["revenue_usd"]) and result.base_cost_usd == sum(
        spend["base_cost_usd"]
    )
    with rt.session() as s:
        provider_cost = s.scalar(
            select(func.sum(AIUsageLog.base_cost_usd)).where(
                AIUsageLog.created_at >= result.period.start, ~AIUsageLog.cache_hit, ~AIUsageLog.sandbox
            )
        )
    assert result.base_cost_usd == provider_cost + Decimal("1.80")  # the calls that reached a provider, and uptime


@pytest.fixture
def thousand_calls(sqlite_runtime: Database) -> Database:
    """1,000 calls of $0.003 billed per call at 100%: 2 credits each."""
    rt = sqlite_runtime
    b = billing(rt)
    ana = make_user(rt, "ana@example.com", markup="100")
    bo = make_user(rt, "bo@example.com", markup="100")
    bark = catalog_model(rt, "suno/bark")
    for who in (ana, bo):
        b.grant(who, 5_000)
    for i in range(1000):
        call(b, ana if i % 2 else bo, bark, "0.003", f"c{i}")
    return rt


def test_accrual_charges_the_exact_total(thousand_calls: Database) -> None:
    result = what_if(synced(thousand_calls), PricingScenario(rounding="accrual"), since=TODAY, until=TODAY)
    # each person: 500 x 0.15 credits = 75 credits exactly, against 1,000 billed per call
    assert result.billed.credits == 2000 and result.what_if.credits == 150
    assert result.billed.revenue_usd == Decimal("80.00") and result.what_if.revenue_usd == Decimal("6.00")
    assert result.billed.marked_up_cost_usd == result.what_if.marked_up_cost_usd == Decimal("6.00")
    assert result.billed.rounding_beyond_markup_usd == Decimal("74.00")
    assert result.what_if.rounding_beyond_markup_usd == 0
    # the Spend page's uplift counts only the rounding before the markup: 1,000 x (1 credit $0.04 - $0.003)
    assert result.rounding_uplift_usd == Decimal("37.00")
    assert list(result.by_user["what_if_credits"]) == [75, 75] and result.pays_less() == 2


def test_accrual_in_the_lab_matches_accrual_in_the_ledger(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    per_call, accrual = billing(rt), billing(rt, "accrual")
    ana, bo = make_user(rt, "ana@example.com", markup="37.5"), make_user(rt, "bo@example.com", markup="37.5")
    bark = catalog_model(rt, "suno/bark")
    for who in (ana, bo):
        per_call.grant(who, 5_000)
    for i in range(301):
        cost = f"0.00{i % 9 + 1}7"
        call(per_call, ana, bark, cost, f"p{i}")
        call(accrual, bo, bark, cost, f"a{i}")
    result = what_if(synced(rt), PricingScenario(rounding="accrual"), since=TODAY, until=TODAY)
    rows = {r["user"]: r for r in result.by_user.to_dict("records")}
    assert rows["ana@example.com"]["what_if_credits"] == rows["bo@example.com"]["billed_credits"]
    assert rows["bo@example.com"]["what_if_credits"] == rows["bo@example.com"]["billed_credits"]


def test_markup_credit_price_and_per_person_markups(thousand_calls: Database) -> None:
    q = synced(thousand_calls)
    # $0.003 = 1 base credit: x 1.5 -> 2 credits at 50%, x 1.0 -> 1 credit at 0%
    half = what_if(q, PricingScenario(markup_pct=Decimal(50)), since=TODAY, until=TODAY)
    assert half.what_if.credits == 2000 and half.difference_usd == 0
    none = what_if(q, PricingScenario(markup_pct=Decimal(0)), since=TODAY, until=TODAY)
    assert none.what_if.credits == 1000 and none.what_if.revenue_usd == Decimal("40.00")
    # one credit = $0.002: $0.003 is 2 base credits, 4 at 100%: 4,000 credits, $8.00
    cheap = what_if(q, PricingScenario(credit_usd=Decimal("0.002")), since=TODAY, until=TODAY)
    assert cheap.what_if.credits == 4000 and cheap.what_if.revenue_usd == Decimal("8.000")
    only_ana = what_if(q, PricingScenario(user_markups=(("Ana@Example.com", Decimal(400)),)), since=TODAY, until=TODAY)
    rows = {r["user"]: r for r in only_ana.by_user.to_dict("records")}
    assert rows["ana@example.com"]["what_if_credits"] == 2500 and rows["bo@example.com"]["difference_usd"] == 0
    assert only_ana.pays_more() == 1 and only_ana.pays_less() == 0
    assert list(only_ana.by_user["user"]) == ["ana@example.com", "bo@example.com"]  # biggest difference first


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (lambda: PricingScenario(markup_pct=Decimal(-5)), "Markup must be between 0% and 1000%"),
        (lambda: PricingScenario(credit_usd=Decimal("0.0000000001")), "at most 9 decimals"),
        (lambda: PricingScenario(rounding="monthly"), "Unknown rounding policy 'monthly'"),
    ],
)
def test_bad_scenarios_are_refused_with_a_sentence(scenario: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        scenario()


def test_an_unknown_person_is_refused(thousand_calls: Database) -> None:
    with pytest.raises(InvalidInputError, match=r"No user 'nobody@example\.com'"):
        what_if(synced(thousand_calls), PricingScenario(user_markups=(("nobody@example.com", Decimal(1)),)))


def test_a_very_dear_call_is_replayed_exactly_too(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    b, ana = billing(rt), make_user(rt, "ana@example.com", markup="100")
    b.grant(ana, 100_000)
    call(b, ana, catalog_model(rt, "suno/bark"), "1000.000000003", "dear")  # past the 64-bit fast path ($800)
    q = synced(rt)
    assert what_if(q, PricingScenario(), since=TODAY, until=TODAY).what_if.credits == 50_002  # 25,001 base x 2
    accrual = what_if(q, PricingScenario(rounding="accrual"), since=TODAY, until=TODAY)
    assert accrual.what_if.credits == 50_001  # ceil(50,000.00000015)
    assert accrual.what_if.marked_up_cost_usd == Decimal("2000.000000006")
