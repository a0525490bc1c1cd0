"""Focused checks for issue 16's fixes beyond the table of malformed command lines (test_malformed.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.access import SYSTEM
from core.analytics.filters import SpendFilter
from core.config import Settings
from core.db import Database
from core.db.models import AIUsageLog, User
from core.errors import InvalidInputError
from core.money import MARKUP_PLACES, validate_markup
from core.services import Services
from tests.support.cli_cases import environment, run_cli

ROOT = Path(__file__).resolve().parents[3]


def test_four_users_added_at_once_all_succeed_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {**os.environ, "DATABASE_URL": url, "ANALYTICS_PATH": str(tmp_path / "a.duckdb"), "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "core"]
    subprocess.run([*cli, "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    for round_ in range(2):  # the failure was a race: two rounds of four make a lucky pass unlikely
        procs = [
            subprocess.Popen(
                [*cli, "users", "add", "--email", f"u{round_}{i}@x.io", "--name", f"U{i}", "--role", "pm"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        assert [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs] == [(0, "")] * 4
    db = Database(Settings(database_url=url))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 8
    db.dispose()


def test_markup_precision_is_the_schemas() -> None:
    assert User.__table__.c.developer_markup_pct.type.scale == MARKUP_PLACES
    assert validate_markup("12.3456") == Decimal("12.3456")
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        validate_markup("0.000001")


def test_a_markup_is_stored_exactly_on_both_databases(runtime: Database) -> None:
    services = Services(runtime)
    user = services.users.add(SYSTEM, email="m@x.io", name="M", role="pm", markup_pct="12.3456")
    assert services.users.get(SYSTEM, user.id).developer_markup_pct == Decimal("12.3456")
    with pytest.raises(InvalidInputError, match="decimal places"):
        services.users.add(SYSTEM, email="n@x.io", name="N", role="pm", markup_pct="0.000001")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "x" * 201, "The user's name is 201 characters long; at most 200 fit."),
        ("email", "a" * 320 + "@x.io", "The user's email is 325 characters long; at most 320 fit."),
        ("name", "A\x00B", "The user's name contains a NUL character, which cannot be stored; remove it."),
    ],
)
def test_text_that_does_not_fit_is_refused_alike_on_both_databases(
    runtime: Database, field: str, value: str, message: str
) -> None:
    services = Services(runtime)
    fields = {"email": "ok@x.io", "name": "Ok", field: value}
    with pytest.raises(InvalidInputError) as caught:
        services.users.add(SYSTEM, role="pm", **fields)
    assert str(caught.value) == message
    assert services.users.list(SYSTEM) == []


@pytest.mark.parametrize(
    ("spend_filter", "message"),
    [
        (SpendFilter(users=("nobody@x.io",)), "Unknown user 'nobody@x.io': nobody has that email; the Ledger page"),
        (SpendFilter(categories=("bogus",)), "Unknown category 'bogus'; choose from chat, tts"),
        (SpendFilter(providers=("bogus",)), "Unknown provider 'bogus'; the catalog has: anthropic"),
        (SpendFilter(models=("bogus",)), "Unknown model 'bogus'"),
        (SpendFilter(api_keys=(424242,)), "Unknown API key 424242"),
    ],
)
def test_spend_names_an_unknown_filter_and_what_exists(
    sqlite_runtime: Database, spend_filter: SpendFilter, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        Services(sqlite_runtime).spend.breakdown(SYSTEM, "user", spend_filter, sync_if_older_than=None)


def test_a_demo_too_large_is_refused_before_anything_is_written(sqlite_runtime: Database) -> None:
    services = Services(sqlite_runtime)
    with pytest.raises(InvalidInputError, match="write 1 to 10,000,000 usage events"):
        services.demo.write_history(SYSTEM, rows=10**12, days=90, seed=7)
    with pytest.raises(InvalidInputError, match="0 to 4,294,967,295"):
        services.demo.write_history(SYSTEM, rows=100, days=90, seed=-1)
    with sqlite_runtime.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert s.scalar(select(func.count()).select_from(AIUsageLog)) == 0


def test_the_endpoints_stand_in_has_one_file_per_database(tmp_path: Path) -> None:
    for name in ("first.db", "second.db"):
        with environment(f"sqlite:///{tmp_path / name}", tmp_path):
            code, out, err = run_cli(("demo", "--rows", "300", "--days", "3", "--with-endpoints"))
            assert (code, err) == (0, ""), err
            assert "dedicated-endpoint history" in out
    assert sorted(p.name for p in tmp_path.glob("*endpoints_local*.json")) == [
        "first.endpoints_local.json",
        "second.endpoints_local.json",
    ]
