"""The credits ledger: grants, holds, settlement, charges and refunds, exact under concurrency.

Every write is one database transaction that first takes the account's lock (SQLite: BEGIN IMMEDIATE, which
serialises writers; PostgreSQL: SELECT ... FOR NO KEY UPDATE on the user row), then reads the held credits and
the idempotency key under that lock, then appends the ledger row and moves the cached balance. So two concurrent calls
can never both spend the same credits, a retried key returns the first transaction, and a refused call writes nothing.

Overage (a settle whose actual cost exceeds its hold) is the one exception to "no overdraft": the service was
delivered and the provider has billed us, so the actual cost is posted even if it takes the balance below zero; the
debit's metadata says `overage` (and `overdraft` when the balance went negative), and every new reserve or charge is
refused until a top-up brings the available balance back above the amount. Endpoint uptime posted with
`allow_overdraft=True` follows the same rule for the same reason. Everything else is refused when it would take the
available balance below zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeAlias, TypeVar

from sqlalchemy import Connection, Engine, Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core import event_loop
from core.billing import inputs, replays
from core.billing.accounts_sql import Account, AccountsSQL, new_hold
from core.billing.accrual import accrue
from core.billing.budget_sql import BudgetSQL, MissingBudgetPeriods, enforce
from core.billing.errors import HoldStateError, InsufficientCreditsError, InvalidAmountError
from core.billing.key_limits import check_key_month
from core.billing.ledger_sql import (
    HELD_ONLY,
    HOLD_BY_ID,
    READ_BY_EMAIL,
    READ_BY_ID,
    TX_BY_ID,
    LedgerWriter,
    holds,
    json_safe,
    ledger,
    read_transaction,
    to_transaction,
    usage_log,
    write_audit,
)
from core.billing.spool import (
    DrainReport,
    Kind,
    SettlementSpool,
    SpoolDrainer,
    SpooledWrite,
    SpoolError,
    default_spool_dir,
)
from core.billing.types import Balance, Hold, Settlement, Transaction, UsageRecord
from core.billing.usage_rows import check_model, check_record, insert_usage, unknown_model, usage_metadata, usage_values
from core.config import DATA_DIR, Settings, load_settings
from core.db.models import utcnow
from core.errors import ConfigError, CoreError, DatabaseError, InvalidInputError, NotFoundError
from core.money import apply_markup, credits_text, usd_to_credits
from core.users import UserView, no_such_user, user_key

UserRef: TypeAlias = "int | str | UserView"
Actor: TypeAlias = "str | UserView | None"


class UsageQuestions(Protocol):
    """Who answers the specification's usage questions (`get_total_usage`, `get_usage_by_provider`): the analytics
    engine, plugged in by `core.services`. Billing ends at the ledger and does not import analytics."""

    def total_usage(self, user_id: int, days: int, *, include_sandbox: bool) -> Any: ...

    def usage_by_provider(self, user_id: int, days: int, *, include_sandbox: bool) -> list[Any]: ...


GRANT_KINDS = ("grant", "topup", "adjustment")
TRANSACTION_TYPES = ("grant", "topup", "usage", "endpoint_uptime", "refund", "adjustment")
MAX_PAGE = 1000  # transactions one page of a history may hold
CHARGE_KINDS = ("usage", "endpoint_uptime")
REFUNDABLE_KINDS = ("usage", "endpoint_uptime", "adjustment")
SYSTEM_ACTOR = "system"

T = TypeVar("T")
log = logging.getLogger(__name__)
CHECKS_KEPT_SECONDS = 30.0
# Tries of a settlement that a passing database fault aborted (see `settle`), waiting SETTLE_RETRY_SECONDS after the
# first, twice that after the second, ..., at most SETTLE_RETRY_MAX_SECONDS: about 27 s in all, so a delivered call
# is still billed across a PostgreSQL restart or failover, not only a deadlock the server broke.
SETTLE_ATTEMPTS = 18
SETTLE_RETRY_SECONDS = 0.05
SETTLE_RETRY_MAX_SECONDS = 2.0
# With a settlement spool to fall back on, fewer tries (about 1.5 s in all): past a passing fault the settlement waits
# on disk instead, so a streamed caller is not kept 27 s from its last event during an outage.
SPOOLED_SETTLE_ATTEMPTS = 6
MAX_CHECKS_KEPT = 10_000


def _filtered(stmt: Select[Any], kinds: tuple[str, ...], since: datetime | None, until: datetime | None) -> Select[Any]:
    if kinds:
        stmt = stmt.where(ledger.c.transaction_type.in_(kinds))
    if since is not None:
        stmt = stmt.where(ledger.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(ledger.c.created_at < until)
    return stmt


class UnknownTransactionError(NotFoundError):
    pass


class SpoolMismatchError(HoldStateError):
    """A spooled write names a hold this database does not have as it says (another database's file)."""


def _engine_of(session_factory: sessionmaker[Session]) -> Engine:
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise ConfigError(
            "BillingService needs a session factory bound to an engine (the services container builds it)."
        )
    return bind


def _is_key_race(exc: IntegrityError) -> bool:
    """A unique (user, idempotency key) violation, on PostgreSQL (constraint name) or SQLite (column names)."""
    msg = str(exc.orig)
    return any(
        name in msg
        for name in (
            "uq_credit_transactions_user_key",
            "uq_credit_holds_user_key",
            "credit_transactions.idempotency_key",
            "credit_holds.idempotency_key",
        )
    )


def _actor_name(actor: Actor) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, UserView):
        return actor.email
    name = inputs.text(actor, "The actor", limit=320)
    return name or SYSTEM_ACTOR


def _free(record: UsageRecord) -> bool:
    """Sandbox, failed and zero-cost calls (dedicated endpoints are billed by uptime) are logged but not debited."""
    return record.sandbox or record.status != "success" or record.model.cost_unit == "uptime"


def _base_credits(base_cost: object) -> int:
    """The credits form's `base_cost`: whole base credits, refusing anything that could be read as dollars."""
    if isinstance(base_cost, bool) or not isinstance(base_cost, int):
        raise InvalidAmountError(
            f"calculate_cost_with_markup takes base_cost in whole credits, as the specification does (base_cost=1 "
            f"is 1 credit), got {base_cost!r}. For a cost in USD call calculate_cost_with_markup_from_usd(user, "
            "base_cost_usd); to convert USD yourself use usd_to_credits, which rounds up ($0.003 is 1 credit)."
        )
    return inputs.credits(base_cost, "The base cost in credits", allow_zero=True)


class BillingService:
    """The ledger's one entry point for pages, the command line, providers and endpoint metering."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings | None = None,
        *,
        usage: UsageQuestions | None = None,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.engine = _engine_of(session_factory)
        self._writer = LedgerWriter(self.engine)
        self._sql = AccountsSQL(self.engine.dialect.name)
        # PostgreSQL: statements that are a whole transaction alone (a hold: _reserve_at_once), with no BEGIN and
        # COMMIT round trips around them
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._driver_integrity_error: type[Exception] = self.engine.dialect.loaded_dbapi.IntegrityError
        self._driver_operational_error: type[Exception] = self.engine.dialect.loaded_dbapi.OperationalError
        # (user, API key) pairs whose last hold had a budget or a key limit to check, and when: their next holds go
        # straight to the general path for CHECKS_KEPT_SECONDS (which checks everything, so a budget removed
        # meanwhile only costs that path; a budget added is always seen, since pairs without one are not kept)
        self._checks_apply: dict[tuple[int, int | None], float] = {}
        self._budget_sql = BudgetSQL(self.engine.dialect.name)
        self.settings = settings if settings is not None else load_settings()
        self.credit_usd = self.settings.credit_usd
        self._usage = usage
        # told after every write transaction commits (core.services: the analytics copy, which then syncs before its
        # next answer, so spend figures count the charge a caller has just been shown)
        self._on_write = on_write
        # where settlements wait while the database is unavailable (core/billing/spool.py); None: nowhere
        directory = self.settings.settle_spool_dir or default_spool_dir(
            self.settings.resolved_database_url(), self.settings.sqlite_file(), DATA_DIR
        )
        self.spool = SettlementSpool(directory) if directory is not None else None
        self._drainer = SpoolDrainer(self.drain_spool)

    def close(self) -> None:
        """Give back the connection the ledger's writes keep (SQLite); a later write takes one again."""
        self._writer.close()

    # ---- plumbing ------------------------------------------------------------------------------------------------
    def _write(self, op: Callable[[Connection, datetime], T], *, retry_on_key_race: bool = True) -> T:
        """Run `op` in one write transaction. Under the account lock a duplicate key is found by the read; should
        one slip through anyway (a caller not taking the lock), the unique index refuses it and a retry reads it."""
        attempts = 3 if retry_on_key_race else 1
        for attempt in range(attempts):
            try:
                done = self._writer.run(lambda conn: op(conn, utcnow()))
            except IntegrityError as exc:
                if attempt == attempts - 1 or not _is_key_race(exc):
                    raise
                continue
            if self._on_write is not None:
                self._on_write()
            return done
        raise AssertionError("unreachable")  # pragma: no cover

    def _lock(self, conn: Connection, user: UserRef, key: str | None, now: datetime) -> Account:
        """The account under the write lock, with its held credits and the transaction already under `key`."""
        by, params = user_key(user)
        acct = self._sql.lock_account(conn, by, params, key, now)
        if acct is None:
            raise no_such_user(user)
        return acct

    @staticmethod
    def _read(conn: Connection, user: UserRef) -> Account:
        """The account as last committed, without a lock (held credits not read)."""
        by, params = user_key(user)
        row = conn.execute(READ_BY_ID if by == "id" else READ_BY_EMAIL, params).first()
        if row is None:
            raise no_such_user(user)
        return Account(row[0], row[1], int(row[2]), Decimal(row[3]), 0, None)

    def _post(self, conn: Connection, **fields: Any) -> Transaction:
        return self._sql.post(conn, **fields)

    @staticmethod
    def _tx(conn: Connection, tx_id: int) -> Transaction:
        return to_transaction(conn.execute(TX_BY_ID, {"tx_id": tx_id}).one())

    # ---- balances ------------------------------------------------------------------------------------------------
    def balance(self, user: UserRef) -> Balance:
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user)
            held = int(conn.execute(HELD_ONLY, {"uid": acct.id, "now": utcnow()}).scalar_one())
        return Balance(total=acct.balance, held=held, available=acct.balance - held)

    def calculate_cost_with_markup(
        self, user_id: UserRef, base_cost: int, developer_markup: Decimal | str | int | None = None
    ) -> int:
        """The specification's call: final credits for `base_cost` **base credits** (a whole number, the provider's
        USD cost already rounded up to credits), ceil(base x (100 + markup) / 100), at the user's markup unless
        `developer_markup` is given. `base_cost=1` at 100% is 2 credits, as the specification writes.

        Only an `int` is accepted: a Decimal or a string could be dollars or credits, and reading one as the other
        is off by a factor of 25, so it is refused with a sentence naming `calculate_cost_with_markup_from_usd`."""
        base = _base_credits(base_cost)
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user_id)
        pct = acct.markup if developer_markup is None else inputs.markup(developer_markup)
        return apply_markup(base, pct)

    def calculate_cost_with_markup_from_usd(
        self, user_id: UserRef, base_cost_usd: Decimal | str | int, developer_markup: Decimal | str | int | None = None
    ) -> int:
        """Final credits for a provider cost in USD: ceil(ceil(usd / credit price) x (100 + markup) / 100)."""
        cost = inputs.usd(base_cost_usd, "The base cost in USD", allow_zero=True)
        return self.calculate_cost_with_markup(user_id, usd_to_credits(cost, self.credit_usd), developer_markup)

    # ---- grants, top-ups, adjustments ----------------------------------------------------------------------------
    def grant(
        self,
        user: UserRef,
        credits: int,
        kind: str = "grant",
        note: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor = None,
    ) -> Transaction:
        """Add credits (grant, top-up) or correct a balance (adjustment, which may be negative but never takes the
        available balance below zero). Audited with the actor."""
        if kind not in GRANT_KINDS:
            raise InvalidInputError(f"Unknown kind {kind!r}; choose one of: {', '.join(GRANT_KINDS)}.")
        if kind != "adjustment" and isinstance(credits, int) and not isinstance(credits, bool) and credits < 0:
            raise InvalidAmountError(
                f"A {kind} must add credits, got {credits:,}; use kind 'adjustment' to take credits away."
            )
        amount = inputs.credits(credits, "The amount", allow_negative=kind == "adjustment")
        note = inputs.text(note, "The note", required=False)
        key = inputs.idempotency_key(idempotency_key, required=False)
        who = _actor_name(actor)

        def op(conn: Connection, now: datetime) -> Transaction:
            acct = self._lock(conn, user, key, now)
            if acct.existing_tx_id is not None:
                return self._tx(conn, acct.existing_tx_id)
            if amount < 0 and acct.available + amount < 0:
                raise InsufficientCreditsError(-amount, acct.available, what="this adjustment")
            tx = self._post(
                conn,
                user_id=acct.id,
                amount=amount,
                balance_after=acct.balance + amount,
                kind=kind,
                description=note or kind,
                key=key,
                now=now,
                metadata={"actor": who},
            )
            write_audit(
                conn,
                actor=who,
                action=f"credits.{kind}",
                target=acct.email,
                details={"credits": amount, "transaction_id": tx.id, "note": note, "balance_after": tx.balance_after},
            )
            return tx

        return self._write(op)

    # ---- holds ---------------------------------------------------------------------------------------------------
    def reserve(
        self,
        user: UserRef,
        credits: int,
        idempotency_key: str,
        ttl_seconds: int | None = None,
        *,
        api_key_id: int | None = None,
    ) -> Hold:
        """Hold `credits` of the available balance for a call about to be made. The same key returns the same hold,
        as first reserved (its status as stored: a hold past its expiry reads "held" until `expire_holds` runs, but
        it no longer counts as held and can no longer be settled), with `reused` set.

        With `api_key_id` (a call through the gateway) the hold is the key's too: a key with a monthly credit limit
        refuses a hold that would take it past the limit (`KeyLimitError`, key_limits.py), in the same transaction.

        The hold counts against every budget that covers the call (the user's, their team's and, with `api_key_id`,
        the API key's), in the same transaction: a hard budget with too little left for it (its spend this period
        plus the holds in flight) refuses it with a `BudgetExceededError` that names the budget, what is left and
        when it resets (budget_sql.py).

        A hold of 0 credits is allowed: it is how a call that costs nothing up front (a sandbox or dedicated-endpoint
        request) still gets its usage row written by `settle`.
        """
        amount = inputs.credits(credits, "A hold", allow_zero=True)
        key = inputs.idempotency_key(idempotency_key, required=True)
        ttl = self.settings.hold_ttl_seconds if ttl_seconds is None else ttl_seconds
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise InvalidInputError(f"A hold's time to live must be a positive number of seconds, got {ttl!r}.")
        if api_key_id is not None and (isinstance(api_key_id, bool) or not isinstance(api_key_id, int)):
            raise InvalidInputError(f"api_key_id must be an API key's id (a whole number), got {api_key_id!r}.")

        by, params = user_key(user)
        tried_alone = False  # SQLite: the one statement was tried and wrote nothing
        if by == "id":
            if self._sql.sqlite:
                tried_alone = not self._checks_kept((params["uid"], api_key_id))
                hold = self._reserve_alone(params["uid"], amount, key, ttl, api_key_id) if tried_alone else None
            else:
                hold = self._reserve_at_once(params["uid"], amount, key, ttl, api_key_id)
            if hold is not None:
                return hold

        def op(conn: Connection, now: datetime) -> Hold:
            found = self._sql.reserve_state(conn, by, params, key, now, api_key_id)
            if found is None:
                raise no_such_user(user)
            acct, existing, budgeted, locked = found
            if existing is not None:
                return existing
            if not self._sql.sqlite:  # SQLite: the hold's insert trigger does it (migration 0014)
                self._sql.expire_user_holds(conn, acct.id, now)  # stored statuses stay true (they no longer count)
            # A hold of nothing (the free sandbox, a dedicated endpoint's request) passes whatever the balance, so an
            # overdrawn user can still try things for free; any credit at all needs that much available.
            if amount > 0 and amount > acct.available:
                raise InsufficientCreditsError(amount, acct.available)
            if budgeted:
                states = self._budget_sql.states(conn, acct.id, api_key_id, now, locked=locked)
                enforce(states, amount, self.settings.tz, now)
            if api_key_id is not None:
                check_key_month(conn, acct.id, api_key_id, amount, now, self.settings.tz)
            expires = now + timedelta(seconds=ttl)
            hold_id = self._sql.insert_hold(conn, acct.id, amount, key, now, expires, api_key_id)
            return new_hold(
                hold_id, acct.id, amount, key, now, expires, api_key_id, budgeted=budgeted, markup=acct.markup
            )

        for attempt in range(4):
            try:
                hold = self._write(op)
            except MissingBudgetPeriods as missing:  # a budget's first call this period: make its counter, retry
                if attempt == 3:
                    raise
                self.ensure_budget_periods(missing.budget_ids)
                continue
            if tried_alone and not hold.reused:
                # the one statement wrote nothing, yet the hold was made: a budget or the key's monthly limit covers
                # the call, so the pair's next holds go straight to this path for a while (as on PostgreSQL)
                self._keep_checks((hold.user_id, api_key_id))
            return hold
        raise AssertionError("unreachable")  # pragma: no cover

    def _keep_checks(self, checked: tuple[int | None, int | None]) -> None:
        if len(self._checks_apply) >= MAX_CHECKS_KEPT:
            self._checks_apply.clear()
        self._checks_apply[checked] = time.monotonic()

    def _checks_kept(self, checked: tuple[int | None, int | None]) -> bool:
        seen = self._checks_apply.get(checked)
        return seen is not None and time.monotonic() - seen < CHECKS_KEPT_SECONDS

    def _reserve_alone(self, user_id: int, amount: int, key: str, ttl: int, api_key_id: int | None) -> Hold | None:
        """SQLite: the hold in one statement, a transaction of its own (AccountsSQL.reserve_alone), for a call no
        budget covers through a key without a monthly limit. None when it wrote nothing: `reserve` takes its general
        path, which says why (or holds: a budget or a key limit to check)."""

        def op(conn: Connection) -> Hold | None:
            now = utcnow()
            return self._sql.reserve_alone(conn, user_id, key, amount, now, now + timedelta(seconds=ttl), api_key_id)

        hold = self._writer.run(op, one_statement=True)
        if hold is not None and self._on_write is not None:
            self._on_write()
        return hold

    def _reserve_at_once(self, user_id: int, amount: int, key: str, ttl: int, api_key_id: int | None) -> Hold | None:
        """PostgreSQL: the hold in one round trip (one statement in autocommit: ledger_reserve of migration 0013, the
        rules of `reserve` for a call no budget covers through a key without a monthly limit). None when a budget or
        the key's limit must be checked: nothing was written, and `reserve` takes its general path."""
        checked = (user_id, api_key_id)
        if self._checks_kept(checked):
            return None  # a budget or the key's limit applied a moment ago: straight to the general path
        now = utcnow()
        try:
            with self._autocommit.connect() as conn:
                outcome, acct, hold = self._sql.reserve_at_once(
                    conn, user_id, key, amount, now, now + timedelta(seconds=ttl), api_key_id
                )
        except self._driver_integrity_error as exc:  # the key taken by a writer that did not lock the account
            if any(name in str(exc) for name in ("uq_credit_holds_user_key", "credit_holds.idempotency_key")):
                return None  # the general path reads it
            raise
        if outcome == "checks":
            self._keep_checks(checked)
            return None
        self._checks_apply.pop(checked, None)
        if outcome == "no_user":
            raise no_such_user(user_id)
        if outcome == "insufficient":
            assert acct is not None
            raise InsufficientCreditsError(amount, acct.available)
        if outcome == "held" and self._on_write is not None:
            self._on_write()
        return hold

    def ensure_budget_periods(self, budget_ids: list[int]) -> int:
        """Make the counters of these budgets' current (and next) period, if missing; returns how many were made."""
        tz = self.settings.tz
        return self._write(lambda conn, now: self._budget_sql.ensure_periods(conn, budget_ids, now, tz))

    def settle(self, hold: Hold | int, record: UsageRecord, *, attempts: int | None = None) -> Settlement:
        """Write the call's usage row and its debit in ONE database transaction and close the hold.

        Sandbox, failed and zero-cost calls (dedicated endpoints are billed by uptime) write the usage row with 0
        credits and no debit. A cost above the hold is posted anyway and flagged as overage (see the module doc).
        A hold that expired before its call ended is settled all the same, flagged `hold_expired`: the call was
        delivered, so its output is billed, never lost (overdraft rules as for overage).
        Under `ROUNDING_POLICY=accrual` the call debits only the whole credits its exact cost runs past the account's
        remainder, and the remainder moves in the same transaction (core/billing/accrual.py).
        `attempts`: how many tries a passing database fault gets (default SETTLE_ATTEMPTS, about 27 s).
        """
        hold_id = self._hold_id(hold)
        check_record(record)
        base_cost = inputs.usd(record.base_cost_usd, "The usage's base cost", allow_zero=True)
        # A delivered call's charge must not be lost to a passing database fault: a deadlock the server broke, a
        # serialization failure, a busy SQLite, a connection dropped (the pool reconnects). Each aborted transaction
        # wrote nothing, so the settlement is tried again; a try that did commit before its answer was lost leaves
        # the hold settled, and the next try refuses it (charged once).
        tries = attempts or SETTLE_ATTEMPTS
        faulted = False
        for attempt in range(1, tries + 1):
            try:
                return self._settle(hold, hold_id, record, base_cost)
            except HoldStateError:
                # after a fault, "already settled" is our own try whose COMMIT went through but whose answer was
                # lost: the call is charged, so its caller gets that settlement (and its output), not an error
                done = self._committed_settlement(hold_id, base_cost) if faulted else None
                if done is None:
                    raise
                return done
            except (OperationalError, self._driver_operational_error) as exc:
                faulted = True
                if attempt == tries:
                    raise
                log.warning("settling hold %s failed (%s); trying again", hold_id, type(exc).__name__)
                event_loop.sleep(min(SETTLE_RETRY_SECONDS * 2 ** (attempt - 1), SETTLE_RETRY_MAX_SECONDS))
        raise AssertionError("unreachable")  # pragma: no cover

    def _committed_settlement(self, hold_id: int, base_cost: Decimal) -> Settlement | None:
        """The settlement a try of `settle` committed though its answer was lost: read back from the settled hold,
        its usage row and its debit. None when the hold is not settled that way."""
        with self.engine.connect() as conn:
            hold = conn.execute(HOLD_BY_ID, {"hold_id": hold_id}).first()
            if hold is None or hold.status != "settled":
                return None
            row = conn.execute(
                select(usage_log.c.id, usage_log.c.markup_pct, usage_log.c.cost_credits, usage_log.c.transaction_id)
                .where(
                    usage_log.c.user_id == hold.user_id,
                    usage_log.c.idempotency_key == hold.idempotency_key,
                    usage_log.c.status == "success",
                )
                .order_by(usage_log.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            tx_id = hold.transaction_id or row.transaction_id
            tx_row = conn.execute(TX_BY_ID, {"tx_id": tx_id}).first() if tx_id is not None else None
            tx = to_transaction(tx_row) if tx_row is not None else None
            balance = (
                tx.balance_after
                if tx is not None
                else int(conn.execute(READ_BY_ID, {"uid": hold.user_id}).one().credit_balance)
            )
        log.warning("hold %s: a try of its settlement had committed before its answer was lost; charged once", hold_id)
        return self._settlement(
            row.id,
            tx,
            base_cost,
            usd_to_credits(base_cost, self.credit_usd),
            Decimal(row.markup_pct),
            int(row.cost_credits),
            balance,
            bool(tx is not None and (tx.metadata or {}).get("overage")),
        )

    def _settle(self, hold: Hold | int, hold_id: int, record: UsageRecord, base_cost: Decimal) -> Settlement:
        at_once = not self._sql.sqlite and self.settings.rounding_policy != "accrual"
        if at_once and isinstance(hold, Hold) and hold.markup_pct is not None:
            done = self._settle_at_once(hold, record, base_cost)
            if done is not None:
                return done

        def op(conn: Connection, now: datetime) -> Settlement:
            # One read (SQLite) or one round trip (PostgreSQL): the hold, its account under the lock, the account's
            # held credits and transaction under the hold's key, and whether the model is in the catalog.
            state = self._sql.settle_state(conn, hold_id, record.model.id, now)
            if state is None:
                raise HoldStateError(f"No hold {hold_id}; reserve credits before making the call.")
            self._check_not_closed(hold_id, state.status, doing="settle")
            expired = state.status == "expired" or not state.open
            if not state.model_known:
                raise unknown_model(record)
            acct = state.account
            if acct.existing_tx_id is not None:
                raise HoldStateError(
                    f"Hold {hold_id}'s key {state.idempotency_key!r} already has transaction {acct.existing_tx_id}; "
                    "use a fresh idempotency key per call."
                )
            base_credits = usd_to_credits(base_cost, self.credit_usd)
            full = apply_markup(base_credits, acct.markup)
            free = _free(record)
            charged = 0 if free else full
            accrual = None
            if not free and self.settings.rounding_policy == "accrual":
                accrual = accrue(base_cost, acct.markup, self.credit_usd, self._sql.remainder(conn, acct.id))
                charged = accrual.credits
            overage = charged > state.credits
            balance_after = acct.balance - charged
            row, tx_meta = self._settled_rows(
                acct,
                record,
                hold_id=hold_id,
                held=state.credits,
                key=state.idempotency_key,
                base_cost=base_cost,
                charged=charged,
                now=now,
                expired=expired,
                accrued_nano=accrual.accrued_nano if accrual else None,
            )
            if balance_after < 0:
                tx_meta["overdraft"] = True
            tx: Transaction | None = None
            if not self._sql.sqlite and accrual is None:  # PostgreSQL: every write in one round trip
                usage_id, tx, closed = self._sql.settle_write(
                    conn,
                    row,
                    hold_id=hold_id,
                    amount=charged,
                    balance_after=balance_after,
                    description=f"usage {record.model.key}",
                    key=state.idempotency_key,
                    now=now,
                    tx_meta=tx_meta,
                )
                if not closed:
                    raise HoldStateError(f"Hold {hold_id} changed while it was being settled; nothing was written.")
                return self._settlement(
                    usage_id, tx, base_cost, base_credits, acct.markup, charged, balance_after, overage
                )
            usage_id = self._sql.insert_usage(conn, row)
            if accrual is not None:
                self._sql.set_remainder(conn, acct.id, accrual.remainder_nano)
            if charged:
                tx_meta = {"usage_id": usage_id, **tx_meta}
                tx = self._post(
                    conn,
                    user_id=acct.id,
                    amount=-charged,
                    balance_after=balance_after,
                    kind="usage",
                    description=f"usage {record.model.key}",
                    key=state.idempotency_key,
                    now=now,
                    metadata=tx_meta,
                )
            if not self._sql.close_settled(conn, hold_id, tx.id if tx else None, usage_id):
                raise HoldStateError(f"Hold {hold_id} changed while it was being settled; nothing was written.")
            return self._settlement(usage_id, tx, base_cost, base_credits, acct.markup, charged, balance_after, overage)

        return self._write(op, retry_on_key_race=False)

    def _settle_at_once(self, hold: Hold, record: UsageRecord, base_cost: Decimal) -> Settlement | None:
        """PostgreSQL: the settlement of an open hold in one autocommit statement (AccountsSQL.settle_at_once), the
        account's row locked only inside it. None when nothing was written (the hold is not open as it was, the
        markup changed, its key already has a debit, the model is unknown): `settle` then takes its general path,
        which settles an expired hold or refuses with the reason. The charge follows the general path's rules for a
        hold that is open (no overage flag for expiry, no accrual: that policy always takes the general path)."""
        markup = hold.markup_pct
        assert markup is not None
        now = utcnow()
        base_credits = usd_to_credits(base_cost, self.credit_usd)
        charged = 0 if _free(record) else apply_markup(base_credits, markup)
        overage = charged > hold.credits
        acct = Account(hold.user_id, "", 0, markup, 0, None)
        row, tx_meta = self._settled_rows(
            acct,
            record,
            hold_id=hold.id,
            held=hold.credits,
            key=hold.idempotency_key,
            base_cost=base_cost,
            charged=charged,
            now=now,
        )
        try:
            with self._autocommit.connect() as conn:
                done = self._sql.settle_at_once(
                    conn,
                    row,
                    hold=hold,
                    charged=charged,
                    description=f"usage {record.model.key}",
                    now=now,
                    tx_meta=tx_meta,
                )
        except self._driver_integrity_error:  # nothing written: the general path says what is wrong
            return None
        if done is None:
            return None
        usage_id, tx, balance_after = done
        if self._on_write is not None:
            self._on_write()
        return self._settlement(usage_id, tx, base_cost, base_credits, markup, charged, balance_after, overage)

    def _settled_rows(
        self,
        acct: Account,
        record: UsageRecord,
        *,
        hold_id: int,
        held: int,
        key: str,
        base_cost: Decimal,
        charged: int,
        now: datetime,
        expired: bool = False,
        accrued_nano: int | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A settled call's usage row and its debit's metadata (but the usage id, first, and the overdraft flag,
        last), both flagging an overage past the `held` credits and a hold that had expired."""
        meta = usage_metadata(record)
        tx_meta: dict[str, Any] = {"hold_id": hold_id}
        if charged > held:
            meta["overage"] = tx_meta["overage"] = {"held": held, "charged": charged}
        if expired:
            meta["hold_expired"] = tx_meta["hold_expired"] = True
        row = usage_values(
            acct,
            record,
            base_cost=base_cost,
            credits=charged,
            credit_usd=self.credit_usd,
            key=key,
            status=record.status,
            now=now,
            meta=meta,
            accrued_nano=accrued_nano,
        )
        return row, tx_meta

    @staticmethod
    def _settlement(
        usage_id: int,
        tx: Transaction | None,
        base_cost: Decimal,
        base_credits: int,
        markup: Decimal,
        charged: int,
        balance_after: int,
        overage: bool,
    ) -> Settlement:
        return Settlement(
            usage_id=usage_id,
            transaction=tx,
            base_cost_usd=base_cost,
            base_credits=base_credits,
            markup_pct=markup,
            credits_charged=charged,
            balance_after=balance_after,
            overage=overage,
        )

    def release(self, hold: Hold | int, failure: UsageRecord | None = None) -> None:
        """Give the held credits back; with `failure`, also write the failed call's usage row (0 credits) in the
        same transaction. An expired hold may still be released (to record the failure); a settled or already
        released hold may not."""
        hold_id = self._hold_id(hold)
        if failure is not None:
            check_record(failure)
            failed_cost = inputs.usd(failure.base_cost_usd, "The failed call's base cost", allow_zero=True)

        def op(conn: Connection, now: datetime) -> None:
            row = conn.execute(HOLD_BY_ID, {"hold_id": hold_id}).first()
            if row is None:
                raise HoldStateError(f"No hold {hold_id}; reserve credits before making the call.")
            if row.status in ("settled", "released"):
                raise HoldStateError(
                    f"Hold {hold_id} is already {row.status}; it cannot be released again"
                    + (" (refund its transaction instead)." if row.status == "settled" else ".")
                )
            # The failure's usage row names the user, so its foreign key check waits for a settle holding the account:
            # the account is locked first, as every ledger write does, else that settle (waiting for this hold) and
            # this release wait for each other.
            acct = None if failure is None else self._sql.lock_only(conn, "id", {"uid": row.user_id})
            done = conn.execute(
                update(holds)
                .where(holds.c.id == hold_id, holds.c.status.in_(("held", "expired")))
                .values(status="released")
            )
            if done.rowcount != 1:
                raise HoldStateError(f"Hold {hold_id} changed while it was being released; nothing was written.")
            if failure is not None:
                assert acct is not None  # the hold's user: its foreign key keeps the row
                check_model(conn, failure)
                insert_usage(
                    conn,
                    acct,
                    failure,
                    base_cost=failed_cost,
                    credits=0,
                    credit_usd=self.credit_usd,
                    key=row.idempotency_key,
                    status="failed",
                    now=now,
                    meta=usage_metadata(failure),
                )

        self._write(op, retry_on_key_race=False)

    # ---- the settlement spool (core/billing/spool.py) -------------------------------------------------------------
    def settle_or_spool(
        self, hold: Hold, record: UsageRecord, *, reply: Callable[[], replays.PendingReply] | None = None
    ) -> Settlement | None:
        """`settle`; when the database stays unavailable past its retries, the settlement is kept in the spool
        instead and posted once the database is back: None. `reply` makes the call's answer, kept with it for a
        retry with the caller's idempotency key. Raises what `settle` raised when it cannot be kept."""
        try:
            return self.settle(hold, record, attempts=SPOOLED_SETTLE_ATTEMPTS if self.spool is not None else None)
        except Exception as exc:
            if not self._spooled(exc, "settle", hold, record, reply):
                raise
            return None

    def settle_waits_in_spool(self, hold: Hold) -> bool:
        """Whether this process's spool holds a settlement of `hold` not posted yet (its call was answered)."""
        try:
            return self.spool is not None and self.spool.settles(hold.id)
        except SpoolError:
            return False

    def release_or_spool(self, hold: Hold, failure: UsageRecord | None = None) -> bool:
        """`release`; False when the database was unavailable and the release (with the failed call's usage row)
        was kept in the spool instead, to be written once it is back."""
        try:
            self.release(hold, failure=failure)
        except Exception as exc:
            if not self._spooled(exc, "release", hold, failure):
                raise
            return False
        return True

    def is_unavailable(self, exc: BaseException) -> bool:
        """The database could not be reached or stayed busy: a write may succeed later, unchanged."""
        return isinstance(exc, OperationalError | self._driver_operational_error)

    def _spooled(
        self,
        exc: BaseException,
        kind: Kind,
        hold: Hold,
        record: UsageRecord | None,
        reply: Callable[[], replays.PendingReply] | None = None,
    ) -> bool:
        if self.spool is None or not self.is_unavailable(exc):
            return False
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:500]
        answer = None
        if reply is not None:
            try:
                answer = reply()
            except Exception:  # the charge matters more than the answer a retry would get
                log.exception("could not keep the answer of hold %s with its spooled settlement", hold.id)
        try:
            name = self.spool.put(kind, hold, record, reason, answer)
        except SpoolError:
            log.exception(
                "the database is unavailable and the %s of hold %s could not be spooled either", kind, hold.id
            )
            return False
        log.error(
            "the database is unavailable (%s): the %s of hold %s is kept in %s as %s and posted when it is back",
            type(exc).__name__,
            kind,
            hold.id,
            self.spool.pending,
            name,
        )
        self._drainer.wake()
        return True

    def drain_spool(self) -> DrainReport:
        """Post the writes waiting in the spool, oldest first (see core/billing/spool.py)."""
        if self.spool is None:
            return DrainReport()
        # refused for good: the ledger's own typed refusals (another database's hold, a model gone), not a database
        # error it could not get past (those wait for the next drain)
        return self.spool.drain(
            self._post_spooled,
            self.is_unavailable,
            lambda exc: isinstance(exc, CoreError) and not isinstance(exc, DatabaseError),
        )

    def resume_spool(self) -> None:
        """Start draining in the background when writes wait from an earlier run (a process that stopped first)."""
        try:
            waiting = self.spool is not None and self.spool.has_waiting()
        except SpoolError:
            log.exception("the settlement spool cannot be read; nothing from it is posted until it can")
            return
        if waiting:
            self._drainer.wake()

    def _post_spooled(self, write: SpooledWrite) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(HOLD_BY_ID, {"hold_id": write.hold_id}).first()
        if row is None or row.user_id != write.user_id or row.idempotency_key != write.idempotency_key:
            raise SpoolMismatchError(
                f"This database has no hold {write.hold_id} of user {write.user_id} under key "
                f"{write.idempotency_key!r}: the file belongs to another database; nothing was written."
            )
        if row.status in ("settled", "released"):
            if row.status == "settled" and write.reply is not None and write.record is not None:
                # written by a try whose answer was lost, or by another drainer: its answer may not be kept yet
                self._keep_spooled_reply(write, self._committed_settlement(write.hold_id, write.record.base_cost_usd))
            return "already_written"
        record = write.record
        if record is not None:
            late = {"spooled_at": write.spooled_at.isoformat(), "spooled_because": write.reason}
            record = replace(record, metadata={**record.metadata, **late})
        try:
            if write.kind == "settle":
                assert record is not None
                self._keep_spooled_reply(write, self.settle(write.hold_id, record))
            else:
                self.release(write.hold_id, failure=record)
        except HoldStateError:
            with self.engine.connect() as conn:
                now = conn.execute(HOLD_BY_ID, {"hold_id": write.hold_id}).first()
            if now is not None and now.status in ("settled", "released"):
                return "already_written"  # posted meanwhile by another process
            raise
        return "posted"

    def _keep_spooled_reply(self, write: SpooledWrite, settlement: Settlement | None) -> None:
        """Keep a posted settlement's answer, with what it charged, for a retry with its idempotency key. An
        unavailable database leaves the file waiting (the next drain finds the hold settled and keeps it then)."""
        if write.reply is None or settlement is None:
            return
        try:
            replays.store(
                self.engine,
                user_id=write.user_id,
                key=write.idempotency_key,
                fingerprint=write.reply.fingerprint,
                result=replays.settled_reply(write.reply.result, settlement, self.credit_usd),
                data=write.reply.data,
            )
        except Exception as exc:
            if self.is_unavailable(exc):
                raise
            log.exception("could not keep the answer of hold %s after posting its settlement", write.hold_id)

    def extend_hold(self, hold: Hold | int, *, until: datetime) -> bool:
        """Keep an open hold counting until `until` (naive UTC) while its call runs; False when it is no longer open
        (settled, released, or already expired: an expired hold is not revived, its credits may have been spent)."""
        hold_id = self._hold_id(hold)

        def op(conn: Connection, now: datetime) -> bool:
            done = conn.execute(
                update(holds)
                .where(holds.c.id == hold_id, holds.c.status == "held", holds.c.expires_at > now)
                .values(expires_at=max(until, now))
            )
            return done.rowcount == 1

        return self._write(op, retry_on_key_race=False)

    def expire_holds(self, now: datetime | None = None) -> int:
        """Mark every open hold past its expiry as expired; returns how many."""
        when = now or utcnow()

        def op(conn: Connection, _now: datetime) -> int:
            res = conn.execute(
                update(holds).where(holds.c.status == "held", holds.c.expires_at <= when).values(status="expired")
            )
            return int(res.rowcount or 0)

        return self._write(op, retry_on_key_race=False)

    # ---- direct charges and refunds -------------------------------------------------------------------------------
    def charge(
        self,
        user: UserRef,
        base_cost_usd: Decimal | str | int,
        *,
        markup_pct: Decimal | str | int | None = None,
        idempotency_key: str,
        description: str,
        metadata: dict[str, Any] | None = None,
        kind: str = "usage",
        allow_overdraft: bool = False,
    ) -> Transaction:
        """Debit a provider cost (USD, marked up to credits) in one step. The same key returns the first transaction
        and charges nothing. `allow_overdraft` is for service already delivered (endpoint uptime)."""
        cost = inputs.usd(base_cost_usd, "The base cost")
        pct_given = None if markup_pct is None else inputs.markup(markup_pct)
        key = inputs.idempotency_key(idempotency_key, required=True)
        desc = inputs.text(description, "A description")
        if kind not in CHARGE_KINDS:
            raise InvalidInputError(f"Unknown charge kind {kind!r}; choose one of: {', '.join(CHARGE_KINDS)}.")
        extra = json_safe(metadata) if metadata else None
        if extra is not None and not isinstance(extra, dict):
            raise InvalidInputError("Charge metadata must be a dict.")
        base_credits = usd_to_credits(cost, self.credit_usd)

        def checked_op(conn: Connection, now: datetime) -> Transaction:
            # PostgreSQL without overdraft: lock, then check and post in one statement (one round trip fewer).
            by, params = user_key(user)
            acct = self._sql.lock_only(conn, by, params)
            if acct is None:
                raise no_such_user(user)
            pct = acct.markup if pct_given is None else pct_given
            amount = apply_markup(base_credits, pct)
            meta: dict[str, Any] = {"base_cost_usd": str(cost), "base_credits": base_credits, "markup_pct": str(pct)}
            if extra:
                meta.update(extra)
            tx, held, existing = self._sql.charge_if_available(
                conn, acct, amount=amount, kind=kind, description=desc, key=key, now=now, metadata=meta
            )
            if tx is not None:
                return tx
            if existing is not None:
                return self._tx(conn, existing)
            raise InsufficientCreditsError(amount, acct.balance - held, what="this charge")

        def op(conn: Connection, now: datetime) -> Transaction:
            acct = self._lock(conn, user, key, now)
            if acct.existing_tx_id is not None:
                return self._tx(conn, acct.existing_tx_id)
            pct = acct.markup if pct_given is None else pct_given
            amount = apply_markup(base_credits, pct)
            available = acct.available
            if amount > available and not allow_overdraft:
                raise InsufficientCreditsError(amount, available, what="this charge")
            meta: dict[str, Any] = {"base_cost_usd": str(cost), "base_credits": base_credits, "markup_pct": str(pct)}
            if extra:
                meta.update(extra)
            if amount > available:
                meta["overdraft"] = True
            return self._post(
                conn,
                user_id=acct.id,
                amount=-amount,
                balance_after=acct.balance - amount,
                kind=kind,
                description=desc,
                key=key,
                now=now,
                metadata=meta,
            )

        return self._write(op if self._sql.sqlite or allow_overdraft else checked_op)

    def refund(
        self, transaction: Transaction | int, reason: str, actor: Actor = None, *, credits: int | None = None
    ) -> Transaction:
        """Give back a debit (all of it, or `credits` of it), once per transaction. Audited with the actor."""
        tx_id = transaction.id if isinstance(transaction, Transaction) else transaction
        if isinstance(tx_id, bool) or not isinstance(tx_id, int):
            raise InvalidInputError(f"{transaction!r} is not a transaction id.")
        why = inputs.text(reason, "A reason for the refund", limit=500)
        partial = None if credits is None else inputs.credits(credits, "The refund")
        who = _actor_name(actor)
        key = f"refund:{tx_id}"

        def op(conn: Connection, now: datetime) -> Transaction:
            found = conn.execute(TX_BY_ID, {"tx_id": tx_id}).first()
            if found is None:
                raise UnknownTransactionError(
                    f"No transaction {tx_id}; `python -m core credits history --user EMAIL` lists a user's."
                )
            orig = to_transaction(found)
            if orig.amount >= 0 or orig.transaction_type not in REFUNDABLE_KINDS:
                raise InvalidInputError(
                    f"Transaction {tx_id} is a {orig.transaction_type} of {credits_text(orig.amount, signed=True)}; "
                    "only debits "
                    f"({', '.join(REFUNDABLE_KINDS)}) can be refunded."
                )
            if _accrual_debits(conn, [tx_id]):
                # Under accrual rounding a debit's credit pays for parts of several calls and for the account's
                # prepaid fraction: refunded, that fraction would go on paying for calls nobody paid for.
                raise InvalidInputError(
                    f"Transaction {tx_id} was billed by accrual rounding: its credit paid for parts of several calls "
                    "and for the fraction the account keeps for its next ones, so it cannot be refunded on its own. "
                    "Give credits back with a grant instead (credits grant, or the Ledger page's Grant tab)."
                )
            acct = self._lock(conn, orig.user_id, key, now)
            if acct.existing_tx_id is not None:
                raise InvalidInputError(
                    f"Transaction {tx_id} was already refunded by transaction {acct.existing_tx_id}; "
                    "a debit is refunded once."
                )
            amount = -orig.amount if partial is None else partial
            if amount > -orig.amount:
                raise InvalidAmountError(
                    f"A refund of {credits_text(amount)} is more than the {-orig.amount:,} transaction {tx_id} debited."
                )
            tx = self._post(
                conn,
                user_id=acct.id,
                amount=amount,
                balance_after=acct.balance + amount,
                kind="refund",
                description=f"refund of transaction {tx_id}: {why}",
                key=key,
                now=now,
                metadata={"refund_of": tx_id, "reason": why, "actor": who},
            )
            write_audit(
                conn,
                actor=who,
                action="credits.refund",
                target=acct.email,
                details={"credits": amount, "transaction_id": tx.id, "refund_of": tx_id, "reason": why},
            )
            return tx

        return self._write(op, retry_on_key_race=False)

    # ---- history and usage ---------------------------------------------------------------------------------------
    def transactions(
        self,
        user: UserRef,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Transaction]:
        """A user's ledger rows, oldest first; with `limit`, the most recent `limit` of them."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise InvalidInputError(f"limit must be a positive whole number, got {limit!r}.")
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user)
            stmt = select(ledger).where(ledger.c.user_id == acct.id)
            if since is not None:
                stmt = stmt.where(ledger.c.created_at >= since)
            if until is not None:
                stmt = stmt.where(ledger.c.created_at < until)
            if limit is not None:
                rows = list(conn.execute(stmt.order_by(ledger.c.id.desc()).limit(limit)))[::-1]
            else:
                rows = list(conn.execute(stmt.order_by(ledger.c.id)))
        return [to_transaction(r) for r in rows]

    def transactions_page(
        self,
        user: UserRef,
        *,
        before: int | None = None,
        size: int = 200,
        kinds: tuple[str, ...] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[list[Transaction], bool]:
        """One page of a user's ledger rows, newest first, and whether older ones match: those with an id below
        `before` (the last id of the previous page: keyset paging, so page 100 costs what page 1 does, on the
        (user_id, id) index), of the given kinds and in [since, until)."""
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
            raise InvalidInputError(f"A page holds 1 to {MAX_PAGE} transactions, got {size!r}.")
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise InvalidInputError(f"before must be a transaction id (a whole number), got {before!r}.")
        unknown = [k for k in kinds if k not in TRANSACTION_TYPES]
        if unknown:
            raise InvalidInputError(
                f"Unknown transaction type {unknown[0]!r}; choose from: {', '.join(TRANSACTION_TYPES)}."
            )
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user)
            stmt = select(ledger).where(ledger.c.user_id == acct.id)
            if before is not None:
                stmt = stmt.where(ledger.c.id < before)
            stmt = _filtered(stmt, kinds, since, until)
            rows = list(conn.execute(stmt.order_by(ledger.c.id.desc()).limit(size + 1)))
        return [to_transaction(r) for r in rows[:size]], len(rows) > size

    def count_transactions(
        self,
        user: UserRef,
        *,
        kinds: tuple[str, ...] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many of a user's ledger rows match these filters (for "200 of 22,000 shown")."""
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user)
            stmt = select(func.count()).select_from(ledger).where(ledger.c.user_id == acct.id)
            return int(conn.execute(_filtered(stmt, kinds, since, until)).scalar_one())

    def refunded(self, user: UserRef, tx_ids: list[int]) -> set[int]:
        """Which of these debits already have their refund (a debit is refunded once, under the key refund:<id>)."""
        if not tx_ids:
            return set()
        keys = [f"refund:{i}" for i in tx_ids]
        with read_transaction(self.engine) as conn:
            acct = self._read(conn, user)
            found = conn.execute(
                select(ledger.c.idempotency_key).where(
                    ledger.c.user_id == acct.id, ledger.c.idempotency_key.in_(bindparam("keys", expanding=True))
                ),
                {"keys": keys},
            )
            return {int(k.split(":", 1)[1]) for (k,) in found}

    def billed_by_accrual(self, tx_ids: list[int]) -> set[int]:
        """Which of these debits were billed by accrual rounding (their usage row has an accrued amount): such a debit
        pays for parts of several calls and is not refunded on its own (see `refund`)."""
        if not tx_ids:
            return set()
        with read_transaction(self.engine) as conn:
            return _accrual_debits(conn, tx_ids)

    def get_total_usage(self, user_id: UserRef, days: int = 30, *, include_sandbox: bool = False) -> Any:
        """A user's usage over the last `days` days (calls, failed calls, credits with endpoint uptime and refunds,
        provider cost, what the user paid), answered by the analytics engine that `core.services` plugs in, synced
        to the last committed call first; sandbox calls are left out unless `include_sandbox`."""
        return self._usage_questions().total_usage(self._user_id(user_id), days, include_sandbox=include_sandbox)

    def get_usage_by_provider(self, user_id: UserRef, days: int = 30, *, include_sandbox: bool = False) -> list[Any]:
        """The same, per provider, most credits first."""
        uid = self._user_id(user_id)
        return self._usage_questions().usage_by_provider(uid, days, include_sandbox=include_sandbox)

    def _usage_questions(self) -> UsageQuestions:
        if self._usage is None:
            raise ConfigError(
                "Usage questions are answered by the analytics engine: use the BillingService of core.services "
                "(Services(...).billing), which has it plugged in."
            )
        return self._usage

    def _user_id(self, user: UserRef) -> int:
        """The user's id; an unknown user is refused here, before any analytics work."""
        with read_transaction(self.engine) as conn:
            return self._read(conn, user).id

    # ---- helpers -------------------------------------------------------------------------------------------------
    @staticmethod
    def _hold_id(hold: Hold | int) -> int:
        hold_id = hold.id if isinstance(hold, Hold) else hold
        if isinstance(hold_id, bool) or not isinstance(hold_id, int):
            raise InvalidInputError(f"{hold!r} is not a hold; pass the Hold that reserve() returned.")
        return hold_id

    @staticmethod
    def _check_not_closed(hold_id: int, status: str, *, doing: str) -> None:
        if status not in ("held", "expired"):
            raise HoldStateError(
                f"Hold {hold_id} is already {status}; it cannot {doing}. Each call reserves its own hold."
            )


def _accrual_debits(conn: Connection, tx_ids: list[int]) -> set[int]:
    """Which of these transactions are the debits of calls billed by accrual rounding (an accrued amount on the usage
    row they settled)."""
    found = conn.execute(
        select(usage_log.c.transaction_id).where(
            usage_log.c.transaction_id.in_(bindparam("ids", expanding=True)), usage_log.c.accrued_nano.is_not(None)
        ),
        {"ids": tx_ids},
    )
    return {int(i) for (i,) in found}
