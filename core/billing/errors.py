"""Billing's typed errors."""

from __future__ import annotations

from core.errors import CoreError, InvalidInputError
from core.users import UnknownUserError

__all__ = ["HoldStateError", "InsufficientCreditsError", "InvalidAmountError", "UnknownUserError", "UnpricedModelError"]


class UnpricedModelError(CoreError):
    """A model, or a unit of its usage, has no price in the catalog: refuse rather than bill $0."""


class InsufficientCreditsError(CoreError):
    def __init__(self, needed: int, available: int, what: str = "this call") -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            f"Not enough credits: {what} needs {needed}, you have {available} available. Ask an admin for a top-up."
        )


class HoldStateError(CoreError):
    """A hold was settled twice, or settled after it was released or expired."""


class InvalidAmountError(InvalidInputError):
    pass
