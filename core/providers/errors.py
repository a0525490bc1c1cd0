"""Typed provider errors. Each carries the upstream's own message and says what the user can do about it."""

from __future__ import annotations

from core.errors import ConfigError as CoreConfigError
from core.errors import CoreError
from core.redaction import redact


class ProviderError(CoreError):
    """An upstream AI provider refused or failed a call."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        upstream_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.upstream_message = redact(upstream_message) if upstream_message else upstream_message
        self.retry_after = retry_after


class AuthError(ProviderError):
    """The API key is missing, wrong, or lacks a permission (401/403, MiniMax 1004/2044)."""


class RateLimitError(ProviderError):
    """The upstream is rate limiting us (429, MiniMax 1002); `retry_after` says when to try again, when known."""


class UpstreamError(ProviderError):
    """The upstream failed (5xx, 529 overloaded, a broken connection, a malformed response)."""


class UpstreamProtocolError(UpstreamError):
    """The upstream's answer broke its own protocol: a usage figure that is not a whole number of at least zero
    (`"prompt_tokens": "abc"`, `-5`). Usage parsers turn it into usage billed at the request's limit and flagged."""


class QuotaExceededError(UpstreamError):
    """Our account at the upstream has run out of credit (HTTP 402, MiniMax 1008): an operator must top it up."""


class BadRequestError(ProviderError):
    """The upstream refused the request itself (400/404/413/422, MiniMax 2013): change the input and try again."""


class ProviderTimeout(ProviderError):
    """The upstream did not answer in time."""


class ProviderConfigError(ProviderError, CoreConfigError):
    """The provider's configuration is wrong (a retired URL, a missing endpoint URL, no API key)."""
