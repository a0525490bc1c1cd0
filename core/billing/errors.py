"""Billing's typed errors."""

from __future__ import annotations

from datetime import date, datetime

from core.errors import CoreError, InvalidInputError
from core.money import credits_text
from core.users import UnknownUserError

__all__ = [
    "BudgetExceededError",
    "HoldStateError",
    "InsufficientCreditsError",
    "InvalidAmountError",
    "UnknownUserError",
    "UnpricedModelError",
]


class UnpricedModelError(CoreError):
    """A model, or a unit of its usage, has no price in the catalog: refuse rather than bill $0."""


class InsufficientCreditsError(CoreError):
    """`available`: the balance less what is held, below zero when the account is overdrawn (said so, not as 0)."""

    def __init__(self, needed: int, available: int, what: str = "this call", *, message: str | None = None) -> None:
        self.needed = needed
        self.available = available
        have = (
            f"you have {available:,} available"
            if available >= 0
            else f"you have none available (the balance, less what is held, is {available:,})"
        )
        super().__init__(message or f"Not enough credits: {what} needs {needed:,}, {have}. Ask an admin for a top-up.")


class BudgetExceededError(CoreError):
    """A hard budget covering the call has too little left for it: the call is refused before any upstream call."""

    def __init__(
        self,
        *,
        budget_id: int,
        budget: str,
        limit: int,
        left: int,
        needed: int,
        resets_on: date | None,
        period_start: datetime,
        period_end: datetime,
    ) -> None:
        self.budget_id = budget_id
        self.budget = budget
        self.limit = limit
        self.left = left
        self.needed = needed
        self.resets_on = resets_on
        self.period_start = period_start
        self.period_end = period_end
        when = f"it resets on {resets_on:%Y-%m-%d}" if resets_on else "it is a one-off budget: ask finance to raise it"
        if left <= 0:
            text = f"Budget '{budget}' is used up: 0 of {credits_text(limit)} left; {when}."
        else:
            text = (
                f"Budget '{budget}' has {left:,} of {credits_text(limit)} left "
                f"and this call may cost up to {needed:,}; "
                f"{when}."
            )
        super().__init__(text)


class HoldStateError(CoreError):
    """A hold was settled twice, or settled after it was released or expired."""


class InvalidAmountError(InvalidInputError):
    pass
