"""API keys through the services door, on SQLite and PostgreSQL: shown once and stored as a hash, listed by owner,
revoked, expired, rate limited, narrowed to their models, and a key's monthly credits enforced by the ledger."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from core.access import SYSTEM, Principal
from core.billing.key_limits import KeyLimitError
from core.db import Database
from core.db.models import ApiKey, AuditLog, utcnow
from core.errors import InvalidInputError, PermissionDeniedError, RateLimitedError, UnauthenticatedError
from core.providers.types import GenerationRequest
from core.services import Services
from core.usage import Usage
from core.users import add_user
from tests.core.billing.conftest import catalog_model, record_for

CHAT = GenerationRequest(category="chat", text="hello")


@pytest.fixture
def services(runtime: Database) -> Services:
    svc = Services(runtime)
    with runtime.session() as s:
        for email, role in (("ana@x.io", "pm"), ("bo@x.io", "pm"), ("root@x.io", "admin")):
            add_user(s, email=email, name=email[:3], role=role)
    return svc


def test_a_key_is_shown_once_and_stored_as_its_hash(services: Services, runtime: Database) -> None:
    made = services.keys.create(SYSTEM, "ana@x.io", "my app")
    assert made.secret.startswith("sk-ac-") and made.key.prefix == made.secret[:12]
    assert made.secret not in repr(made)
    with runtime.session() as s:
        row = s.scalars(select(ApiKey)).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "api_key.create")).one()
    assert row.key_hash != made.secret and len(row.key_hash) == 64
    assert made.secret not in str(vars(row)) and made.secret not in str(audit.details)
    who = services.keys.admit(SYSTEM, made.secret)
    assert (who.email, who.api_key_id, who.api_key_models) == ("ana@x.io", made.key.id, None)


@pytest.mark.parametrize("secret", [None, "", "sk-ac-nope", "Bearer x", "x" * 500])
def test_unknown_keys_are_refused(services: Services, secret: str | None) -> None:
    with pytest.raises(UnauthenticatedError):
        services.keys.admit(SYSTEM, secret)


def test_revoked_and_expired_keys_are_refused(services: Services) -> None:
    made = services.keys.create(SYSTEM, "ana@x.io", "soon revoked")
    services.keys.revoke(Principal.of(services.users.get(SYSTEM, "ana@x.io")), "ana@x.io", made.key.prefix)
    with pytest.raises(UnauthenticatedError, match="revoked"):
        services.keys.admit(SYSTEM, made.secret)
    short = services.keys.create(SYSTEM, "ana@x.io", "short", expires=utcnow() + timedelta(milliseconds=50))
    import time

    time.sleep(0.1)
    with pytest.raises(UnauthenticatedError, match="expired"):
        services.keys.admit(SYSTEM, short.secret)
    with pytest.raises(InvalidInputError, match="in the past"):
        services.keys.create(SYSTEM, "ana@x.io", "late", expires=date(2020, 1, 1))


def test_people_manage_their_own_keys_and_admins_everyones(services: Services) -> None:
    ana = Principal.of(services.users.get(SYSTEM, "ana@x.io"))
    root = Principal.of(services.users.get(SYSTEM, "root@x.io"))
    mine = services.keys.create(ana, "ana@x.io", "mine")
    services.keys.create(root, "bo@x.io", "made by an admin")
    with pytest.raises(PermissionDeniedError):
        services.keys.create(ana, "bo@x.io", "not mine")
    with pytest.raises(PermissionDeniedError):
        services.keys.revoke(ana, "bo@x.io", 2)
    with pytest.raises(PermissionDeniedError):
        services.keys.list(ana, "bo@x.io")
    assert [k.id for k in services.keys.list(ana)] == [mine.key.id]
    assert {k.owner_email for k in services.keys.list(root)} == {"ana@x.io", "bo@x.io"}


def test_rpm_and_models_narrow_a_key(services: Services) -> None:
    made = services.keys.create(SYSTEM, "ana@x.io", "narrow", rpm=2, models=["sandbox-chat"])
    who = services.keys.admit(SYSTEM, made.secret)
    services.keys.admit(SYSTEM, made.secret)
    with pytest.raises(RateLimitedError, match="2 requests per minute") as refused:
        services.keys.admit(SYSTEM, made.secret)
    assert 0 < refused.value.retry_after <= 30
    assert [m.model_id for m in services.keys.models(who)] == ["sandbox-chat"]
    services.ledger.grant(SYSTEM, "ana@x.io", 100)
    assert services.generation.generate(who, who.user_id, "sandbox-chat", CHAT).sandbox
    with pytest.raises(PermissionDeniedError, match="may not call 'sandbox-tts'"):
        services.generation.generate(who, who.user_id, "sandbox-tts", GenerationRequest(category="tts", text="x"))
    with pytest.raises(InvalidInputError, match="Unknown model"):
        services.keys.create(SYSTEM, "ana@x.io", "bad", models=["gpt-17"])
    # the API keys page saved 99,999,999,999,999 monthly credits, which the command line refuses
    with pytest.raises(InvalidInputError, match="at most 2,147,483,647"):
        services.keys.create(SYSTEM, "ana@x.io", "huge", monthly_credits=99_999_999_999_999)


def test_usage_rows_record_the_key_and_the_api_source(services: Services, runtime: Database) -> None:
    made = services.keys.create(SYSTEM, "ana@x.io", "tracked")
    who = services.keys.admit(SYSTEM, made.secret)
    result = services.generation.generate(who, who.user_id, "sandbox-chat", CHAT, source="playground")
    from core.db.models import AIUsageLog

    with runtime.session() as s:
        row = s.get(AIUsageLog, result.usage_id)
    assert (row.api_key_id, row.source) == (made.key.id, "api")


def test_a_keys_monthly_credits_count_its_spend_and_its_holds(services: Services) -> None:
    services.ledger.grant(SYSTEM, "ana@x.io", 1000)
    made = services.keys.create(SYSTEM, "ana@x.io", "capped", monthly_credits=10)
    billing = services.billing
    first = billing.reserve("ana@x.io", 6, "k-1", api_key_id=made.key.id)
    with pytest.raises(KeyLimitError, match="has 4 of its 10 credits a month left"):
        billing.reserve("ana@x.io", 5, "k-2", api_key_id=made.key.id)
    assert billing.reserve("ana@x.io", 500, "no-key").credits == 500  # the owner's other calls are not capped
    billing.release(first)
    assert billing.reserve("ana@x.io", 10, "k-3", api_key_id=made.key.id).api_key_id == made.key.id
    other = services.keys.create(SYSTEM, "bo@x.io", "bo's")
    with pytest.raises(KeyLimitError, match="does not belong"):
        billing.reserve("ana@x.io", 1, "k-4", api_key_id=other.key.id)


def test_a_refunded_call_of_a_key_no_longer_counts_against_its_monthly_credits(
    services: Services, runtime: Database
) -> None:
    """As on the Spend page by key and in a budget on the key: the key's calls less the refunds of them."""
    services.ledger.grant(SYSTEM, "ana@x.io", 1000)
    made = services.keys.create(SYSTEM, "ana@x.io", "capped", monthly_credits=30)
    services.budgets.set_budget(SYSTEM, credits=1000, api_key_id=made.key.id)
    billing = services.billing
    gpt4o = catalog_model(runtime, "gpt-4o")
    usage = Usage(input_tokens=200_000, output_tokens=10_000)  # $0.60: 15 base credits, 30 at 100% markup
    settled = billing.settle(
        billing.reserve("ana@x.io", 30, "k-1", api_key_id=made.key.id), record_for(gpt4o, usage, api_key_id=made.key.id)
    )
    assert settled.credits_charged == 30
    with pytest.raises(KeyLimitError, match="has 0 of its 30 credits a month left"):
        billing.reserve("ana@x.io", 1, "k-2", api_key_id=made.key.id)
    services.ledger.refund(SYSTEM, settled.transaction.id, "wrong answer", credits=12)  # type: ignore[union-attr]
    [budget] = services.budgets.budgets(SYSTEM)
    assert budget.spent == 18
    with pytest.raises(KeyLimitError, match="has 12 of its 30 credits a month left"):
        billing.reserve("ana@x.io", 13, "k-3", api_key_id=made.key.id)
    assert billing.reserve("ana@x.io", 12, "k-4", api_key_id=made.key.id).credits == 12


def test_a_gateway_keeps_keys_it_read_and_forgets_them_when_one_is_revoked_in_its_process(
    services: Services, runtime: Database
) -> None:
    services.keys.lookup_ttl = 3600.0  # as the gateway sets it (GATEWAY_CACHE_SECONDS), long enough not to lapse here
    here = services.keys.create(SYSTEM, "ana@x.io", "revoked here")
    elsewhere = services.keys.create(SYSTEM, "ana@x.io", "revoked elsewhere")
    for made in (here, elsewhere):
        services.keys.admit(SYSTEM, made.secret)  # read once, then kept
    other = Services(runtime)  # another process (the API keys page, another worker)
    other.keys.revoke(SYSTEM, "ana@x.io", elsewhere.key.prefix)
    other.close()
    assert services.keys.admit(SYSTEM, elsewhere.secret).api_key_id == elsewhere.key.id  # kept until its TTL
    services.keys.revoke(SYSTEM, "ana@x.io", here.key.prefix)
    for made in (here, elsewhere):  # a revocation in this process forgets every kept key
        with pytest.raises(UnauthenticatedError, match="revoked"):
            services.keys.admit(SYSTEM, made.secret)
