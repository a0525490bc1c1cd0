"""A client that hangs up mid-stream: the gateway stops reading the upstream, bills what was delivered (an estimate,
flagged) and releases the rest of the hold."""

from __future__ import annotations

import json
import time

import httpx
from sqlalchemy import select

from core.access import SYSTEM
from core.db.models import AIUsageLog, CreditHold
from tests.core.gateway.conftest import GatewayWorld


def _wait_for(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_client_disconnect_mid_stream_bills_what_was_delivered(world: GatewayWorld) -> None:
    user = world.user(credits=1000)
    key = world.key(user)
    world.upstream.slow_stream_words, world.upstream.word_delay = 200, 0.02  # 4 s of output if read to the end
    cut_before = world.upstream.streams_cut
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Count to two hundred."}],
        "max_tokens": 20_000,  # a hold of at least 10 credits
        "stream": True,
    }
    received: list[str] = []
    try:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST", f"{world.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            ) as response,
        ):
            assert response.status_code == 200
            with world.services.db.session() as s:
                held = s.scalars(select(CreditHold).where(CreditHold.user_id == user.id)).one()
            assert held.status == "held" and held.credits >= 10 and held.api_key_id is not None
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content":"word' in line:
                    received.append(json.loads(line[6:])["choices"][0]["delta"]["content"])
                if len(received) == 5:
                    break  # hang up
        _wait_for(lambda: world.upstream.streams_cut > cut_before)
        with world.services.db.session() as s:
            _wait_for(lambda: s.scalars(select(CreditHold).where(CreditHold.user_id == user.id)).one().status != "held")
    finally:
        world.upstream.slow_stream_words = 0
    with world.services.db.session() as s:
        row = s.scalars(select(AIUsageLog).where(AIUsageLog.user_id == user.id)).one()
        hold = s.scalars(select(CreditHold).where(CreditHold.user_id == user.id)).one()
    assert hold.status == "settled" and row.status == "success" and row.source == "api"
    assert row.meta["incomplete"] and row.meta["usage_estimated"] and row.meta["stream_error"] == "stopped by reader"
    assert 0 < row.cost_credits < hold.credits  # billed for what was delivered, the rest of the hold released
    assert row.output_tokens < 200  # far less than the whole answer
    balance = world.services.ledger.balance(SYSTEM, user.id)
    assert (balance.total, balance.held) == (1000 - row.cost_credits, 0)
    assert world.services.ledger.check(SYSTEM) == []
