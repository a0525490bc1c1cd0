from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from core.endpoints import HFEndpointsClient, LocalEndpointsTransport, LocalTimings, ManualClock
from core.endpoints.local import LOCAL_BASE_URL

START = datetime(2026, 12, 1, 10, 0, 0)
TIMINGS = LocalTimings(pending_seconds=60, initializing_seconds=120, updating_seconds=120)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def stand_in(tmp_path: Path, clock: ManualClock) -> LocalEndpointsTransport:
    return LocalEndpointsTransport(tmp_path / "endpoints_local.json", clock, timings=TIMINGS)


@pytest.fixture
def local_client(stand_in: LocalEndpointsTransport) -> HFEndpointsClient:
    return HFEndpointsClient(httpx.Client(transport=stand_in), LOCAL_BASE_URL, "acme", None)
