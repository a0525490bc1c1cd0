"""Reading the counts in an upstream's usage report: a whole number of at least zero, or a typed protocol error.

An upstream that reports `"prompt_tokens": "abc"` or `-5` broke its protocol (`UpstreamProtocolError`), and a figure
read as 0 would price the call at $0. A parser that meets one returns `unreadable(exc)`: usage with no figures,
flagged, which core.billing.reconcile bills at the most the request could use (the rule for a reply that states
no usage), recording why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.providers.errors import UpstreamProtocolError
from core.usage import UNREADABLE, Usage


def count(raw: Mapping[str, Any], key: str, *, provider: str) -> int:
    """`raw[key]` as a whole number >= 0 (absent or null is 0; 12.0 and "12" are 12)."""
    value = raw.get(key)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) < 19:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise UpstreamProtocolError(
            f"{provider} reported usage {key}={str(value)[:40]!r}, which is not a count; the call is billed at the "
            "most the request could use and flagged.",
            provider=provider,
        )
    return value


def unreadable(exc: UpstreamProtocolError) -> Usage:
    """Usage that states nothing, flagged with why: billed at the request's limit by core.billing.reconcile."""
    return Usage(estimated=True, extra={UNREADABLE: str(exc)})
