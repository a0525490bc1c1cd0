"""Incremental sync: new rows only, never counted twice, full rebuild when needed, and readers and writers in
separate processes never collide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, text

import core.analytics.sync as sync_module
from core.analytics import SpendFilter, SpendQueries
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction
from tests.conftest import make_runtime
from tests.core.analytics.history import reference_measures, reference_spend, write_history
from tests.support.analytics import store_for, sync_store

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 5, 1)


def queries(rt: Database) -> SpendQueries:
    return SpendQueries(store_for(rt), credit_usd=rt.settings.credit_usd, reporting_tz=rt.settings.reporting_tz)


def assert_matches_source(rt: Database) -> None:
    ref = reference_spend(rt)
    q = queries(rt)
    for include in (False, True):
        got, _ = q.totals(SpendFilter(include_sandbox=include))
        want = reference_measures(ref if include else ref[~ref["sandbox"]])
        for name, value in want.items():
            assert getattr(got, name) == value, name
    by_user = q.breakdown("user", SpendFilter()).frame
    assert int(by_user["credits"].sum()) == reference_measures(ref[~ref["sandbox"]])["credits"]


@pytest.fixture(autouse=True, params=["child process", "in process"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every sync test runs on both SQLite read paths: the ADBC child (big reads) and the standard library (small)."""
    import core.analytics.extract as extract

    monkeypatch.setattr(extract, "SMALL_READ_IDS", 0 if request.param == "child process" else 10**9)
    return request.param


@pytest.fixture
def rt(tmp_path: Path) -> Database:
    r = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    yield r
    r.dispose()


def test_incremental_sync_picks_up_new_rows_and_never_double_counts(rt: Database) -> None:
    write_history(rt, seed=1, rows=400, start=T0, end=T0 + timedelta(days=10))
    first = sync_store(rt)
    assert first.mode == "full" and first.usage_rows == 400
    assert_matches_source(rt)

    write_history(rt, seed=2, rows=150, start=T0 + timedelta(days=10), end=T0 + timedelta(days=12))
    second = sync_store(rt)
    assert second.mode == "incremental" and second.usage_rows == 150 and second.total_usage_rows == 550
    assert second.version == first.version + 1
    assert_matches_source(rt)

    again = sync_store(rt)  # nothing new: nothing written, nothing counted twice, as-of moves forward
    assert again.mode == "none" and again.usage_rows == 0 and again.version == second.version
    assert again.as_of >= second.as_of
    assert queries(rt).as_of() == again.as_of
    assert_matches_source(rt)
    # the daily rollup was re-summed for the changed days only, and agrees with the rows
    q = queries(rt)
    whole_days = SpendFilter.dates(T0.date(), (T0 + timedelta(days=12)).date(), tz="UTC")
    assert q.breakdown("model", whole_days).frame.equals(
        q.breakdown("model", SpendFilter(start=whole_days.start, end=whole_days.end + timedelta(microseconds=1))).frame
    )


def test_a_row_committed_late_below_the_watermark_is_picked_up_once(rt: Database) -> None:
    write_history(rt, seed=3, rows=300, start=T0, end=T0 + timedelta(days=5), extras=False)
    with rt.session() as s:
        late = s.get(AIUsageLog, 250)
        saved = {c.key: getattr(late, c.key) for c in AIUsageLog.__mapper__.column_attrs}
        s.delete(late)  # id 250 "not committed yet" when the first sync runs
    sync_store(rt)
    with rt.session() as s:
        s.add(AIUsageLog(**saved))  # ... and committed afterwards, below the watermark (300)
    report = sync_store(rt)
    assert report.mode == "incremental" and report.usage_rows == 1
    assert_matches_source(rt)
    write_history(rt, seed=4, rows=10, start=T0 + timedelta(days=5), end=T0 + timedelta(days=6), extras=False)
    assert sync_store(rt).usage_rows == 10
    assert_matches_source(rt)


def test_a_rewritten_history_or_a_new_schema_rebuilds_in_full(rt: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    write_history(rt, seed=5, rows=200, start=T0, end=T0 + timedelta(days=5))
    sync_store(rt)
    with rt.session() as s:  # what `python -m core demo --replace` does: wipe, then write ids from 1 again
        s.execute(delete(AIUsageLog))
        s.execute(delete(CreditTransaction))
    write_history(rt, seed=6, rows=220, start=T0 + timedelta(days=1), end=T0 + timedelta(days=6))
    report = sync_store(rt)
    assert report.mode == "full" and "rewritten" in report.reason
    assert report.total_usage_rows == 220
    assert_matches_source(rt)

    monkeypatch.setattr(sync_module, "SCHEMA_VERSION", sync_module.SCHEMA_VERSION + 1)
    report = sync_store(rt)
    assert report.mode == "full" and "schema" in report.reason

    assert sync_store(rt, full=True).reason == "full rebuild requested"
    assert sync_store(rt, max_age_seconds=3600).reason == "fresh enough"
    versions = sorted(p.name for p in rt.settings.analytics_path.parent.glob("analytics.duckdb.v*"))
    assert len(versions) == 2  # the current version and the one before it
    assert os.readlink(rt.settings.analytics_path) == versions[-1]


def test_the_store_follows_the_database_it_was_built_from(rt: Database, tmp_path: Path) -> None:
    write_history(rt, seed=7, rows=50, start=T0, end=T0 + timedelta(days=2), extras=False)
    sync_store(rt)
    other = make_runtime(f"sqlite:///{tmp_path / 'other.db'}", tmp_path)
    write_history(other, seed=8, rows=30, start=T0, end=T0 + timedelta(days=2), extras=False)
    report = sync_store(other)
    assert report.mode == "full" and "another database" in report.reason and report.total_usage_rows == 30
    other.dispose()


READER = r"""
import json, sys, time
from decimal import Decimal
from core.analytics import SpendFilter, SpendQueries, AnalyticsStore
q = SpendQueries(AnalyticsStore(sys.argv[1]), credit_usd=Decimal("0.04"))
final = int(sys.argv[2])
deadline = time.monotonic() + 180
seen = [0]
while seen[-1] < final and time.monotonic() < deadline:
    t, as_of = q.totals(SpendFilter(include_sandbox=True))
    by_user = q.breakdown("user", SpendFilter(include_sandbox=True))
    if by_user.as_of == as_of:  # the same version: the two answers agree
        assert int(by_user.frame["requests"].sum()) == t.requests, "a query saw a half-written version"
    seen.append(t.requests)
print(json.dumps(seen[1:]))
"""


def test_reader_and_writer_processes_run_at_the_same_time(rt: Database) -> None:
    """A reader process queries continuously while this process and a CLI process sync new rows into the store:
    no lock error, no torn read, and every read sees a whole number of batches."""
    write_history(rt, seed=9, rows=300, start=T0, end=T0 + timedelta(days=3), extras=False)
    sync_store(rt)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": rt.settings.database_url,
        "ANALYTICS_PATH": str(rt.settings.analytics_path),
    }
    rounds = 4
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(rt.settings.analytics_path), str(300 + 25 * rounds)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    totals = {300}
    n = 300
    for k in range(1, rounds + 1):
        start = T0 + timedelta(days=3 + k)
        write_history(rt, seed=100 + k, rows=25, start=start, end=start + timedelta(hours=5), extras=False)
        n += 25
        totals.add(n)
        if k % 2:
            sync_store(rt)
        else:  # the command line in its own process
            cli = subprocess.run(
                [sys.executable, "-m", "core", "spend", "sync", "--json"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert cli.returncode == 0, cli.stderr
            assert json.loads(cli.stdout)["total_usage_rows"] == n, cli.stdout
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    seen = json.loads(out)
    assert len(seen) > 5
    assert set(seen) <= totals  # only whole, published versions
    assert seen == sorted(seen)  # and never an older one after a newer one
    assert seen[-1] == 300 + 25 * rounds


def test_a_sync_waits_for_another_and_then_finds_nothing_new(rt: Database) -> None:
    write_history(rt, seed=11, rows=100, start=T0, end=T0 + timedelta(days=2), extras=False)
    store = store_for(rt)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": rt.settings.database_url,
        "ANALYTICS_PATH": str(rt.settings.analytics_path),
    }
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from core.analytics import AnalyticsStore\n"
            "with AnalyticsStore(sys.argv[1]).sync_lock():\n    print('locked', flush=True); time.sleep(1.5)",
            str(store.path),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    report = sync_store(rt)
    assert time.monotonic() - t0 >= 0.5  # it waited for the lock
    assert report.mode == "full" and report.total_usage_rows == 100
    holder.wait(10)


def test_money_is_exact_decimal_from_sqlite_reals(rt: Database) -> None:
    """SQLite keeps Numeric(18,9) as REAL; the store holds DECIMAL(18,9) rounded to 9 places, exactly, also where
    SQLite's own REAL-to-text would keep only 15 significant digits."""
    write_history(rt, seed=12, rows=50, start=T0, end=T0 + timedelta(days=1), extras=False)
    with rt.session() as s:
        s.execute(text("UPDATE ai_usage_log SET base_cost_usd = 0.123456789 WHERE id = 1"))
        s.execute(text("UPDATE ai_usage_log SET base_cost_usd = '1234567.123456789' WHERE id = 2"))
        s.execute(text("UPDATE ai_usage_log SET base_cost_usd = 7 WHERE id = 3"))
        kinds = s.execute(text("SELECT typeof(base_cost_usd) FROM ai_usage_log WHERE id <= 3 ORDER BY id"))
        assert [k for (k,) in kinds] == ["real", "real", "integer"]
        lossy = s.scalar(text("SELECT CAST(base_cost_usd AS TEXT) FROM ai_usage_log WHERE id = 2"))
        assert lossy == "1234567.12345679"
    sync_store(rt)
    con = store_for(rt).connect()
    rows = con.execute("SELECT id, base_cost_usd, base_nano FROM ai_usage_log WHERE id <= 3 ORDER BY id").fetchall()
    assert rows == [
        (1, Decimal("0.123456789"), 123456789),
        (2, Decimal("1234567.123456789"), 1234567123456789),
        (3, Decimal("7"), 7_000_000_000),
    ]


def test_a_value_that_is_not_a_number_stops_the_sync_with_its_text(rt: Database) -> None:
    write_history(rt, seed=13, rows=20, start=T0, end=T0 + timedelta(days=1), extras=False)
    with rt.session() as s:
        s.execute(text("UPDATE ai_usage_log SET base_cost_usd = '12,5' WHERE id = 4"))
    with pytest.raises(Exception, match="12,5"):
        sync_store(rt)
    assert not store_for(rt).exists()  # nothing half-built was published


def test_many_small_chunks_arrive_in_order(rt: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunked, parallel reads (here 37 ids a chunk) keep id order and lose nothing, even when a chunk's columns are
    all NULL (the driver then infers another type for them)."""
    import core.analytics.extract as extract

    monkeypatch.setattr(extract, "CHUNK_IDS", 37)
    write_history(rt, seed=14, rows=400, start=T0, end=T0 + timedelta(days=3))
    with rt.session() as s:  # ids 1..60: no model, no transaction (NULL columns in the first chunks)
        s.execute(text("UPDATE ai_usage_log SET ai_model_id = NULL, transaction_id = NULL WHERE id <= 60"))
    sync_store(rt)
    con = store_for(rt).connect()
    ids = [r[0] for r in con.execute("SELECT id FROM ai_usage_log").fetchall()]
    assert ids == sorted(ids) == list(range(1, 401))
    assert_matches_source(rt)


def test_progress_counts_the_copied_rows_up_to_the_total(rt: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.analytics.extract as extract

    monkeypatch.setattr(extract, "CHUNK_IDS", 50)
    write_history(rt, seed=15, rows=300, start=T0, end=T0 + timedelta(days=3))
    seen: list[tuple[int, int]] = []
    report = sync_store(rt, progress=lambda done, total: seen.append((done, total)))
    total = report.total_usage_rows + report.total_ledger_rows
    assert len(seen) > 3 and {t for _d, t in seen} == {total}
    assert [d for d, _t in seen] == sorted(d for d, _t in seen) and seen[-1] == (total, total)

    seen.clear()
    assert sync_store(rt, progress=lambda d, t: seen.append((d, t))).mode == "none" and seen == []
    write_history(rt, seed=16, rows=20, start=T0 + timedelta(days=3), end=T0 + timedelta(days=4))
    later = sync_store(rt, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] >= later.usage_rows + later.ledger_rows
