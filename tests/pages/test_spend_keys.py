"""Spend by API key: calls through two keys and the Playground are told apart by the analytics engine (group and
filter by key and by source) and on the Spend page (the "By API key" table, the API keys filter)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from core.access import SYSTEM
from core.analytics.filters import SpendFilter
from core.config import Secret
from core.providers.types import GenerationRequest
from core.services import Services
from core.users import add_user
from tests.conftest import make_runtime
from tests.core.providers.fakes import json_response

ROOT = Path(__file__).resolve().parents[2]
CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300},
}
ASK = GenerationRequest(category="chat", text="hello", max_tokens=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("spend-keys")
    url = f"sqlite:///{tmp / 'app.db'}"
    db = make_runtime(url, tmp, api_keys={"openai": Secret("sk-upstream-test-0000")})
    client = httpx.Client(transport=httpx.MockTransport(lambda request: json_response(200, CHAT_OK)))
    services = Services(db, http=client)
    with db.session() as s:
        ana = add_user(s, email="ana@x.io", name="Ana", role="admin")
    services.ledger.grant(SYSTEM, ana.id, 1000)
    made = {name: services.keys.create(SYSTEM, ana.id, name) for name in ("billing-app", "chatbot")}
    for name, calls in (("billing-app", 3), ("chatbot", 1)):
        who = services.keys.admit(SYSTEM, made[name].secret)
        for _ in range(calls):
            services.generation.generate(who, ana.id, "gpt-4o-mini", ASK)
    services.generation.generate(SYSTEM, ana.id, "gpt-4o-mini", ASK)  # the Playground
    services.spend.sync(SYSTEM)
    services.close()
    return url, tmp / "analytics.duckdb", {name: m.key.id for name, m in made.items()}


def test_spend_groups_and_filters_by_key_and_source(world: tuple[str, Path, dict[str, int]], monkeypatch) -> None:
    url, analytics, ids = world
    monkeypatch.setenv("ANALYTICS_PATH", str(analytics))
    from core.config import Settings
    from core.db import Database

    services = Services(Database(Settings(database_url=url, analytics_path=analytics)))
    by_key = services.spend.breakdown(SYSTEM, "api_key", SpendFilter(), sync_if_older_than=None).frame
    rows = {k.split("… ")[-1]: int(n) for k, n in zip(by_key["api_key"], by_key["requests"], strict=True)}
    assert rows == {"billing-app": 3, "chatbot": 1, "(no key)": 1}
    one = services.spend.breakdown(SYSTEM, "source", SpendFilter(api_keys=(ids["chatbot"],))).frame
    assert list(one["source"]) == ["api"] and list(one["requests"]) == [1]
    by_source = services.spend.breakdown(SYSTEM, "source", SpendFilter()).frame
    assert dict(zip(by_source["source"], by_source["requests"], strict=True)) == {"api": 4, "playground": 1}
    services.close()


def test_the_spend_page_shows_and_filters_by_key(world: tuple[str, Path, dict[str, int]], monkeypatch) -> None:
    url, analytics, ids = world
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(analytics))
    at = AppTest.from_file(str(ROOT / "pages" / "spend.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "api_key" in d.value.columns)
    assert sorted(label.split("… ")[-1] for label in table["api_key"]) == ["(no key)", "billing-app", "chatbot"]
    at.multiselect(key="api_keys").select(ids["billing-app"]).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "api_key" in d.value.columns)
    assert [label.split("… ")[-1] for label in table["api_key"]] == ["billing-app"]
    assert list(table["requests"]) == [3]
