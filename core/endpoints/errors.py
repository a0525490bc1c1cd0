"""Typed errors of the endpoints management API. Every message says what to do next."""

from __future__ import annotations

from core.errors import CoreError, InvalidInputError, NotFoundError


class EndpointError(CoreError):
    """Base of the errors the Inference Endpoints management API (or its local stand-in) causes."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class EndpointAuthError(EndpointError):
    """401: the token is missing, wrong or expired."""


class EndpointPermissionError(EndpointError):
    """403: the token is valid but may not manage endpoints in this namespace."""


class EndpointNotFoundError(EndpointError, NotFoundError):
    """404: no endpoint of that name in the namespace (or the namespace does not exist)."""


class EndpointConflictError(EndpointError):
    """409: the name is taken, or the endpoint is busy with another operation."""


class EndpointRequestError(EndpointError):
    """400/422: the API refused the request as malformed or not allowed in the endpoint's state."""


class EndpointUnavailableError(EndpointError):
    """Network failure, timeout or a 5xx: the API could not be reached; nothing is known to have changed."""


class EndpointTimeoutError(EndpointError):
    """`wait_until` gave up before the endpoint reached the state it waited for."""


class EndpointFailedError(EndpointError):
    """The endpoint reached `failed` (or `updateFailed`) while something waited for it to run."""


class OwnerOverdrawnError(CoreError):
    """The owner's balance is below zero: no endpoint is created or resumed on their credits until a top-up (as every
    call that costs a credit is refused), since its uptime would be charged to them whatever their balance."""

    def __init__(self, owner: str, balance: int, what: str) -> None:
        self.owner = owner
        self.balance = balance
        owed = -balance
        unit = "credit" if owed == 1 else "credits"
        super().__init__(
            f"Not {what}: {owner} is overdrawn by {owed:,} {unit}, and an endpoint's uptime is charged to its owner. "
            f"Ask finance for a top-up of at least {owed:,} {unit} first."
        )


class InvalidEndpointNameError(InvalidInputError):
    """The name breaks Hugging Face's rule: lowercase letters, digits and hyphens, at most 32 characters."""


class RepositoryNotFoundError(EndpointError, NotFoundError):
    """The Hub has no model repository of that name (or it is private and the token cannot see it)."""
