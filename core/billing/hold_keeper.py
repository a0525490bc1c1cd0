"""Keep a streaming call's credit hold counting for as long as the call runs, up to the call's time limit.

A hold expires `HOLD_TTL_SECONDS` after it was taken, so the credits of a process that died stop being held. A stream
may legitimately run longer: while chunks arrive, the keeper pushes the hold's expiry forward (whenever half its time
to live has passed), never past the call's limit `MAX_CALL_SECONDS`, after which the caller stops the stream and
settles what it delivered. A failed extension is logged, never raised: the call goes on, and a hold that expired is
still settled (flagged) when the call ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from core.billing.types import Hold
from core.db.models import utcnow

log = logging.getLogger(__name__)


class HoldExtender(Protocol):
    def extend_hold(self, hold: Hold | int, *, until: object) -> bool: ...


class HoldKeeper:
    def __init__(
        self,
        billing: HoldExtender,
        hold: Hold,
        *,
        ttl_seconds: int,
        max_call_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.billing = billing
        self.hold = hold
        self.ttl = ttl_seconds
        self.clock = clock
        started = clock()
        self.deadline = started + max_call_seconds
        self._next = started + ttl_seconds / 2
        self.extensions = 0

    def out_of_time(self) -> bool:
        """The call has run for its whole allowed duration: stop it and settle what it delivered."""
        return self.clock() >= self.deadline

    def tick(self) -> None:
        """Called as the call makes progress: extend the hold when half its time to live has passed."""
        now = self.clock()
        if now < self._next or now >= self.deadline:
            return
        self._next = now + self.ttl / 2
        seconds = min(self.ttl, self.deadline - now)
        try:
            if self.billing.extend_hold(self.hold, until=utcnow() + timedelta(seconds=seconds)):
                self.extensions += 1
        except Exception:
            log.exception("could not extend hold %s; the call goes on", self.hold.id)
