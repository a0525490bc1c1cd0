"""A delivered call is billed even when the database stays unavailable past the settlement's retries: the write is
kept on disk (core/billing/spool.py) and posted, once, when the database is back. Never twice, never to another
database, never lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import core.billing.ledger as ledger_module
from core.billing import BillingService
from core.billing.accounts_sql import AccountsSQL
from core.billing.ledger_check import check_ledger
from core.billing.ledger_sql import LedgerWriter
from core.billing.replays import PendingReply
from core.billing.spool import SettlementSpool, SpooledWrite, decode, default_spool_dir, encode
from core.billing.types import Hold, UsageRecord
from core.db import Database
from core.db.models import AIUsageLog, utcnow
from core.usage import Usage
from core.users import UserView
from tests.core.billing.conftest import catalog_model, make_user, record_for

SMALL = Usage(input_tokens=1000, output_tokens=500)  # gpt-4o: 1 credit -> 2 at 100%


class Outage:
    """The database unavailable to the ledger's writes (every write transaction and PostgreSQL's one-statement
    settle raise the driver's OperationalError) while `down` is true."""

    def __init__(self, runtime: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        self.refused = 0
        error = runtime.engine.dialect.loaded_dbapi.OperationalError
        real_run = LedgerWriter.run
        real_at_once = AccountsSQL.settle_at_once

        def run(writer: LedgerWriter, op: Any, **kwargs: Any) -> Any:
            if self.down:
                self.refused += 1
                raise error("connection to server at 127.0.0.1, port 5432 failed: Connection refused")
            return real_run(writer, op, **kwargs)

        def at_once(sql: AccountsSQL, *args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.refused += 1
                raise error("server closed the connection unexpectedly")
            return real_at_once(sql, *args, **kwargs)

        monkeypatch.setattr(LedgerWriter, "run", run)
        monkeypatch.setattr(AccountsSQL, "settle_at_once", at_once)
        monkeypatch.setattr(ledger_module, "SETTLE_RETRY_SECONDS", 0.0)


@pytest.fixture
def outage(runtime: Database, monkeypatch: pytest.MonkeyPatch) -> Outage:
    return Outage(runtime, monkeypatch)


@pytest.fixture
def billing(runtime: Database) -> Iterator[BillingService]:
    b = BillingService(runtime.session_factory, runtime.settings)
    yield b
    b._drainer.join(10)


def _funded_hold(runtime: Database, billing: BillingService) -> tuple[UserView, Hold]:
    """A user with 100 credits and a 10-credit hold under key `call-1`."""
    user = make_user(runtime)
    billing.grant(user, 100)
    return user, billing.reserve(user.id, 10, "call-1")


def _usage_rows(runtime: Database) -> list[AIUsageLog]:
    with runtime.session() as s:
        return list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))


def test_a_settlement_the_database_cannot_take_waits_on_disk_and_is_posted_once_when_it_is_back(
    runtime: Database, billing: BillingService, outage: Outage
) -> None:
    user, hold = _funded_hold(runtime, billing)
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL, request_id="req_abc")
    billing._drainer.wake = lambda: None  # type: ignore[method-assign] # drained by hand below
    outage.down = True
    assert billing.settle_or_spool(hold, record) is None
    # the settle's own tries came first: fewer than without a spool (about 1.5 s, not 27 s, of waits)
    assert outage.refused == ledger_module.SPOOLED_SETTLE_ATTEMPTS < ledger_module.SETTLE_ATTEMPTS
    assert billing.spool is not None
    [waiting] = billing.spool.waiting()
    assert (waiting.kind, waiting.hold_id, waiting.user_id, waiting.idempotency_key) == (
        "settle",
        hold.id,
        user.id,
        "call-1",
    )
    assert waiting.record == record and waiting.reason.startswith("OperationalError: ")

    report = billing.drain_spool()  # still down: nothing posted, nothing lost
    assert report.posted == 0 and report.unavailable and report.left == 1
    assert len(billing.spool.waiting()) == 1

    outage.down = False
    report = billing.drain_spool()
    assert (report.posted, report.already_written, report.rejected, report.left) == (1, 0, 0, 0)
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert billing.balance(user).held == 0
    [row] = _usage_rows(runtime)
    assert row.cost_credits == 2 and row.request_id == "req_abc"
    assert (row.meta or {}).get("spooled_because", "").startswith("OperationalError")
    assert billing.spool.waiting() == [] and billing.drain_spool().posted == 0  # nothing posted twice
    assert check_ledger(runtime.session_factory) == []


def test_a_settlement_that_did_commit_before_the_database_went_away_is_not_charged_again(
    runtime: Database, billing: BillingService
) -> None:
    """The settlement committed but its answer was lost; the file written after it finds the hold settled."""
    user, hold = _funded_hold(runtime, billing)
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    assert billing.spool is not None
    name = billing.spool.put("settle", hold, record, "OperationalError: server closed the connection")
    assert (billing.spool.pending / name).stat().st_mode & 0o777 == 0o600  # it may hold a call's answer
    billing.settle(hold, record)
    report = billing.drain_spool()
    assert (report.posted, report.already_written) == (0, 1)
    assert [t.amount for t in billing.transactions(user)] == [100, -2]
    assert check_ledger(runtime.session_factory) == []


def test_a_file_of_another_database_is_set_aside_never_posted(runtime: Database, billing: BillingService) -> None:
    user, hold = _funded_hold(runtime, billing)
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    assert billing.spool is not None
    billing.spool.put("settle", replace(hold, idempotency_key="someone-elses-key"), record, "down")
    billing.spool.put("settle", replace(hold, id=hold.id + 1000), record, "down")
    report = billing.drain_spool()
    assert (report.posted, report.rejected) == (0, 2)
    assert [t.amount for t in billing.transactions(user)] == [100] and billing.balance(user).held == 10
    aside = billing.spool.set_aside()
    assert len(aside) == 2 and all("another database" in (w.rejected or "") for w in aside)
    assert billing.spool.waiting() == []


def test_a_failed_calls_release_waits_too_and_writes_its_usage_row(
    runtime: Database, billing: BillingService, outage: Outage
) -> None:
    user, hold = _funded_hold(runtime, billing)
    model = catalog_model(runtime, "gpt-4o")
    failure = UsageRecord(model=model, usage=Usage(), base_cost_usd=Decimal(0), status="failed", error="upstream 500")
    billing._drainer.wake = lambda: None  # type: ignore[method-assign]
    outage.down = True
    assert billing.release_or_spool(hold, failure) is False
    outage.down = False
    assert billing.drain_spool().posted == 1
    assert billing.balance(user).held == 0 and [t.amount for t in billing.transactions(user)] == [100]
    [row] = _usage_rows(runtime)
    assert row.status == "failed" and row.error == "upstream 500" and row.cost_credits == 0


def test_other_errors_are_raised_not_spooled(runtime: Database, billing: BillingService) -> None:
    """Only an unavailable database defers a write: a refused one (an unknown hold) is the caller's to handle."""
    from core.billing.errors import HoldStateError

    user = make_user(runtime)
    hold = replace(billing.reserve(user.id, 0, "free"), id=999_999)
    with pytest.raises(HoldStateError):
        billing.settle_or_spool(hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL))
    assert billing.spool is not None and billing.spool.waiting() == []


def test_the_drainer_posts_in_the_background_once_the_database_is_back(
    runtime: Database, billing: BillingService, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.billing.spool as spool_module

    monkeypatch.setattr(spool_module, "DRAIN_FIRST_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(spool_module, "DRAIN_MAX_WAIT_SECONDS", 0.1)
    user = make_user(runtime)
    billing.grant(user, 100)
    holds = [billing.reserve(user.id, 10, f"call-{i}") for i in range(3)]
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    outage.down = True
    assert all(billing.settle_or_spool(h, record) is None for h in holds)
    time.sleep(0.3)  # the drainer meets the outage and waits
    assert billing.spool is not None and len(billing.spool.waiting()) == 3
    outage.down = False
    deadline = time.monotonic() + 20
    while billing.spool.has_waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    billing._drainer.join(10)
    assert [t.amount for t in billing.transactions(user)] == [100, -2, -2, -2]
    assert billing.balance(user).held == 0 and check_ledger(runtime.session_factory) == []


def test_a_claim_left_by_a_process_that_died_is_posted(runtime: Database, billing: BillingService) -> None:
    user, hold = _funded_hold(runtime, billing)
    assert billing.spool is not None
    name = billing.spool.put("settle", hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL), "down")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    billing.spool.claimed.mkdir(parents=True)
    (billing.spool.pending / name).rename(billing.spool.claimed / f"{name}.{int(dead.stdout)}")
    assert len(billing.spool.waiting()) == 1
    assert billing.drain_spool().posted == 1
    assert [t.amount for t in billing.transactions(user)] == [100, -2]


def test_a_claim_held_by_a_live_process_is_left_to_it(runtime: Database, billing: BillingService) -> None:
    user, hold = _funded_hold(runtime, billing)
    assert billing.spool is not None
    name = billing.spool.put("settle", hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL), "down")
    billing.spool.claimed.mkdir(parents=True)
    (billing.spool.pending / name).rename(billing.spool.claimed / f"{name}.{os.getppid()}")
    report = billing.drain_spool()
    assert report.posted == 0 and report.left == 1
    assert [t.amount for t in billing.transactions(user)] == [100]


def test_an_unreadable_file_is_set_aside(tmp_path: Path, runtime: Database, billing: BillingService) -> None:
    assert billing.spool is not None
    billing.spool.pending.mkdir(parents=True)
    (billing.spool.pending / "20260101T000000000000-settle-1-abcd.json").write_text("{not json")
    assert billing.drain_spool().rejected == 1
    assert billing.spool.waiting() == [] and len(billing.spool.set_aside()) == 1


def test_the_file_keeps_every_figure_of_the_record(runtime: Database) -> None:
    model = catalog_model(runtime, "gpt-4o")
    usage = Usage(input_tokens=7, output_tokens=3, cached_tokens=2, seconds=Decimal("1.25"), estimated=True)
    record = UsageRecord(
        model=model,
        usage=usage,
        base_cost_usd=Decimal("0.000012345678"),
        latency_ms=12,
        request_id="req_1",
        api_key_id=4,
        source="api",
        metadata={"incomplete": True, "nested": {"a": [1, 2]}},
    )
    w = SpooledWrite(
        kind="settle", hold_id=3, user_id=5, idempotency_key="k", record=record, spooled_at=utcnow(), reason="x"
    )
    back = decode(encode(w))
    assert back.record == record and back.record.model == model and back.record.usage == usage
    assert json.loads(encode(w))["record"]["base_cost_usd"] == "0.000012345678"
    assert SettlementSpool(Path("/nonexistent")).waiting() == []
    answer = PendingReply(fingerprint="fp", result={"text": "hi", "credits_charged": None}, data=b"\x00\xffmp3")
    kept = decode(encode(replace(w, reply=answer)))
    assert kept.reply == answer and decode(encode(w)).reply is None


def test_each_database_has_its_own_spool(tmp_path: Path) -> None:
    assert default_spool_dir("sqlite:///x", tmp_path / "app.db", tmp_path) == tmp_path / "app.db.settle-spool"
    assert default_spool_dir("sqlite:///:memory:", None, tmp_path) is None
    a = default_spool_dir("postgresql+psycopg://u:secret@h/db1", None, tmp_path)
    b = default_spool_dir("postgresql+psycopg://u:other@h/db1", None, tmp_path)
    c = default_spool_dir("postgresql+psycopg://u:secret@h/db2", None, tmp_path)
    assert a == b != c and a is not None and "secret" not in str(a)


def test_what_an_earlier_process_left_is_posted_when_the_next_one_starts(
    runtime: Database, billing: BillingService
) -> None:
    """The gateway (and the app) resume the spool when they start; a command does not (a short-lived process would
    post in a thread killed at its exit, racing what the command itself prints), except `ledger spool --drain`."""
    from fastapi.testclient import TestClient

    from core.gateway import create_app
    from tests.conftest import services_of

    user, hold = _funded_hold(runtime, billing)
    assert billing.spool is not None
    billing.spool.put("settle", hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL), "down")
    services = services_of(runtime)  # as a command builds it: nothing posted in the background
    time.sleep(0.2)
    assert billing.spool.has_waiting()
    with TestClient(create_app(services)):  # as the gateway starts
        services.billing._drainer.join(20)
    assert not billing.spool.has_waiting()
    assert [t.amount for t in billing.transactions(user)] == [100, -2]


def test_a_spool_folder_that_is_a_file_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import load_settings
    from core.errors import ConfigError

    (tmp_path / "spool").write_text("")
    monkeypatch.setenv("SETTLE_SPOOL_DIR", str(tmp_path / "spool"))
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        load_settings()


def test_an_unexpected_error_leaves_its_write_waiting_and_the_rest_are_posted(
    runtime: Database, billing: BillingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the ledger's own refusals set a write aside; anything else may pass, so the write waits for the next
    drain (never set aside, never lost) while the writes after it are posted."""
    user = make_user(runtime)
    billing.grant(user, 100)
    record = record_for(catalog_model(runtime, "gpt-4o"), SMALL)
    holds = [billing.reserve(user.id, 10, f"call-{i}") for i in range(3)]
    assert billing.spool is not None
    for h in holds:
        billing.spool.put("settle", h, record, "down")
    real = billing._post_spooled

    def flaky(write: Any) -> str:
        if write.hold_id == holds[0].id:
            raise RuntimeError("a bug, or a fault nobody foresaw")
        return real(write)

    monkeypatch.setattr(billing, "_post_spooled", flaky)
    report = billing.drain_spool()
    assert (report.posted, report.rejected, report.left) == (2, 0, 1) and "RuntimeError" in report.errors[0]
    assert [w.hold_id for w in billing.spool.waiting()] == [holds[0].id] and billing.spool.set_aside() == []
    monkeypatch.undo()
    assert billing.drain_spool().posted == 1
    assert [t.amount for t in billing.transactions(user)] == [100, -2, -2, -2]


def test_a_write_that_never_completed_is_not_posted(runtime: Database, billing: BillingService) -> None:
    """A process that died between writing a file and renaming it into place never told its caller the write was
    kept (the call was answered as failed, or not at all): its temporary file is left alone."""
    user, hold = _funded_hold(runtime, billing)
    assert billing.spool is not None
    name = billing.spool.put("settle", hold, record_for(catalog_model(runtime, "gpt-4o"), SMALL), "down")
    (billing.spool.pending / name).rename(billing.spool.pending / f".{name}.tmp")
    assert billing.spool.waiting() == [] and not billing.spool.has_waiting()
    assert billing.drain_spool().posted == 0
    assert [t.amount for t in billing.transactions(user)] == [100]
