"""The typed errors the engine raises behind the services door, for the interfaces that map them to their own answers
(the gateway's HTTP statuses and error envelopes; the command line prints every `CoreError` the same way)."""

from core.billing.errors import BudgetExceededError, HoldStateError, InsufficientCreditsError, UnpricedModelError
from core.billing.key_limits import KeyLimitError
from core.billing.replays import IdempotencyConflictError, IdempotencyKeySpentError
from core.catalog.lookup import UnknownModelError
from core.endpoints.errors import EndpointError, EndpointTimeoutError, EndpointUnavailableError, OwnerOverdrawnError
from core.errors import (
    ConfigError,
    CoreError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthenticatedError,
)
from core.providers.errors import (
    AuthError,
    BadRequestError,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    UpstreamError,
)

__all__ = [
    "AuthError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigError",
    "CoreError",
    "DatabaseError",
    "EndpointError",
    "EndpointTimeoutError",
    "EndpointUnavailableError",
    "HoldStateError",
    "IdempotencyConflictError",
    "IdempotencyKeySpentError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "KeyLimitError",
    "NotFoundError",
    "OwnerOverdrawnError",
    "PermissionDeniedError",
    "ProviderConfigError",
    "ProviderError",
    "ProviderTimeout",
    "QuotaExceededError",
    "RateLimitError",
    "RateLimitedError",
    "UnauthenticatedError",
    "UnknownModelError",
    "UnpricedModelError",
    "UpstreamError",
]
