"""Typed errors shared by the engine. Every message is a sentence a user can act on."""

from __future__ import annotations

from core.redaction import redact


class CoreError(Exception):
    """Base of every error the engine raises on purpose; the CLI prints its message without a traceback.

    Its message never carries a configured secret: an upstream echoing a key back is redacted here, once for all.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(CoreError):
    """The configuration (environment, secrets file, DATABASE_URL) is wrong or incomplete."""


class DatabaseError(CoreError):
    """The database could not be reached, stayed busy past the wait, or refused a value (said in one sentence)."""


class NotFoundError(CoreError):
    """A user, model, endpoint or transaction named by the caller does not exist."""


class InvalidInputError(CoreError, ValueError):
    """A value given by the caller is out of range or malformed; `param`: the request field at fault, when known (the
    gateway names it as OpenAI's `param`)."""

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


class PermissionDeniedError(CoreError):
    """The signed-in person's role does not allow this action."""


class UnauthenticatedError(CoreError):
    """No API key, or one that is unknown, revoked or expired."""


class RateLimitedError(CoreError):
    """Too many requests for a limit (an API key's requests per minute); `retry_after` says when to try again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
