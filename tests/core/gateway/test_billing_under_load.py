"""Billing per request under concurrency: 64 concurrent requests on one key whose credits cover only some of them
(exactly that many succeed, the rest get 402, no overdraft, `ledger check` clean), in one gateway on SQLite and in two
gateway processes on one PostgreSQL with one Redis (which also share the key's requests per minute); the same
Idempotency-Key from 8 clients at once bills once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.access import SYSTEM
from core.db import Database
from core.db.models import AIUsageLog, CreditHold, CreditTransaction
from core.services import Services
from core.users import add_user
from tests.core.gateway.conftest import GatewayWorld, upstream_settings
from tests.support.aio import run
from tests.support.gateway import gateway_processes
from tests.support.loopback import loopback_openai

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 300}
PER_CALL = 2  # gpt-4o-mini at max_tokens 300: hold and charge are both 1 base credit, 2 with the 100% markup
CONCURRENT = 64
PAID_FOR = 20


async def _post_all(urls: list[str], key: str, count: int, extra: dict[str, str] | None = None) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}", **(extra or {})}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=CHAT, headers=headers)
                for i in range(count)
            )
        )


def post_all(urls: list[str], key: str, count: int, extra: dict[str, str] | None = None) -> list[httpx.Response]:
    return run(_post_all(urls, key, count, extra))


def _statuses(replies: list[httpx.Response]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in replies:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


def _check_exactly_paid_for(services: Services, user_id: int, replies: list[httpx.Response]) -> None:
    assert _statuses(replies) == {200: PAID_FOR, 402: CONCURRENT - PAID_FOR}
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in replies if r.status_code == 402)
    assert sum(int(r.headers["x-credits-charged"]) for r in replies if r.status_code == 200) == PAID_FOR * PER_CALL
    balance = services.ledger.balance(SYSTEM, user_id)
    assert (balance.total, balance.held) == (0, 0)
    with services.db.session() as s:
        debits = s.scalar(
            select(func.count()).where(CreditTransaction.user_id == user_id, CreditTransaction.amount < 0)
        )
        rows = s.scalar(select(func.count()).where(AIUsageLog.user_id == user_id, AIUsageLog.api_key_id.is_not(None)))
        open_holds = s.scalar(select(func.count()).where(CreditHold.user_id == user_id, CreditHold.status == "held"))
    assert (debits, rows, open_holds) == (PAID_FOR, PAID_FOR, 0)
    assert services.ledger.check(SYSTEM) == []


def test_64_concurrent_requests_on_one_key_sqlite(world: GatewayWorld) -> None:
    user = world.user(credits=PAID_FOR * PER_CALL)
    calls = world.upstream_calls()
    replies = post_all([world.url], world.key(user), CONCURRENT)
    _check_exactly_paid_for(world.services, user.id, replies)
    assert world.upstream_calls() - calls == PAID_FOR


def test_the_same_idempotency_key_from_8_clients_bills_once(world: GatewayWorld) -> None:
    user = world.user()
    key = world.key(user)
    calls = world.upstream_calls()
    world.upstream.reply_delay = 0.5  # the first call is still running when the other seven arrive
    try:
        replies = post_all([world.url], key, 8, {"Idempotency-Key": "order-42"})
    finally:
        world.upstream.reply_delay = 0.0
    assert _statuses(replies) == {200: 8}
    assert world.upstream_calls() - calls == 1
    assert len({r.json()["choices"][0]["message"]["content"] for r in replies}) == 1
    assert {r.headers["x-credits-charged"] for r in replies} == {str(PER_CALL)}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in replies) == 7
    assert world.balance(user) == 10_000 - PER_CALL
    again = post_all([world.url], key, 1, {"Idempotency-Key": "order-42"})[0]
    assert again.headers["idempotent-replayed"] == "true" and world.upstream_calls() - calls == 1
    other_body = httpx.post(
        f"{world.url}/v1/chat/completions",
        json={**CHAT, "max_tokens": 10},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "order-42"},
    )
    assert other_body.status_code == 409 and "different request" in other_body.json()["error"]["message"]
    assert other_body.headers["x-should-retry"] == "false"  # the SDKs retry a 409 unless told a retry cannot mend it


@pytest.mark.postgres
def test_two_gateway_processes_on_postgresql_share_balances_and_rate_limits(
    pg_runtime: Database,
    tmp_path: Path,
    redis_url: str,
) -> None:
    with loopback_openai() as (base, state):
        settings = upstream_settings(base)
        services = Services(pg_runtime)
        with pg_runtime.session() as s:
            user = add_user(s, email="load@x.io", name="Load", role="pm")
            limited = add_user(s, email="rpm@x.io", name="Rpm", role="pm")
        services.ledger.grant(SYSTEM, user.id, PAID_FOR * PER_CALL)
        services.ledger.grant(SYSTEM, limited.id, 1000)
        key = services.keys.create(SYSTEM, user.id, "load").secret
        rpm_key = services.keys.create(SYSTEM, limited.id, "rpm", rpm=5).secret
        env = {
            "DATABASE_URL": pg_runtime.settings.database_url,
            "ANALYTICS_PATH": str(tmp_path / "analytics.duckdb"),
            "REDIS_URL": redis_url,
            "OPENAI_API_KEY": settings["api_keys"]["openai"].get(),
            "OPENAI_BASE_URL": base,
        }
        with gateway_processes(env, count=2) as urls:
            replies = post_all(urls, key, CONCURRENT)
            limited_replies = post_all(urls, rpm_key, 10)
        _check_exactly_paid_for(services, user.id, replies)
        assert {r.url.port for r in replies} == {httpx.URL(u).port for u in urls}  # both processes answered
        assert _statuses(limited_replies) == {200: 5, 429: 5}
        assert all(int(r.headers["retry-after"]) >= 1 for r in limited_replies if r.status_code == 429)
        assert len(state.requests) == PAID_FOR + 5  # refused calls never reached the upstream
        services.close()
