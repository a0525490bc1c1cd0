"""PostgreSQL's NOW() and INTERVAL arithmetic on SQLite connections, so SQL written for PostgreSQL runs on both."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db.engine import make_engine
from core.db.models import utcnow
from core.db.sqlite_pg_time import rewrite_now_intervals
from core.errors import InvalidInputError


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "WHERE created_at > NOW() - INTERVAL '30 days'",
            "WHERE created_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-30 days')",
        ),
        ("now()+interval '1 day'", "strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 days')"),
        (
            "CURRENT_TIMESTAMP - INTERVAL '1 week 2 hours'",
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-7 days', '-2 hours')",
        ),
        ("SELECT 'no interval here', NOW()", "SELECT 'no interval here', NOW()"),
        ("SELECT interval_minutes FROM t", "SELECT interval_minutes FROM t"),
    ],
)
def test_rewrite(sql: str, expected: str) -> None:
    assert rewrite_now_intervals(sql) == expected


def test_an_interval_sqlite_cannot_express_is_refused_with_a_sentence() -> None:
    with pytest.raises(InvalidInputError, match=r"INTERVAL '1\.5 days' cannot run on SQLite.*INTERVAL '30 days'"):
        rewrite_now_intervals("SELECT NOW() - INTERVAL '1.5 days'")


def test_now_and_intervals_compare_with_stored_times(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    stored = [utcnow() - timedelta(days=d, hours=1) for d in (0, 29, 31, 400)]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, created_at DATETIME)"))
        for i, at in enumerate(stored):  # written as SQLAlchemy writes a DateTime on SQLite
            conn.execute(text("INSERT INTO t VALUES (:i, :at)").bindparams(i=i, at=at.isoformat(sep=" ")))
        now = conn.execute(text("SELECT NOW()")).scalar_one()
        recent = [r.id for r in conn.execute(text("SELECT id FROM t WHERE created_at > NOW() - INTERVAL '30 days'"))]
        year = conn.execute(text("SELECT COUNT(*) FROM t WHERE created_at >= now() - interval '1 year'")).scalar_one()
    engine.dispose()
    assert datetime.strptime(now, "%Y-%m-%d %H:%M:%S.%f")  # the stored text form, so it compares with stored times
    assert recent == [0, 1]
    assert year == 3
