from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from core.db import Database
from core.endpoints import HFEndpointsClient, HuggingFaceEndpointService, LocalEndpointsTransport, ManualClock
from core.endpoints.local import LOCAL_BASE_URL
from core.users import add_user
from tests.core.endpoints.conftest import TIMINGS


class Switchboard(httpx.BaseTransport):
    """The stand-in, with a hook that can break a request before or after the stand-in handled it."""

    def __init__(self, inner: LocalEndpointsTransport) -> None:
        self.inner = inner
        self.before: Callable[[httpx.Request], None] | None = None
        self.after: Callable[[httpx.Request], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.before:
            self.before(request)
        response = self.inner.handle_request(request)
        if self.after:
            self.after(request)
        return response


def build(rt: Database, tmp_path: Path, clock: ManualClock) -> tuple[HuggingFaceEndpointService, Switchboard]:
    board = Switchboard(LocalEndpointsTransport(tmp_path / "endpoints_local.json", clock, timings=TIMINGS))
    client = HFEndpointsClient(httpx.Client(transport=board), LOCAL_BASE_URL, "acme", None)
    service = HuggingFaceEndpointService(rt.session_factory, client, rt.settings, clock=clock, sleep=clock.sleep)
    return service, board


def add_engineer(rt: Database, email: str = "eng@example.com", markup: str = "100") -> int:
    with rt.session() as s:
        return add_user(s, email=email, name="Eng", role="engineer", markup_pct=markup).id
