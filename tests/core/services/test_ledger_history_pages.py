"""A user's history a page at a time, newest first, by keyset: the pages put together are the whole history in
order, with nothing twice and nothing missing, under type and date filters too; debits on a page say whether they
can still be refunded. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from core.access import SYSTEM
from core.db import Database
from core.db.models import CreditTransaction
from core.errors import InvalidInputError
from core.services import Services
from core.services.ledger import HistoryPage
from core.users import UserView, add_user
from tests.conftest import services_of


@pytest.fixture
def svc(runtime: Database) -> Services:
    return services_of(runtime)


@pytest.fixture
def ana(runtime: Database, svc: Services) -> UserView:
    """53 transactions: a grant, then 52 charges of 1 credit, one a day back from 2026-11-30 (newest last)."""
    with runtime.session() as s:
        user = add_user(s, email="ana@example.com", name="Ana", role="pm")
    svc.ledger.grant(SYSTEM, user.id, 1000)
    for i in range(52):
        svc.billing.charge(user.id, Decimal("0.04"), markup_pct=0, idempotency_key=f"c{i}", description=f"call {i}")
    with runtime.session() as s:  # spread them over days, oldest first, as the ids are
        for i, tx in enumerate(s.query(CreditTransaction).order_by(CreditTransaction.id)):
            s.execute(
                update(CreditTransaction)
                .where(CreditTransaction.id == tx.id)
                .values(created_at=datetime(2026, 10, 9, 12) + timedelta(days=i))
            )
    return user


def all_pages(svc: Services, user: UserView, size: int, **filters: object) -> list[HistoryPage]:
    pages = [svc.ledger.history_page(SYSTEM, user.id, size=size, **filters)]  # type: ignore[arg-type]
    while pages[-1].next_before is not None:
        pages.append(
            svc.ledger.history_page(SYSTEM, user.id, size=size, before=pages[-1].next_before, **filters)  # type: ignore[arg-type]
        )
    return pages


def test_pages_put_together_are_the_whole_history_newest_first(svc: Services, ana: UserView) -> None:
    whole = svc.ledger.history(SYSTEM, ana.id).transactions  # oldest first
    pages = all_pages(svc, ana, size=10)
    assert [len(p.transactions) for p in pages] == [10, 10, 10, 10, 10, 3]
    assert [t.id for p in pages for t in p.transactions] == [t.id for t in reversed(whole)]
    first = pages[0]
    assert first.matching == 53 and first.balance == 948 and first.balance_usd == Decimal("37.92")
    assert first.transactions[0].balance_after == 948  # the newest row is where the balance is now


def test_filters_by_type_and_days_and_pages_them(svc: Services, ana: UserView) -> None:
    pages = all_pages(svc, ana, size=4, kinds=("usage",), since=date(2026, 11, 1), until=date(2026, 11, 10))
    got = [t for p in pages for t in p.transactions]
    assert [t.created_at.date() for t in got] == [date(2026, 11, 10) - timedelta(days=i) for i in range(10)]
    assert {t.transaction_type for t in got} == {"usage"} and pages[0].matching == 10
    grants = svc.ledger.history_page(SYSTEM, ana.id, kinds=("grant",))
    assert [t.amount for t in grants.transactions] == [1000] and grants.next_before is None
    with pytest.raises(InvalidInputError, match="swap the dates"):
        svc.ledger.history_page(SYSTEM, ana.id, since=date(2026, 11, 2), until=date(2026, 11, 1))
    with pytest.raises(InvalidInputError, match="Unknown transaction type 'bonus'"):
        svc.ledger.history_page(SYSTEM, ana.id, kinds=("bonus",))


def test_a_refunded_debit_is_no_longer_refundable(svc: Services, ana: UserView) -> None:
    page = svc.ledger.history_page(SYSTEM, ana.id, size=3)
    newest = page.transactions[0]
    assert page.refundable == {t.id for t in page.transactions}  # three usage debits
    svc.ledger.refund(SYSTEM, newest.id, "wrong model")
    page = svc.ledger.history_page(SYSTEM, ana.id, size=3)
    refund, refunded, older = page.transactions
    assert refund.transaction_type == "refund" and refunded.id == newest.id
    assert page.refundable == {older.id}  # a refund is no debit, and the refunded debit is done
