from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from core.analytics import SpendQueries
from core.config import Settings
from core.db import Database
from tests.conftest import make_runtime
from tests.core.analytics.history import reference_spend, write_history
from tests.support.analytics import store_for, sync_store

START = datetime(2025, 2, 20)
END = datetime(2025, 4, 10)  # spans the 2025 DST changes of America/New_York (Mar 9) and Europe/Paris (Mar 30)
ROLLUP_TZ = "Europe/Paris"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, SpendQueries, pd.DataFrame]]:
    """A SQLite history of ~3,000 random rows, synced (daily rollup in Europe/Paris), and its pandas reference."""
    tmp = Path(tmp_path_factory.mktemp("analytics"))
    rt = make_runtime(f"sqlite:///{tmp / 'app.db'}", tmp, reporting_tz=ROLLUP_TZ)
    write_history(rt, seed=20250301, rows=3000, start=START, end=END)
    sync_store(rt)
    q = SpendQueries(store_for(rt), credit_usd=Decimal("0.04"), reporting_tz=ROLLUP_TZ)
    yield rt, q, reference_spend(rt)
    rt.dispose()


def runtime_at(tmp_path: Path, **settings: object) -> Database:
    return Database(
        Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}", analytics_path=tmp_path / "a.duckdb", **settings)
    )
