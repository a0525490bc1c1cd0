"""A running gateway for the SDK tests: uvicorn on a free loopback port over a SQLite database, its providers
(OpenAI and Anthropic) pointed at a loopback server that answers with the real wire formats."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from core.access import SYSTEM
from core.config import Secret
from core.services import Services
from core.users import UserView, add_user
from tests.conftest import make_runtime
from tests.support.gateway import gateway_in_thread
from tests.support.loopback import LoopbackState, loopback_openai

FAKE_KEYS = {"openai": Secret("sk-upstream-openai-0000"), "anthropic": Secret("sk-ant-upstream-0000")}


def upstream_settings(base: str) -> dict[str, Any]:
    """Settings pointing OpenAI and Anthropic at the loopback server (`base` ends in /v1)."""
    return {"api_keys": FAKE_KEYS, "base_urls": {"openai": base, "anthropic": base.removesuffix("/v1")}}


@dataclass
class GatewayWorld:
    services: Services
    url: str
    upstream: LoopbackState
    names: Iterator[int] = field(default_factory=itertools.count)

    def user(self, credits: int = 10_000, role: str = "pm") -> UserView:
        with self.services.db.session() as s:
            user = add_user(s, email=f"u{next(self.names)}@x.io", name="User", role=role)
        if credits:
            self.services.ledger.grant(SYSTEM, user.id, credits)
        return user

    def key(self, user: UserView, **limits: Any) -> str:
        return self.services.keys.create(SYSTEM, user.id, f"key {next(self.names)}", **limits).secret

    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def anthropic(self, key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0)

    def streamed_chat(self, key: str, messages: list[dict[str, Any]]) -> list[Any]:
        """A streamed chat of gpt-4o-mini through the `openai` SDK, asking for the usage chunk: every chunk."""
        stream = self.openai(key).chat.completions.create(
            model="gpt-4o-mini", messages=messages, max_tokens=50, stream=True, stream_options={"include_usage": True}
        )
        return list(stream)

    def balance(self, user: UserView) -> int:
        return self.services.ledger.balance(SYSTEM, user.id).total

    def upstream_calls(self) -> int:
        return len(self.upstream.requests)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    with loopback_openai() as (base, state):
        db = make_runtime(f"sqlite:///{tmp / 'app.db'}", tmp, **upstream_settings(base))
        services = Services(db)
        with gateway_in_thread(services) as url:
            yield GatewayWorld(services, url, state)
        services.close()
