"""Ledger: balances, a user's history, grants, top-ups, adjustments and refunds, the audit log, the ledger check.

Finance and admins see every account; everybody else sees their own. Grants, adjustments and refunds need the
grant capability and are audited under the caller's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded, sees_everyone
from core.billing.accounts import AccountBalance, AuditEntry, account_balances, audit_entries
from core.billing.disputes import DEFAULT_LIMIT as DISPUTES_SHOWN
from core.billing.disputes import DisputedCall, disputed_calls
from core.billing.inputs import MAX_CREDITS as MAX_GRANT_CREDITS
from core.billing.ledger import GRANT_KINDS
from core.billing.ledger_check import Violation, check_ledger
from core.billing.types import Balance, Transaction
from core.money import credits_to_usd
from core.users import get_user

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "DISPUTES_SHOWN",
    "GRANT_KINDS",
    "MAX_GRANT_CREDITS",
    "AccountBalance",
    "AuditEntry",
    "Balance",
    "DisputedCall",
    "History",
    "LedgerService",
    "Transaction",
    "Violation",
]


@dataclass(frozen=True, kw_only=True)
class History:
    transactions: list[Transaction]  # oldest first
    balance: int  # after the last of them
    balance_usd: Decimal  # what that balance was bought for, at the credit price


class LedgerService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def balances(
        self,
        caller: Caller,
        *,
        role: str | None = None,
        search: str | None = None,
        min_available: int | None = None,
        max_available: int | None = None,
    ) -> list[AccountBalance]:
        """Every account's balance, held and available credits (lowest available first); one's own for those who
        may not see everyone's."""
        with self._s.db.session() as s:
            rows = account_balances(
                s, role=role, search=search, min_available=min_available, max_available=max_available
            )
        if sees_everyone(caller):
            return rows
        return [a for a in rows if a.user_id == caller.user_id]  # type: ignore[union-attr]

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def balance(self, caller: Caller, user: int | str) -> Balance:
        return self._s.billing.balance(user)

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def history(
        self,
        caller: Caller,
        user: int | str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> History:
        """A user's transactions, oldest first (the most recent `limit` with a limit), and where they leave the
        balance."""
        txs = self._s.billing.transactions(user, since=since, until=until, limit=limit)
        balance = txs[-1].balance_after if txs else 0
        return History(
            transactions=txs, balance=balance, balance_usd=credits_to_usd(balance, self._s.settings.credit_usd)
        )

    @guarded(Capability.GRANT_CREDITS)
    def grant(
        self,
        caller: Caller,
        user: int | str,
        credits: int,
        *,
        kind: str = "grant",
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Transaction:
        """A grant or top-up (adds credits) or an adjustment (either sign, never below zero available)."""
        return self._s.billing.grant(
            user, credits, kind=kind, note=note, idempotency_key=idempotency_key, actor=caller.actor
        )

    @guarded(Capability.GRANT_CREDITS)
    def refund(self, caller: Caller, transaction: int, reason: str, *, credits: int | None = None) -> Transaction:
        """Give back a debit (all of it, or `credits` of it), once."""
        return self._s.billing.refund(transaction, reason, actor=caller.actor, credits=credits)

    @guarded(Capability.VIEW_ALL_SPEND)
    def audit(self, caller: Caller, *, action_prefix: str | None = None) -> list[AuditEntry]:
        """Grants, refunds, price edits and endpoint actions, newest first."""
        with self._s.db.session() as s:
            return audit_entries(s, action_prefix=action_prefix)

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def disputed(
        self,
        caller: Caller,
        user: int | str | None = None,
        *,
        since: datetime | None = None,
        limit: int = DISPUTES_SHOWN,
    ) -> list[DisputedCall]:
        """Calls whose upstream reported more usage than the request allowed (billed at the cap), newest first: one
        user's (their own for anyone), or everyone's for those who see all spend."""
        user_id = None
        if user is not None:
            with self._s.db.session() as s:
                user_id = get_user(s, user).id
        return disputed_calls(self._s.db.engine, since=since, user_id=user_id, limit=limit)

    @guarded(Capability.VIEW_ALL_SPEND)
    def check(self, caller: Caller) -> list[Violation]:
        """Prove every balance from its transactions; the violations found (none on a healthy ledger)."""
        return check_ledger(self._s.db.session_factory)
