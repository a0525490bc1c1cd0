"""Ledger: balances, a user's history, grants, top-ups, adjustments and refunds, the audit log, the ledger check.

Finance and admins see every account; everybody else sees their own. Grants, adjustments and refunds need the
grant capability and are audited under the caller's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded, sees_everyone
from core.billing.accounts import AccountBalance, AuditEntry, account_balances, audit_entries
from core.billing.disputes import DEFAULT_LIMIT as DISPUTES_SHOWN
from core.billing.disputes import DisputedCall, disputed_calls
from core.billing.errors import InsufficientCreditsError, InvalidAmountError
from core.billing.inputs import MAX_CREDITS as MAX_GRANT_CREDITS
from core.billing.inputs import separators_misplaced, typed_credits
from core.billing.ledger import GRANT_KINDS, MAX_PAGE, REFUNDABLE_KINDS, TRANSACTION_TYPES
from core.billing.ledger_check import Violation, check_ledger
from core.billing.spool import DrainReport, SpooledWrite, SpoolState
from core.billing.types import Balance, Transaction
from core.errors import InvalidInputError
from core.money import credits_text, credits_to_usd
from core.services.times import day_bounds
from core.users import get_user

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "DISPUTES_SHOWN",
    "GRANT_KINDS",
    "MAX_GRANT_CREDITS",
    "MAX_PAGE",
    "PAGE_SIZE",
    "TRANSACTION_TYPES",
    "AccountBalance",
    "AuditEntry",
    "Balance",
    "DisputedCall",
    "GrantReview",
    "History",
    "HistoryPage",
    "LargeGrantError",
    "LedgerService",
    "SpooledWrite",
    "Transaction",
    "Violation",
    "separators_misplaced",
]


PAGE_SIZE = 200  # transactions per page of a history (the Ledger page's "load more", `credits history`)


@dataclass(frozen=True, kw_only=True)
class History:
    transactions: list[Transaction]  # oldest first
    balance: int  # after the last of them
    balance_usd: Decimal  # what that balance was bought for, at the credit price


@dataclass(frozen=True, kw_only=True)
class HistoryPage:
    transactions: list[Transaction]  # newest first
    next_before: int | None  # pass as `before` for the next (older) page; None: this is the last
    matching: int  # transactions matching the filters, over all pages
    balance: int  # the user's balance now
    balance_usd: Decimal  # what that balance was bought for, at the credit price
    refundable: frozenset[int]  # debits on this page with no refund yet (a debit is refunded once)


@dataclass(frozen=True, kw_only=True)
class GrantReview:
    """A grant as it would be posted, for the confirmation step (the page's Review, the command line)."""

    user: str  # email
    kind: str
    credits: int  # exactly what was typed, signed
    usd: Decimal  # what those credits are worth at the credit price
    balance: int  # now
    available: int  # now
    balance_after: int
    large: bool  # above the confirmation limit: needs a second confirmation
    confirm_above: int  # GRANT_CONFIRM_ABOVE_CREDITS


class LargeGrantError(InvalidInputError):
    """A grant above the confirmation limit was posted without its second confirmation."""

    def __init__(self, review: GrantReview) -> None:
        self.review = review
        super().__init__(
            f"{credits_text(review.credits, signed=True)} (${review.usd:,.2f}) is above the "
            f"{review.confirm_above:,}-credit limit that needs a second confirmation "
            "(GRANT_CONFIRM_ABOVE_CREDITS): confirm it again (on the command line, "
            "add --yes-large)."
        )


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

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def history_page(
        self,
        caller: Caller,
        user: int | str,
        *,
        before: int | None = None,
        size: int = PAGE_SIZE,
        kinds: tuple[str, ...] = (),
        since: date | None = None,
        until: date | None = None,
    ) -> HistoryPage:
        """One page of a user's transactions, newest first: those older than transaction `before` (the previous
        page's `next_before`), of the given types, from day `since` to day `until` (both included: days in the
        reporting time zone, the days Spend buckets by); with how many match in all, the balance now, and which
        debits on the page can still be refunded."""
        if since is not None and until is not None and until < since:
            raise InvalidInputError(f"The range ends ({until}) before it starts ({since}); swap the dates.")
        start, end = day_bounds(since, until, self._s.settings.reporting_tz)
        billing = self._s.billing
        txs, more = billing.transactions_page(user, before=before, size=size, kinds=kinds, since=start, until=end)
        matching = billing.count_transactions(user, kinds=kinds, since=start, until=end)
        debits = [t.id for t in txs if t.amount < 0 and t.transaction_type in REFUNDABLE_KINDS]
        done = billing.refunded(user, debits) | billing.billed_by_accrual(debits)  # refunded, or not on its own
        total = billing.balance(user).total
        return HistoryPage(
            transactions=txs,
            next_before=txs[-1].id if more else None,
            matching=matching,
            balance=total,
            balance_usd=credits_to_usd(total, self._s.settings.credit_usd),
            refundable=frozenset(i for i in debits if i not in done),
        )

    @guarded(Capability.GRANT_CREDITS)
    def review_grant(self, caller: Caller, user: int | str, credits: int | str, *, kind: str = "grant") -> GrantReview:
        """What a grant would post, checked before anyone confirms it: the exact credits typed (refused, naming what
        was typed, when not a whole number, zero, negative for a grant or top-up, or an adjustment that would take
        the available balance below zero), their price, the balance before and after, and whether it is large
        enough to need a second confirmation (GRANT_CONFIRM_ABOVE_CREDITS)."""
        return self._review(user, credits, kind, check_available=True)

    def _review(self, user: int | str, credits: int | str, kind: str, *, check_available: bool) -> GrantReview:
        if kind not in GRANT_KINDS:
            raise InvalidInputError(f"Unknown kind {kind!r}; choose one of: {', '.join(GRANT_KINDS)}.")
        amount = typed_credits(credits, "Credits")
        if amount == 0:
            raise InvalidAmountError(
                "Credits: 0 posts nothing; type how many credits to add (an adjustment may be negative)."
            )
        if amount < 0 and kind != "adjustment":
            raise InvalidAmountError(
                f"Credits: a {kind} adds credits and {amount:,} is negative; use kind 'adjustment' to take credits "
                "away."
            )
        now = self._s.billing.balance(user)
        with self._s.db.session() as s:
            email = get_user(s, user).email
        if check_available and amount < 0 and now.available + amount < 0:
            left = max(now.available, 0)
            raise InsufficientCreditsError(
                -amount,
                left,
                message=f"This adjustment takes {-amount:,} credits, but {email} has {left:,} available; "
                f"an adjustment can take at most {left:,}.",
            )
        limit = self._s.settings.grant_confirm_above_credits
        return GrantReview(
            user=email,
            kind=kind,
            credits=amount,
            usd=credits_to_usd(abs(amount), self._s.settings.credit_usd),
            balance=now.total,
            available=now.available,
            balance_after=now.total + amount,
            large=abs(amount) > limit,
            confirm_above=limit,
        )

    @guarded(Capability.GRANT_CREDITS)
    def grant(
        self,
        caller: Caller,
        user: int | str,
        credits: int | str,
        *,
        kind: str = "grant",
        note: str | None = None,
        idempotency_key: str | None = None,
        confirm_large: bool = False,
    ) -> Transaction:
        """A grant or top-up (adds credits) or an adjustment (either sign, never below zero available), checked as
        `review_grant` checks it; above GRANT_CONFIRM_ABOVE_CREDITS only with `confirm_large` (a second yes)."""
        # The available balance is checked again under the account's lock (and a retried key returns its first
        # transaction even if the balance has moved since), so it is not checked here.
        review = self._review(user, credits, kind, check_available=False)
        if review.large and not confirm_large:
            raise LargeGrantError(review)
        tx = self._s.billing.grant(
            user, review.credits, kind=kind, note=note, idempotency_key=idempotency_key, actor=caller.actor
        )
        if (tx.amount, tx.transaction_type) != (review.credits, kind):  # the key's first transaction, not this one
            raise InvalidInputError(
                f"The idempotency key was already used by transaction {tx.id} (a {tx.transaction_type} of "
                f"{tx.amount:+,} credits); this {kind} of {review.credits:+,} was not posted. Use a new key."
            )
        return tx

    @guarded(Capability.GRANT_CREDITS)
    def refund(self, caller: Caller, transaction: int, reason: str, *, credits: int | str | None = None) -> Transaction:
        """Give back a debit (all of it, or `credits` of it: a whole number, as typed; blank means all), once."""
        if isinstance(credits, str):
            credits = typed_credits(credits, "The refund") if credits.strip() else None
        return self._s.billing.refund(transaction, reason, actor=caller.actor, credits=credits)

    @guarded(Capability.GRANT_CREDITS)
    def review_refund(self, caller: Caller, debited: int, credits: str) -> int:
        """The credits a refund of `credits` (as typed; blank: all) of a debit of `debited` credits gives back,
        checked before anyone confirms it as the refund itself checks them: a whole number, above 0, at most what
        was debited."""
        if not credits.strip():
            return debited
        amount = typed_credits(credits, "The refund")
        if amount <= 0:
            raise InvalidAmountError(f"The refund: {credits.strip()} is not above 0; type 1 to {debited:,}.")
        if amount > debited:
            raise InvalidAmountError(
                f"A refund of {amount:,} credits is more than the {debited:,} the transaction debited; "
                f"type 1 to {debited:,}."
            )
        return amount

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
    def spool(self, caller: Caller) -> SpoolState:
        """The ledger writes waiting on this server because the database was unavailable when their calls ended
        (core/billing/spool.py), and those set aside for a person."""
        spool = self._s.billing.spool
        if spool is None:
            return SpoolState(directory=None, waiting=[], set_aside=[])
        return spool.state()

    @guarded(Capability.GRANT_CREDITS)
    def drain_spool(self, caller: Caller) -> DrainReport:
        """Post the waiting writes now (a background drainer also does, while any wait)."""
        return self._s.billing.drain_spool()

    @guarded(Capability.VIEW_ALL_SPEND)
    def check(self, caller: Caller) -> list[Violation]:
        """Prove every balance from its transactions; the violations found (none on a healthy ledger)."""
        return check_ledger(self._s.db.session_factory)
