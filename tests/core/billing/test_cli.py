"""`python -m core credits ...` and `python -m core ledger check` end to end on a temporary SQLite database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from core.cli import main
from core.db.models import User
from tests.conftest import make_runtime


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    make_runtime(url, tmp_path).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm"]) == 0
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_grant_balance_history_refund(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "500", "--note", "hi")
    assert code == 0 and "transaction 1, balance 500" in out
    code, out, _ = run(
        capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "-20", "--kind", "adjustment"
    )
    assert code == 0 and "balance 480" in out
    code, out, _ = run(capsys, "credits", "balance", "--user", "ana@example.com", "--json")
    assert code == 0 and json.loads(out) == {"total": 480, "held": 0, "available": 480}
    code, out, _ = run(capsys, "credits", "history", "--user", "ana@example.com", "--json")
    rows = json.loads(out)
    assert [(r["amount"], r["balance_after"], r["transaction_type"]) for r in rows] == [
        (500, 500, "grant"),
        (-20, 480, "adjustment"),
    ]
    assert rows[0]["metadata"]["actor"].startswith("cli")
    code, out, _ = run(capsys, "credits", "refund", "--transaction", "2", "--reason", "wrong correction")
    assert code == 0 and "refunded 20 credits" in out
    code, out, _ = run(capsys, "credits", "history", "--user", "ana@example.com")
    assert code == 0 and "refund of transaction 2: wrong correction" in out and "500" in out
    code, out, _ = run(capsys, "ledger", "check")
    assert code == 0 and "ledger OK" in out


def test_one_credit_reads_one_credit(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A figure of 1 takes the singular in every line these commands print (it used to read "1 credits")."""
    capsys.readouterr()
    code, out, _ = run(capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "1")
    assert code == 0 and "grant of +1 credit to ana@example.com" in out
    code, out, _ = run(capsys, "credits", "balance", "--user", "ana@example.com")
    assert code == 0 and "ana@example.com: 1 credit, 0 held, 1 available" in out
    code, out, _ = run(
        capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "-1", "--kind", "adjustment"
    )
    assert code == 0 and "adjustment of -1 credit to" in out
    code, out, _ = run(capsys, "credits", "refund", "--transaction", "2", "--reason", "undo")
    assert code == 0 and "refunded 1 credit of transaction 2" in out
    code, out, _ = run(capsys, "budgets", "set", "--user", "ana@example.com", "--credits", "1")
    assert code == 0 and "limit of 1 credit on" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["credits", "grant", "--user", "nobody@example.com", "--credits", "5"], "No user 'nobody@example.com'"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "-5"], "use kind 'adjustment'"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "0"], "0 posts nothing"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "12.7"], "12.7 is not a whole number"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "1,5"], "'1,5' is not a number as written"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "lots"], "'lots' is not a number"),
        (["credits", "grant", "--user", "ana@example.com", "--credits", "2,000,000,000"], "add --yes-large"),
        (["credits", "refund", "--transaction", "99", "--reason", "x"], "No transaction 99"),
        (["credits", "balance", "--user", "nobody@example.com"], "users list"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_a_grant_above_the_confirmation_limit_posts_only_with_yes_large(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRANT_CONFIRM_ABOVE_CREDITS", "1000")
    capsys.readouterr()
    code, out, err = run(capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "1001")
    assert code == 2 and "+1,001 credits ($40.04) is above the 1,000-credit limit" in err and out == ""
    code, out, _ = run(capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "1000")
    assert code == 0 and "balance 1,000" in out
    code, out, _ = run(capsys, "credits", "grant", "--user", "ana@example.com", "--credits", "1001", "--yes-large")
    assert code == 0 and "balance 2,001" in out


def test_history_pages_newest_first_with_filters(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    for credits in ("100", "200", "300"):
        assert main(["credits", "grant", "--user", "ana@example.com", "--credits", credits, "--kind", "topup"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "credits", "history", "--user", "ana@example.com", "--page-size", "2", "--json")
    assert code == 0 and [t["amount"] for t in json.loads(out)] == [300, 200]
    assert err.strip() == "2 of 3 matching transactions, newest first; older: --before 2"
    code, out, err = run(
        capsys, "credits", "history", "--user", "ana@example.com", "--before", "2", "--type", "topup", "--json"
    )
    assert code == 0 and [t["amount"] for t in json.loads(out)] == [100]
    assert err.strip() == "1 of 3 matching transactions, newest first"
    code, _, err = run(capsys, "credits", "history", "--user", "ana@example.com", "--type", "grant")
    assert code == 0 and err.strip() == "0 of 0 matching transactions, newest first"
    both = ("--limit", "3", "--page-size", "5")  # --limit was dropped without a word
    code, _, err = run(capsys, "credits", "history", "--user", "ana@example.com", *both)
    assert code == 2 and "give one of them" in err


def test_ledger_check_reports_violations_and_exits_1(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["credits", "grant", "--user", "ana@example.com", "--credits", "50"]) == 0
    rt = make_runtime(db, tmp_path)
    with rt.session() as s:
        s.execute(update(User).values(credit_balance=49))
    rt.dispose()
    capsys.readouterr()
    code, out, _ = run(capsys, "ledger", "check")
    assert code == 1 and "[balance]" in out and "cached balance 49 but its transactions sum to 50" in out
    code, out, _ = run(capsys, "ledger", "check", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["violations"][0]["check"] == "balance"


def test_ledger_spool_lists_and_posts_the_writes_waiting_for_the_database(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from decimal import Decimal

    from core.billing import BillingService
    from core.billing.spool import SpoolDrainer
    from core.billing.types import UsageRecord
    from core.catalog import get_model
    from core.config import load_settings
    from core.db import Database
    from core.usage import Usage

    monkeypatch.setattr(SpoolDrainer, "wake", lambda self: None)  # posted by the command here, not in the background
    rt = Database(load_settings())
    billing = BillingService(rt.session_factory, rt.settings)
    billing.grant(1, 100)
    hold = billing.reserve(1, 10, "call-1")
    with rt.session() as s:
        model = get_model(s, "gpt-4o")
    record = UsageRecord(
        model=model, usage=Usage(input_tokens=1000, output_tokens=500), base_cost_usd=Decimal("0.0075")
    )
    assert billing.spool is not None
    billing.spool.put("settle", hold, record, "OperationalError: unable to open database file")
    capsys.readouterr()

    code, out, _ = run(capsys, "ledger", "spool")
    assert code == 0 and "1 write(s) waiting in" in out and "openai/gpt-4o" in out and "0.0075" in out
    code, out, _ = run(capsys, "ledger", "spool", "--json")
    assert json.loads(out)["waiting"][0]["answer kept"] == ""  # no Idempotency-Key: no answer to keep
    code, out, _ = run(capsys, "ledger", "check")
    assert code == 0 and "1 ledger write(s) wait on this server" in out
    code, out, _ = run(capsys, "ledger", "check", "--json")
    assert json.loads(out)["spooled_waiting"] == 1
    code, out, _ = run(capsys, "ledger", "spool", "--drain", "--json")
    body = json.loads(out)
    assert code == 0 and body["drained"]["posted"] == 1 and body["waiting"] == [] and body["set_aside"] == []
    code, out, _ = run(capsys, "credits", "balance", "--user", "ana@example.com", "--json")
    assert json.loads(out) == {"total": 98, "held": 0, "available": 98}
    rt.dispose()


def test_a_replayed_grant_says_it_was_posted_before_and_adds_nothing(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    grant = ("credits", "grant", "--user", "ana@example.com", "--credits", "100", "--idempotency-key", "topup-7")
    code, first, _ = run(capsys, *grant)
    assert code == 0 and first.startswith("grant of +100 credits to ana@example.com: transaction ")
    time.sleep(1.1)  # a retry comes later (the ledger's times are to the microsecond, the check to the second)
    code, again, _ = run(capsys, *grant)
    assert code == 0 and again.startswith("Already posted under idempotency key 'topup-7': grant of +100 credits")
    assert "nothing was added now. Balance now 100." in again  # it read as a fresh grant, with a stale balance
