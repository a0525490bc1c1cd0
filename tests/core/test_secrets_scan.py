"""Keys never reach the database, the logs, the command line's output, a gateway answer or a rendered page.

The main flows run with recognisable fake keys, including an upstream that echoes the key back in its error message
(OpenAI's 401 does, partly masked), then everything they wrote is scanned for the keys; the same goes for a user's
API key, used through the HTTP gateway (it is stored only as a hash).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from core.access import SYSTEM
from core.config import load_settings
from core.db import Database
from core.providers import AIProviderFactory, GenerationRequest, RetryPolicy
from core.providers.errors import AuthError
from core.services import Services
from core.users import add_user
from tests.conftest import make_runtime
from tests.support.gateway import gateway_in_thread

ROOT = Path(__file__).resolve().parents[2]
FAKE = {
    "OPENAI_API_KEY": "sk-SCANME-openai-7d1f0c9e4b2a",
    "ANTHROPIC_API_KEY": "sk-ant-SCANME-anthropic-55aa",
    "HUGGINGFACE_API_KEY": "hf_SCANMEhuggingface0042",
    "MINIMAX_API_KEY": "SCANME-minimax-9911",
    "TOGETHER_API_KEY": "SCANME-together-3344",
}


def upstream(request: httpx.Request) -> httpx.Response:
    auth = request.headers.get("authorization", "") + request.headers.get("x-api-key", "")
    if "api.anthropic.com" in str(request.url):
        # an upstream that echoes the key it was given in its error message
        return httpx.Response(
            401,
            json={"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {auth}"}},
        )
    assert FAKE["OPENAI_API_KEY"] in auth
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        },
    )


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "a.duckdb"))
    rt = make_runtime(db, tmp_path)
    rt.settings = load_settings()  # the keys come from the environment, as in production
    return rt


def protos(node: object) -> list[str]:
    """Every rendered element's protobuf, as text: what the browser would receive."""
    out = [str(node.proto)] if getattr(node, "proto", None) is not None else []
    for child in getattr(node, "children", {}).values():
        out += protos(child)
    return out


API_KEYS: dict[str, str] = {}  # the users' gateway keys made by the test
KEY_NAME = "a user's API key"


def scan(text: str | bytes, where: str) -> None:
    blob = text if isinstance(text, bytes) else text.encode()
    for name, key in {**FAKE, **API_KEYS}.items():
        assert key.encode() not in blob, f"{name} leaked into {where}"


def test_keys_never_reach_database_logs_or_pages(
    secret_env: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rt = secret_env
    with rt.session() as s:
        user = add_user(s, email="pam@corp.example", name="Pam", role="pm", markup_pct=Decimal(100))
        add_user(s, email="ada@corp.example", name="Ada", role="admin")
    client = httpx.Client(transport=httpx.MockTransport(upstream))
    services = Services(rt, providers=AIProviderFactory(rt.settings, client, sleep=lambda s: None, retry=RetryPolicy()))
    services.ledger.grant(SYSTEM, user.id, 500, note="start")
    generate = services.generation.generate
    result = generate(SYSTEM, user.id, "gpt-4o-mini", GenerationRequest(category="chat", text="hi", max_tokens=20))
    scan(repr(result), "a generation result")
    with pytest.raises(AuthError) as failure:
        generate(SYSTEM, user.id, "claude-haiku-4-5", GenerationRequest(category="chat", text="hi", max_tokens=20))
    scan(str(failure.value), "the error shown to the user")
    scan(repr(rt.settings), "the settings' repr")
    API_KEYS[KEY_NAME] = services.keys.create(SYSTEM, user.id, "scanned").secret
    with gateway_in_thread(services) as url:
        headers = {"Authorization": f"Bearer {API_KEYS[KEY_NAME]}"}
        for model in ("gpt-4o-mini", "claude-haiku-4-5"):  # answered, and refused upstream with the key echoed
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
                headers=headers,
            )
            assert answer.status_code in (200, 502)
            scan(answer.text + str(answer.headers), f"the gateway's answer for {model}")
    services.close()

    # the database files, byte for byte (WAL included)
    for f in tmp_path.glob("app.db*"):
        scan(f.read_bytes(), f.name)
    # every log record, formatted
    scan("\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records), "the logs")

    # the pages, rendered
    for page in ("playground", "ledger", "models", "home", "keys"):
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=60)
        at.session_state["local_user_email"] = "pam@corp.example" if page != "home" else "ada@corp.example"
        at.run()
        assert not at.exception, at.exception
        rendered = "\n".join(protos(at._tree))
        assert len(rendered) > 200, f"the {page} page rendered nothing to scan"
        scan(rendered, f"the {page} page")
