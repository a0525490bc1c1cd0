"""`python -m core ledger check`: prove every balance from its transactions and every charge from its usage.

Each check is one SQL query over the whole ledger (the same on SQLite and PostgreSQL) and yields a `Violation` per
offending row, so finance can see exactly which user and which row is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.billing.accrual import NANO_PER_CREDIT
from core.billing.budget_periods import Window
from core.billing.budget_sql import BudgetSQL
from core.db.models import AIUsageLog, Budget, BudgetPeriod, CreditHold, CreditTransaction, User, utcnow
from core.money import credits_text

CREDITS_IN = ("grant", "topup", "refund")
CREDITS_OUT = ("usage", "endpoint_uptime")
OVERDRAFT_KINDS = ("usage", "endpoint_uptime")  # delivered service may be posted past zero, flagged "overdraft"
MAX_PER_CHECK = 1000  # a broken ledger can have millions of bad rows; the first thousand per check say enough


@dataclass(frozen=True, kw_only=True)
class Violation:
    check: str  # balance | running_balance | usage_debit | free_call_charged | debit_reused | hold | idempotency
    # | overdraft | amount_sign | refund | remainder | accrual | budget_counter
    user_id: int | None
    message: str
    row_id: int | None = None

    def __str__(self) -> str:
        who = f"user {self.user_id}: " if self.user_id is not None else ""
        return f"[{self.check}] {who}{self.message}"


def check_ledger(session_factory: sessionmaker[Session]) -> list[Violation]:
    """Every violation of the ledger's invariants (an empty list means the ledger is exact)."""
    with session_factory() as s:
        found: list[Violation] = []
        for check in (
            _balances,
            _running_balance,
            _amount_signs,
            _usage_debits,
            _free_calls,
            _reused_debits,
            _holds,
            _idempotency,
            _overdrafts,
            _refunds,
            _remainders,
            _accrual_steps,
            _budget_counters,
        ):
            found.extend(check(s))
        return found


T = CreditTransaction
U = AIUsageLog


def _balances(s: Session) -> Iterator[Violation]:
    sums = (
        select(T.user_id, func.sum(T.amount).label("total"), func.max(T.id).label("last_id"))
        .group_by(T.user_id)
        .subquery()
    )
    last = aliased(T)
    rows = s.execute(
        select(User.id, User.email, User.credit_balance, sums.c.total, last.balance_after)
        .outerjoin(sums, sums.c.user_id == User.id)
        .outerjoin(last, last.id == sums.c.last_id)
        .order_by(User.id)
    )
    for uid, email, cached, total, last_after in rows:
        total = int(total or 0)
        if cached != total:
            yield Violation(
                check="balance",
                user_id=uid,
                message=f"{email}: cached balance {cached:,} but its transactions sum to {total:,}",
            )
        if last_after is not None and last_after != total:
            yield Violation(
                check="balance",
                user_id=uid,
                message=f"{email}: last balance_after is {last_after:,} but its transactions sum to {total:,}",
            )


def _running_balance(s: Session) -> Iterator[Violation]:
    prev = func.lag(T.balance_after, 1, 0).over(partition_by=T.user_id, order_by=T.id).label("prev")
    chain = select(T.id, T.user_id, T.amount, T.balance_after, prev).subquery()
    rows = s.execute(
        select(chain)
        .where(chain.c.balance_after != chain.c.prev + chain.c.amount)
        .order_by(chain.c.id)
        .limit(MAX_PER_CHECK)
    )
    for tx_id, uid, amount, after, before in rows:
        yield Violation(
            check="running_balance",
            user_id=uid,
            row_id=tx_id,
            message=f"transaction {tx_id}: {before:,} {amount:+,} should leave {before + amount:,}, says {after:,}",
        )


def _amount_signs(s: Session) -> Iterator[Violation]:
    rows = s.execute(
        select(T.id, T.user_id, T.transaction_type, T.amount)
        .where(
            or_(
                and_(T.transaction_type.in_(CREDITS_IN), T.amount <= 0),
                and_(T.transaction_type.in_(CREDITS_OUT), T.amount >= 0),
                and_(T.transaction_type == "adjustment", T.amount == 0),
                T.transaction_type.not_in((*CREDITS_IN, *CREDITS_OUT, "adjustment")),
            )
        )
        .limit(MAX_PER_CHECK)
    )
    for tx_id, uid, kind, amount in rows:
        yield Violation(
            check="amount_sign", user_id=uid, row_id=tx_id, message=f"transaction {tx_id} is a {kind} of {amount:+,}"
        )


def _usage_debits(s: Session) -> Iterator[Violation]:
    """Every successful, non-sandbox usage row that cost credits has exactly one debit of the same credits."""
    rows = s.execute(
        select(U.id, U.user_id, U.cost_credits, U.transaction_id, T.id, T.amount, T.user_id, T.transaction_type)
        .outerjoin(T, T.id == U.transaction_id)
        .where(U.status == "success", U.sandbox.is_(False), U.cost_credits > 0)
        .where(
            or_(
                T.id.is_(None),
                T.amount != -U.cost_credits,
                T.user_id != U.user_id,
                T.transaction_type != "usage",
            )
        )
        .order_by(U.id)
        .limit(MAX_PER_CHECK)
    )
    for usage_id, uid, credits, tx_ref, tx_id, amount, tx_user, kind in rows:
        if tx_id is None:
            problem = "has no debit" if tx_ref is None else f"points to missing transaction {tx_ref}"
        elif tx_user != uid:
            problem = f"is debited to another user's transaction {tx_id}"
        elif kind != "usage":
            problem = f"points to transaction {tx_id}, a {kind}"
        else:
            problem = f"charged {credits_text(credits)} but its debit {tx_id} is {amount:+,}"
        yield Violation(check="usage_debit", user_id=uid, row_id=usage_id, message=f"usage row {usage_id} {problem}")


def _free_calls(s: Session) -> Iterator[Violation]:
    """A failed or sandbox call is never charged."""
    rows = s.execute(
        select(U.id, U.user_id, U.status, U.sandbox, U.cost_credits, U.transaction_id)
        .where(or_(U.status != "success", U.sandbox.is_(True)))
        .where(or_(U.cost_credits != 0, U.transaction_id.is_not(None)))
        .order_by(U.id)
        .limit(MAX_PER_CHECK)
    )
    for usage_id, uid, status, sandbox, credits, tx_id in rows:
        what = "sandbox" if sandbox else status
        yield Violation(
            check="free_call_charged",
            user_id=uid,
            row_id=usage_id,
            message=f"{what} usage row {usage_id} was charged {credits_text(credits)} (transaction {tx_id})",
        )


def _reused_debits(s: Session) -> Iterator[Violation]:
    rows = s.execute(
        select(U.transaction_id, func.min(U.user_id), func.count())
        .where(U.transaction_id.is_not(None))
        .group_by(U.transaction_id)
        .having(func.count() > 1)
        .limit(MAX_PER_CHECK)
    )
    for tx_id, uid, n in rows:
        yield Violation(
            check="debit_reused", user_id=uid, row_id=tx_id, message=f"transaction {tx_id} pays for {n} usage rows"
        )


def _holds(s: Session) -> Iterator[Violation]:
    """No hold is both open and settled; a settled hold has its debit, or a zero-credit usage row."""
    zero_usage = (
        select(literal(1))
        .where(U.user_id == CreditHold.user_id, U.idempotency_key == CreditHold.idempotency_key, U.cost_credits == 0)
        .exists()
    )
    rows = s.execute(
        select(CreditHold.id, CreditHold.user_id, CreditHold.status, CreditHold.transaction_id, T.id, T.user_id)
        .outerjoin(T, T.id == CreditHold.transaction_id)
        .where(
            or_(
                and_(CreditHold.status != "settled", CreditHold.transaction_id.is_not(None)),
                and_(CreditHold.status == "settled", CreditHold.transaction_id.is_not(None), T.id.is_(None)),
                and_(
                    CreditHold.status == "settled",
                    CreditHold.transaction_id.is_not(None),
                    T.user_id != CreditHold.user_id,
                ),
                and_(CreditHold.status == "settled", CreditHold.transaction_id.is_(None), ~zero_usage),
            )
        )
        .order_by(CreditHold.id)
        .limit(MAX_PER_CHECK)
    )
    for hold_id, uid, status, tx_ref, tx_id, tx_user in rows:
        if status != "settled":
            problem = f"is {status} but has transaction {tx_ref}"
        elif tx_ref is None:
            problem = "is settled but has neither a debit nor a zero-credit usage row"
        elif tx_id is None:
            problem = f"is settled by missing transaction {tx_ref}"
        else:
            problem = f"is settled by another user's transaction {tx_id} (user {tx_user})"
        yield Violation(check="hold", user_id=uid, row_id=hold_id, message=f"hold {hold_id} {problem}")


def _idempotency(s: Session) -> Iterator[Violation]:
    rows = s.execute(
        select(T.user_id, T.idempotency_key, func.count())
        .where(T.idempotency_key.is_not(None))
        .group_by(T.user_id, T.idempotency_key)
        .having(func.count() > 1)
        .limit(MAX_PER_CHECK)
    )
    for uid, key, n in rows:
        yield Violation(check="idempotency", user_id=uid, message=f"idempotency key {key!r} was charged {n} times")


def _overdrafts(s: Session) -> Iterator[Violation]:
    """A debit never lands below zero unless it is delivered service flagged as an overdraft."""
    rows = s.execute(
        select(T.id, T.user_id, T.transaction_type, T.amount, T.balance_after, T.meta)
        .where(T.balance_after < 0, T.amount < 0)
        .order_by(T.id)
    )
    shown = 0
    for tx_id, uid, kind, amount, after, meta in rows:
        flagged = kind in OVERDRAFT_KINDS and isinstance(meta, dict) and meta.get("overdraft") is True
        if not flagged and shown < MAX_PER_CHECK:
            shown += 1
            yield Violation(
                check="overdraft",
                user_id=uid,
                row_id=tx_id,
                message=f"{kind} transaction {tx_id} of {amount:+,} left the balance at {after:,} without an "
                "overdraft flag",
            )


def _refunds(s: Session) -> Iterator[Violation]:
    """A refund gives back at most what its debit took, to the same user, once."""
    refunds = list(s.execute(select(T.id, T.user_id, T.amount, T.meta).where(T.transaction_type == "refund")))
    targets: dict[int, list[int]] = {}
    for tx_id, _uid, _amount, meta in refunds:
        ref = meta.get("refund_of") if isinstance(meta, dict) else None
        if isinstance(ref, int):
            targets.setdefault(ref, []).append(tx_id)
    originals = {
        r[0]: r
        for chunk in _chunks(list(targets), 500)
        for r in s.execute(select(T.id, T.user_id, T.amount).where(T.id.in_(chunk)))
    }
    amounts = {tx_id: amount for tx_id, _u, amount, _m in refunds}
    for tx_id, uid, amount, meta in refunds:
        ref = meta.get("refund_of") if isinstance(meta, dict) else None
        orig = originals.get(ref) if isinstance(ref, int) else None
        if orig is None:
            yield Violation(check="refund", user_id=uid, row_id=tx_id, message=f"refund {tx_id} names no debit")
        elif orig[1] != uid or orig[2] >= 0:
            yield Violation(
                check="refund",
                user_id=uid,
                row_id=tx_id,
                message=f"refund {tx_id} refunds {ref}, not a debit of theirs",
            )
        elif sum(amounts[r] for r in targets[ref]) > -orig[2]:
            yield Violation(
                check="refund",
                user_id=uid,
                row_id=tx_id,
                message=f"transaction {ref} debited {-orig[2]:,} but was refunded {amount:,} by {tx_id} and others",
            )


def _remainders(s: Session) -> Iterator[Violation]:
    """Accrual rounding: an account's remainder is what its accrual calls debited minus what they consumed, and lies in
    [0, 1 credit) (core/billing/accrual.py)."""
    paid_ahead = U.cost_credits * NANO_PER_CREDIT - U.accrued_nano
    sums = (
        select(U.user_id, func.sum(paid_ahead).label("paid_ahead"))
        .where(U.accrued_nano.is_not(None))
        .group_by(U.user_id)
        .subquery()
    )
    rows = s.execute(
        select(User.id, User.email, User.credit_remainder_nano, sums.c.paid_ahead)
        .outerjoin(sums, sums.c.user_id == User.id)
        .order_by(User.id)
    )
    for uid, email, cached, derived in rows:
        derived = int(derived or 0)
        if cached != derived:
            yield Violation(
                check="remainder",
                user_id=uid,
                message=f"{email}: cached accrual remainder {cached:,} nano-credits but its accrual calls leave "
                f"{derived:,}",
            )
        elif not 0 <= cached < NANO_PER_CREDIT:
            yield Violation(
                check="remainder",
                user_id=uid,
                message=f"{email}: accrual remainder {cached:,} nano-credits is outside [0, 1 credit)",
            )


def _accrual_steps(s: Session) -> Iterator[Violation]:
    """After every accrual call the remainder stays in [0, 1 credit): no call consumed more than was paid (a free call)
    and none debited a whole credit it did not need; a paid call always consumes something."""
    after = (
        func.sum(U.cost_credits * NANO_PER_CREDIT - U.accrued_nano)
        .over(partition_by=U.user_id, order_by=U.id)
        .label("after")
    )
    steps = (
        select(U.id, U.user_id, U.accrued_nano, U.cost_credits, U.base_cost_usd, after)
        .where(U.accrued_nano.is_not(None))
        .subquery()
    )
    rows = s.execute(
        select(steps)
        .where(
            or_(
                steps.c.after < 0,
                steps.c.after >= NANO_PER_CREDIT,
                and_(steps.c.accrued_nano <= 0, steps.c.base_cost_usd > 0),
            )
        )
        .order_by(steps.c.id)
        .limit(MAX_PER_CHECK)
    )
    for usage_id, uid, accrued, credits, _cost, left in rows:
        if left < 0:
            problem = f"consumed {accrued:,} nano-credits but {-left:,} of them were never paid for (a free call)"
        elif left >= NANO_PER_CREDIT:
            problem = f"debited {credits_text(credits)} and left {left:,} nano-credits unused, a whole credit or more"
        else:
            problem = "has a cost but consumed no credits"
        yield Violation(check="accrual", user_id=uid, row_id=usage_id, message=f"usage row {usage_id} {problem}")


def _budget_counters(s: Session) -> Iterator[Violation]:
    """Each open budget period's counter (kept by the ledger's triggers) equals the ledger's spend in it, counted
    by the same rules (core/billing/budget_sql.py). Closed periods keep the spend of the members a team had then."""
    sql = BudgetSQL(s.get_bind().dialect.name)
    conn = s.connection()
    rows = s.execute(
        select(BudgetPeriod, Budget)
        .join(Budget, Budget.id == BudgetPeriod.budget_id)
        .where(BudgetPeriod.period_end > utcnow(), Budget.removed_at.is_(None))
    )
    for period, budget in rows:
        scope_id = {"user": budget.user_id, "team": budget.team_id, "api_key": budget.api_key_id}[budget.scope]
        counted = sql.spent(conn, budget.scope, scope_id, Window(period.period_start, period.period_end))
        if counted != period.spent:
            yield Violation(
                check="budget_counter",
                user_id=budget.user_id,
                row_id=period.id,
                message=f"budget {budget.id} ({budget.name}) counts {credits_text(period.spent)} spent from "
                f"{period.period_start:%Y-%m-%d %H:%M} UTC but the ledger says {counted:,}",
            )


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
