"""Where the gateway runs its calls (core/gateway/threads.py, GATEWAY_ROUTES): on SQLite with the providers' lean
transport, on the event loop, where calls waiting for their upstream do not hold each other up; in threads when told
(`threads`), on PostgreSQL (whose commits wait for the server) and behind a proxy (httpx's own transport blocks); an
unknown setting is refused with a sentence. Streams and their disconnects on the loop: test_disconnect.py and the SDK
tests, which run on the loop (their database is SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core import event_loop
from core.access import SYSTEM
from core.errors import ConfigError
from core.gateway import create_app
from core.services import Services
from tests.core.gateway.conftest import GatewayWorld

ASK = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def upstream_waits(world: GatewayWorld) -> Iterator[list[bool]]:
    """Whether each upstream call of the world's gateway was made on the event loop."""
    transport: Any = world.services.providers.client._transport
    seen: list[bool] = []
    original = transport.handle_request

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(event_loop.on_loop())
        return original(request)

    transport.handle_request = recording
    try:
        yield seen
    finally:
        del transport.handle_request


def chat(client: TestClient, key: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 20}
    return client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    ("setting", "on_loop"), [(None, True), ("auto", True), ("loop", True), ("threads", False), (" Threads ", False)]
)
def test_where_calls_run_follows_the_setting(
    world: GatewayWorld,
    upstream_waits: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    on_loop: bool,
) -> None:
    if setting is None:
        monkeypatch.delenv("GATEWAY_ROUTES", raising=False)
    else:
        monkeypatch.setenv("GATEWAY_ROUTES", setting)
    user = world.user()
    before = world.balance(user)
    app = create_app(world.services)
    with TestClient(app) as client:
        assert app.routes_on_loop is on_loop
        reply = chat(client, world.key(user))
    assert reply.status_code == 200, reply.text
    assert upstream_waits == [on_loop]
    charged = int(reply.headers["x-credits-charged"])
    assert charged > 0 and world.balance(user) == before - charged
    assert world.services.ledger.check(SYSTEM) == []


def test_an_unknown_setting_is_refused_with_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ROUTES", "greenlets")
    with pytest.raises(ConfigError, match="GATEWAY_ROUTES is 'greenlets'; set it to auto"):
        create_app()


def test_calls_waiting_for_their_upstream_on_the_loop_do_not_hold_each_other_up(world: GatewayWorld) -> None:
    """Eight calls at once, the upstream answering as soon as all eight wait there together (or after 5 s): were the
    loop blocked by one call's wait, they would reach it one by one. Each is charged once."""
    user = world.user(credits=100_000)
    key = world.key(user)
    before = world.balance(user)
    client = world.openai(key)
    world.upstream.most_waiting = 0
    world.upstream.reply_delay = 5.0
    world.upstream.answer_when_waiting = 8
    charged: list[int] = []

    def call() -> None:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, max_tokens=20)
        charged.append(int(raw.headers["x-credits-charged"]))

    try:
        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        world.upstream.reply_delay = 0.0
        world.upstream.answer_when_waiting = 0
    assert len(charged) == 8 and world.upstream.most_waiting == 8
    assert world.balance(user) == before - sum(charged)
    assert world.services.ledger.check(SYSTEM) == []


def test_postgresql_and_a_proxy_keep_calls_in_threads(
    pg_runtime: Any, sqlite_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_pg = Services(pg_runtime)
    try:
        assert "postgresql" in (on_pg.event_loop_problem() or "")
        assert not on_pg.calls_run_on_loop("auto") and on_pg.calls_run_on_loop("loop")
    finally:
        on_pg.close()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct = Services(sqlite_runtime)
    assert direct.event_loop_problem() is None and direct.calls_run_on_loop("auto")  # its client is made now
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    proxied = Services(sqlite_runtime)
    try:
        assert "proxy" in (proxied.event_loop_problem() or "")
        assert not proxied.calls_run_on_loop("auto") and not direct.calls_run_on_loop("threads")
    finally:
        direct.close()
        proxied.close()
