"""Idempotent replies: what a call made with a caller's idempotency key answered, kept so that the same key sent
again (a client retrying after a timeout, or the same request from several clients at once) gets that answer and its
one charge, never a second upstream call or a second debit.

The hold is the claim: the first request's `reserve` creates it, every other request with the key gets the same hold
back (`Hold.reused`) and waits here until the first one settles (then reads its reply) or fails (then is told so).
A reply remembers a fingerprint of its request, so the key sent with a different request is refused.

While the database is unavailable a call's settlement waits in the settlement spool (core/billing/spool.py), and its
reply waits with it (`PendingReply`): the drain posts the settlement, then keeps the reply with the figures the
ledger charged (`settled_reply`). A retry meanwhile is told the charge is being posted, never that the first request
failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from core import event_loop
from core.billing.ledger_sql import holds
from core.billing.types import Settlement
from core.db.models import IdempotentReply, utcnow
from core.errors import CoreError
from core.money import apply_markup, usd_to_credits

POLL_SECONDS = 0.02
LOST_REPLY_GRACE_SECONDS = 5.0  # a settled hold whose reply is not written yet: wait this long for it

_replies = IdempotentReply.__table__
_HOLD_STATUS = select(holds.c.status).where(holds.c.id == bindparam("hold_id"))
_REPLY = select(_replies.c.fingerprint, _replies.c.result, _replies.c.data).where(
    _replies.c.user_id == bindparam("user_id"), _replies.c.idempotency_key == bindparam("key")
)


class IdempotencyConflictError(CoreError):
    """An idempotency key was sent again with another request, or its first request failed or is still running."""


@dataclass(frozen=True, kw_only=True)
class Reply:
    result: dict[str, Any]  # the result's figures and text, JSON
    data: bytes | None  # its audio or image bytes


@dataclass(frozen=True, kw_only=True)
class PendingReply:
    """The reply of a call whose charge waits in the settlement spool: kept with the settlement and stored once the
    drain has posted it. `result` is the reply's JSON with the charge figures not known yet (None)."""

    fingerprint: str
    result: dict[str, Any]
    data: bytes | None


def settled_reply(result: dict[str, Any], st: Settlement, credit_usd: Decimal) -> dict[str, Any]:
    """A pending reply's JSON with the figures its settlement charged: the charge, the balance after, the debit and
    usage row, and what the call costs at catalog price with the markup the ledger applied."""
    catalog_credits = usd_to_credits(Decimal(result["catalog_cost_usd"]), credit_usd)
    return {
        **result,
        "base_credits": st.base_credits,
        "markup_pct": str(st.markup_pct),
        "credits_charged": st.credits_charged,
        "would_be_credits": apply_markup(catalog_credits, st.markup_pct),
        "balance_after": st.balance_after,
        "transaction_id": st.transaction.id if st.transaction is not None else None,
        "usage_id": st.usage_id,
    }


class IdempotencyKeySpentError(IdempotencyConflictError):
    """The key's first request was another request, failed, or lost its answer: the same request with the same key
    gets this answer again (the gateway tells the SDKs not to retry it; a new request needs a new key)."""


class ChargeBeingPostedError(IdempotencyConflictError):
    """The first request with the key was answered while the database was unavailable; its charge (and so its kept
    answer) is still waiting in the settlement spool. Retry after `retry_after` seconds."""

    retry_after = 5.0

    def __init__(self) -> None:
        super().__init__(
            "The first request with this Idempotency-Key was answered, but the database was unavailable and its "
            "charge is still being posted; try again in a few seconds to get its answer (it is charged once)."
        )


def store(
    engine: Engine, *, user_id: int, key: str, fingerprint: str, result: dict[str, Any], data: bytes | None
) -> None:
    """Keep the reply of the call whose hold was under `key` (once: a second store of the same key is ignored)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(_replies).values(
                    user_id=user_id,
                    idempotency_key=key,
                    fingerprint=fingerprint,
                    created_at=utcnow(),
                    result=result,
                    data=data,
                )
            )
    except IntegrityError:
        pass


def wait_for_reply(
    engine: Engine,
    *,
    hold_id: int,
    user_id: int,
    key: str,
    fingerprint: str,
    timeout: float,
    sleep: Callable[[float], None] = event_loop.sleep,
    spooled: Callable[[], bool] = lambda: False,
) -> Reply:
    """The reply of the call holding `hold_id` under `key`, once it has settled; waits for it up to `timeout` s.

    Raises IdempotencyConflictError when the key was first sent with another request, when that call failed (its
    hold was released or expired: send the request again with a new key) or when it is still running at the
    timeout. `spooled()` says whether the call's settlement waits in the settlement spool: the call was answered
    and its charge is being posted (its hold may even have expired meanwhile), so the retry is told to come back."""
    deadline = time.monotonic() + timeout
    settled_since: float | None = None
    while True:
        with engine.connect() as conn:
            status = conn.execute(_HOLD_STATUS, {"hold_id": hold_id}).scalar_one_or_none()
            row = conn.execute(_REPLY, {"user_id": user_id, "key": key}).first() if status == "settled" else None
        if row is not None:
            if row.fingerprint != fingerprint:
                raise IdempotencyKeySpentError(
                    "This Idempotency-Key was already used for a different request; use a new key for a new request."
                )
            return Reply(result=row.result, data=row.data)
        if status in ("held", "expired") and spooled():
            raise ChargeBeingPostedError
        if status in ("released", "expired"):
            raise IdempotencyKeySpentError(
                "The first request with this Idempotency-Key failed, so nothing was charged for it; send the request "
                "again with a new key."
            )
        now = time.monotonic()
        if status == "settled":
            settled_since = settled_since or now
            if now - settled_since > LOST_REPLY_GRACE_SECONDS:
                raise IdempotencyKeySpentError(
                    "The first request with this Idempotency-Key was charged but its answer was not kept; look it up "
                    "in your usage history rather than sending it again."
                )
        if now > deadline:
            raise IdempotencyConflictError(
                "The first request with this Idempotency-Key is still running; try again once it has finished."
            )
        sleep(POLL_SECONDS)
