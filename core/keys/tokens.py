"""Making and recognising API keys. A key is `sk-ac-` and 43 random URL-safe characters (256 bits); it is shown once
and only its SHA-256 is stored. A fast hash is right for a key this random (nobody can guess one to test against the
hash); a password would need a slow one. The first characters are kept as a prefix so people can tell keys apart."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk-ac-"
SHOWN_CHARS = 12  # "sk-ac-" and six random characters
MAX_KEY_CHARS = 200  # longer is not one of ours: refused before hashing


def hash_key(secret: str) -> str:
    """The hex SHA-256 the store keeps for `secret`."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(the key, its shown prefix, its hash)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:SHOWN_CHARS], hash_key(secret)


def plausible(secret: str) -> bool:
    """Whether `secret` could be one of our keys (a quick refusal of anything else, before any database read)."""
    return secret.startswith(KEY_PREFIX) and len(secret) <= MAX_KEY_CHARS and secret.isascii()


def same_hash(stored: str, presented: str) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(stored.encode("ascii"), presented.encode("ascii"))
