"""The gateway's front door (`app.Gateway`): a well-formed JSON call to a chat route goes straight to its route, past
the middleware stack, and every request is answered exactly as the whole stack answers it: the same status, the same
body (request ids aside) and the same headers, for calls that succeed, that the engine refuses (402, 401, 400 from
the route), that FastAPI refuses (bad JSON, wrong types, a header too long), that go another way (a charset, chunked,
too large), and for a fault nobody expected."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.gateway import create_app, openai_format
from core.gateway.app import Gateway
from core.gateway.limits import BodyLimit
from tests.core.gateway.conftest import GatewayWorld

ASK = [{"role": "user", "content": "Hello there"}]
CHAT = {"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 20}
CLAUDE = {"model": "claude-haiku-4-5", "messages": ASK, "max_tokens": 20}
IDS = re.compile(r"(req|chatcmpl|msg|resp)_?-?[0-9a-f]{8,}")
REMAINING = re.compile(r'"remaining": ?\d+')  # a stream's credits event: the balance after each call
TIMES = re.compile(r'"(created|created_at|completed_at)": ?\d+')  # seconds: two calls may straddle one
# headers whose values differ from one call to the next (the charge's figures, the ids, the date)
VARYING = {"x-credits-remaining", "x-request-id", "request-id", "date"}


def two_doors(world: GatewayWorld) -> Iterator[tuple[str, TestClient]]:
    """The gateway as served (front door open), then the same app with it closed (the whole stack for every call)."""
    for lanes in (True, False):
        app = create_app(world.services)
        if not lanes:
            app.lanes = {}
        yield ("front door" if lanes else "whole stack"), TestClient(app, raise_server_exceptions=False)


def answer(r: Any) -> tuple[int, str, dict[str, str]]:
    headers = {k: ("..." if k in VARYING else v) for k, v in r.headers.items()}
    text = r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if isinstance(body, dict) and "id" in body:
            body["id"] = "..."
        text = json.dumps(body, sort_keys=True)
    text = TIMES.sub(r'"\1": ...', REMAINING.sub('"remaining": ...', IDS.sub("<id>", text)))
    return r.status_code, text, headers


def same_answers(world: GatewayWorld, path: str, make: Any) -> tuple[int, str, dict[str, str]]:
    """POST `make()` (content, headers) to `path` through both doors; they must answer alike. The answer."""
    seen = []
    for _name, client in two_doors(world):
        content, headers = make()
        seen.append(answer(client.post(path, content=content, headers=headers)))
    assert seen[0] == seen[1]
    return seen[0]


def json_call(key: str, body: Any, **extra: str) -> Any:
    def make() -> tuple[bytes, dict[str, str]]:
        return json.dumps(body).encode(), {
            "content-type": "application/json",
            "authorization": f"Bearer {key}",
            **extra,
        }

    return make


CASES: list[tuple[str, str, Any, dict[str, str], int]] = [
    ("chat", "/v1/chat/completions", CHAT, {}, 200),
    ("chat streamed", "/v1/chat/completions", {**CHAT, "stream": True}, {}, 200),
    ("anthropic-version on chat", "/v1/chat/completions", CHAT, {"anthropic-version": "2023-06-01"}, 200),
    ("messages", "/v1/messages", CLAUDE, {"anthropic-version": "2023-06-01"}, 200),
    ("messages streamed", "/v1/messages", {**CLAUDE, "stream": True}, {}, 200),
    ("responses", "/v1/responses", {"model": "gpt-4o-mini", "input": "Hello there"}, {}, 200),
    ("not an Anthropic model on messages", "/v1/messages", {**CLAUDE, "model": "gpt-4o-mini"}, {}, 400),
    ("unknown model", "/v1/chat/completions", {**CHAT, "model": "gpt-17"}, {}, 404),
    ("a string for max_tokens", "/v1/chat/completions", {**CHAT, "max_tokens": "10"}, {}, 400),
    ("no messages", "/v1/chat/completions", {"model": "gpt-4o-mini"}, {}, 400),
    ("a list", "/v1/chat/completions", [CHAT], {}, 400),
    ("null", "/v1/chat/completions", None, {}, 400),
    ("Idempotency-Key too long", "/v1/chat/completions", CHAT, {"idempotency-key": "k" * 300}, 400),
    ("charset", "/v1/chat/completions", CHAT, {"content-type": "application/json; charset=utf-8"}, 200),
]


@pytest.mark.parametrize(("case", "path", "body", "extra", "status"), CASES, ids=[c[0] for c in CASES])
def test_both_doors_answer_alike(
    world: GatewayWorld, case: str, path: str, body: Any, extra: dict[str, str], status: int
) -> None:
    key = world.key(world.user())
    code, _text, headers = same_answers(world, path, json_call(key, body, **extra))
    assert code == status, _text
    assert "x-request-id" in headers
    if path == "/v1/messages" or "anthropic-version" in extra:
        assert "request-id" in headers


class _AnHourLater:
    """`time` for the answer formats, an hour on: a retry comes later than the first call."""

    @staticmethod
    def time() -> float:
        return time.time() + 3600


def test_each_idempotency_key_bills_once_through_the_door(world: GatewayWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry's answer is the first one, its `created` included (it was the retry's own time)."""
    user = world.user()
    key = world.key(user)
    seen = []
    for _name, client in two_doors(world):
        headers = {"authorization": f"Bearer {key}", "idempotency-key": uuid.uuid4().hex}
        first = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        with monkeypatch.context() as later:
            later.setattr(openai_format, "time", _AnHourLater)
            again = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        assert again.json() == first.json()
        seen.append(int(first.headers["x-credits-charged"]))
    assert seen[0] == seen[1] > 0
    assert world.balance(user) == 10_000 - sum(seen)


def test_refusals_from_the_engine_are_answered_by_the_exception_handlers(world: GatewayWorld) -> None:
    poor = world.key(world.user(credits=1))
    code, text, _ = same_answers(world, "/v1/chat/completions", json_call(poor, CHAT))
    assert code == 402 and '"insufficient_quota"' in text
    code, text, _ = same_answers(world, "/v1/messages", json_call(poor, CLAUDE))
    assert code == 402 and '"billing_error"' in text
    code, text, _ = same_answers(world, "/v1/chat/completions", json_call("sk-ac-not-a-key", CHAT))
    assert code == 401
    code, _, _ = same_answers(world, "/v1/chat/completions", json_call("sk-ac-not-a-key", {"model": 3}))
    assert code == 401  # the key first, then the body, on both doors


def test_a_fault_nobody_expected_is_a_500_in_the_envelope(
    world: GatewayWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = world.key(world.user())

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(world.services.generation, "generate", broken)
    code, text, _ = same_answers(world, "/v1/chat/completions", json_call(key, CHAT))
    assert code == 500 and "failed on its side" in text and "a bug" not in text
    assert sum("failed: RuntimeError" in r.getMessage() for r in caplog.records) == 2  # logged by both doors


def test_other_bodies_go_the_whole_way(world: GatewayWorld) -> None:
    """No Content-Length (chunked) or one over the bound: the whole stack's BodyLimit answers, as it always did."""
    key = world.key(world.user())
    auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def chunks() -> Iterator[bytes]:
        yield json.dumps(CHAT).encode()

    for _name, client in two_doors(world):
        r = client.post("/v1/chat/completions", content=chunks(), headers=auth)
        assert r.status_code == 200 and "content-length" not in r.request.headers
        r = client.post("/v1/chat/completions", content=b"{}", headers={**auth, "content-length": str(17 * 2**20)})
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_a_well_formed_chat_call_skips_the_middleware_stack(
    world: GatewayWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the door is for: the call does not pass through the stack (BodyLimit stands for it); a malformed one, and
    any other route, still does."""
    passed: list[str] = []
    through = BodyLimit.__call__

    async def counted(self: BodyLimit, scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])
        await through(self, scope, receive, send)

    monkeypatch.setattr(BodyLimit, "__call__", counted)
    key = world.key(world.user())
    app = create_app(world.services)
    assert isinstance(app, Gateway)
    assert set(app.lanes) == {"/v1/chat/completions", "/v1/messages", "/v1/responses"}
    client = TestClient(app)
    auth = {"authorization": f"Bearer {key}"}
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 200
    assert client.post("/v1/messages", json=CLAUDE, headers=auth).status_code == 200
    assert passed == []
    assert client.post("/v1/chat/completions", json={"model": 1}, headers=auth).status_code == 400
    assert client.get("/v1/models", headers=auth).status_code == 200
    assert passed == ["/v1/chat/completions", "/v1/models"]
