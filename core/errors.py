"""Typed errors shared by the engine. Every message is a sentence a user can act on."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error the engine raises on purpose; the CLI prints its message without a traceback."""


class ConfigError(CoreError):
    """The configuration (environment, secrets file, DATABASE_URL) is wrong or incomplete."""


class NotFoundError(CoreError):
    """A user, model, endpoint or transaction named by the caller does not exist."""


class InvalidInputError(CoreError, ValueError):
    """A value given by the caller is out of range or malformed."""


class PermissionDeniedError(CoreError):
    """The signed-in person's role does not allow this action."""
