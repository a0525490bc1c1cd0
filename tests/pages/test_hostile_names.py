"""Nothing a user typed becomes markup: every page drawn over a database whose names, emails, notes, model, endpoint,
team, key and budget names are Markdown links, images and HTML (stored directly, as an old row or an SSO email could
be) shows them as text. No element's Markdown carries a live link or image to the hostile hosts, nor an <img>."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import streamlit as st
from google.protobuf.json_format import MessageToDict
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from core.access import PAGES, Role
from core.catalog.edit import update_prices
from core.config import load_settings
from core.demo import write_demo_budgets
from core.services import SYSTEM, Services
from tests.pages.apptest import demo_runtime, page_path

LINK = "[clickme](https://evil.example/{})"
IMAGE = "![p](http://evil.example/px.png)"
HTML = '<img src=http://evil.example/i.png> <a href="https://evil.example/a">a</a>'


def hostile(tag: object) -> str:
    return f"{LINK.format(tag)} {IMAGE} {HTML}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("hostile")
    rt = demo_runtime(tmp, rows=800, days=10, seed=7)
    write_demo_budgets(rt)
    env = {
        "DATABASE_URL": rt.settings.database_url,
        "ANALYTICS_PATH": str(tmp / "analytics.duckdb"),
        "HF_ENDPOINTS_API_URL": "local",
        "LOCAL_USER_EMAIL": "admin",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        svc = Services(settings=load_settings())
        svc.init()
        svc.endpoints.demo(SYSTEM)
        svc.keys.create(SYSTEM, user="admin@demo.example", name="ok key")
        svc.close()
    with rt.session() as s:
        model = s.execute(text("SELECT id FROM ai_models WHERE model_id = 'gpt-4o'")).scalar_one()
    with rt.session() as s:
        update_prices(s, model, {"input_per_1m_usd": "2.75"}, hostile("actor"), hostile("price-note"))
    with rt.engine.begin() as c:
        for i, (uid,) in enumerate(c.execute(text("SELECT id FROM users WHERE role != 'admin'")).all()):
            c.execute(
                text("UPDATE users SET email = :e, name = :n WHERE id = :id"),
                {"e": f"[c{i}](https://evil.example/{i})@x.io", "n": hostile(f"name{i}"), "id": uid},
            )
        c.execute(text("UPDATE credit_transactions SET description = :d"), {"d": hostile("note")})
        c.execute(text("UPDATE ai_models SET model_name = :n || model_name"), {"n": hostile("model") + " "})
        c.execute(text("UPDATE ai_models SET price_source = :n"), {"n": hostile("source")})
        c.execute(text("UPDATE teams SET name = :n || id"), {"n": hostile("team")})
        c.execute(text("UPDATE budgets SET name = :n || id"), {"n": hostile("budget")})
        c.execute(text("UPDATE api_keys SET name = :n"), {"n": hostile("key")})
        c.execute(text("UPDATE inference_endpoints SET model_repo = :n"), {"n": hostile("repo")})
        c.execute(text("UPDATE endpoint_events SET note = :n"), {"n": hostile("event")})
        c.execute(text("UPDATE audit_log SET target = :n"), {"n": hostile("audit")})
        c.execute(text("UPDATE ai_usage_log SET error = :n WHERE status != 'success'"), {"n": hostile("error")})
    rt.dispose()
    yield env


@pytest.fixture(autouse=True)
def fresh_page_caches() -> Iterator[None]:
    """The pages' st.cache_data entries live as long as the process: these hostile answers must not reach the next
    test's pages (nor earlier tests' answers these)."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()


SKIP = {"data", "spec", "options", "default", "value", "rawValue", "codeText", "url", "id", "formId", "arrowData"}


def strings(node: Any, key: str = "") -> Iterator[str]:
    """Every text an element hands the browser to read as Markdown (labels, bodies, help, captions, tabs)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in SKIP:
                yield from strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v, key)
    elif isinstance(node, str):
        yield node


def nodes(at: AppTest) -> Iterator[Any]:
    stack: list[Any] = [at._tree]
    while stack:
        node = stack.pop()
        children = getattr(node, "children", None)
        if children:
            stack.extend(children.values())
        yield node


def chart_strings(at: AppTest) -> Iterator[str]:
    """Every string of every plotly figure a page draws (plotly reads <a href>, <b>, <br> in them as HTML)."""
    for node in nodes(at):
        if getattr(node, "type", None) == "plotly_chart":
            yield from every_string(json.loads(node.proto.spec))


def every_string(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for v in node.values():
            yield from every_string(v)
    elif isinstance(node, list):
        for v in node:
            yield from every_string(v)
    elif isinstance(node, str):
        yield node


def elements(at: AppTest) -> Iterator[Any]:
    for node in nodes(at):
        proto = getattr(node, "proto", None)
        if proto is not None and node.type not in ("plotly_chart", "arrow_data_frame", "code", "text"):
            yield node.type, MessageToDict(proto)


DRAWN_AS_MARKDOWN = {"endpoints", "models"}  # elsewhere they sit in tables and option lists (not Markdown) too
LIVE_LINK = re.compile(r"(?<!\\)\]\((?!/)[^)]*evil\.example")  # a link into the app itself ("](/page?...") is ours


@pytest.mark.parametrize("name", PAGES[Role.ADMIN])
def test_hostile_names_are_shown_as_text(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(page_path(name), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    seen = 0
    for kind, proto in elements(at):
        for s in strings(proto):
            seen += "evil" in s
            assert not LIVE_LINK.search(s), f"{name}: a live link in {kind}: {s[:300]}"
            assert "![" not in s, f"{name}: a live image in {kind}: {s[:300]}"
            assert not re.search(r"(?<!\\)<img", s, re.I), f"{name}: raw HTML in {kind}: {s[:300]}"
    for s in chart_strings(at):
        assert not re.search(r"<(a|img)\b", s, re.I), f"{name}: live HTML in a chart: {s[:300]}"
    if name in DRAWN_AS_MARKDOWN:  # the hostile rows reached these pages' Markdown: the checks above saw them
        assert seen, f"{name}: no hostile text drawn: the test checked nothing"


def test_pages_draw_tables_and_charts_only_through_their_one_helper() -> None:
    """Escaping and formatting live in one place each: no page calls st.dataframe or st.plotly_chart itself."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    allowed = {"pages/tables.py": "st.dataframe(", "pages/charts/safe.py": "st.plotly_chart("}
    for path in [root / "app.py", *sorted((root / "pages").rglob("*.py"))]:
        rel = path.relative_to(root).as_posix()
        source = path.read_text()
        for call in ("st.dataframe(", "st.plotly_chart("):
            if allowed.get(rel) != call:
                assert call not in source, f"{rel} calls {call}: use pages.tables.table / pages.charts.safe.show"
