"""Generation: one billed call of a catalog model, for the Playground, the command line and the gateway.

Anyone may generate (the Playground capability, which every role holds) on their own credits; billing someone else's
credits needs the generate-for-others capability. A caller acting through an API key may call only the models the key
allows, and its calls are recorded with source `api` and the key (whose monthly limit counts their holds). The call
itself is `core.generate`'s flow. Counting a chat request's input tokens (`count_tokens`) calls no model and is free.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from core.access import Caller, Capability, Principal, guarded
from core.errors import InvalidInputError, PermissionDeniedError
from core.generate import GenerationResult, GenerationStream, Origin
from core.providers.json_output import checked_response_format
from core.providers.tools import ToolCallDelta, checked_tool_choice, checked_tools
from core.providers.types import Category, Chunk, GenerationRequest
from core.usage import Usage
from core.users import UserView

if TYPE_CHECKING:
    from core.services.container import Services

MAX_IDEMPOTENCY_KEY = 255

__all__ = [
    "Category",
    "Chunk",
    "GenerationRequest",
    "GenerationResult",
    "GenerationService",
    "GenerationStream",
    "ToolCallDelta",
    "Usage",
    "checked_response_format",
    "checked_tool_choice",
    "checked_tools",
]


def _ledger_key(caller: Caller, key: str | None) -> str | None:
    """A caller's idempotency key as the ledger keeps it: an API key's are its own (two keys of one person may send
    the same Idempotency-Key for different calls), hashed so that any header value fits."""
    if key is None or not (isinstance(caller, Principal) and caller.api_key_id is not None):
        return key
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInputError(f"An Idempotency-Key must have 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    return f"api:{caller.api_key_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _check_key_allows(caller: Caller, model_id: str) -> None:
    """A key's caller is refused a model the key does not allow."""
    if isinstance(caller, Principal) and caller.api_key_id is not None:
        allowed = caller.api_key_models
        if allowed is not None and model_id not in allowed:
            raise PermissionDeniedError(
                f"This API key may not call {model_id!r}; it may call: {', '.join(allowed)}. Ask its owner (or an "
                "admin) for a key that allows it."
            )


def _origin(caller: Caller, model_id: str, source: str) -> Origin:
    """Where the call comes from (a key's caller only for a model the key allows)."""
    _check_key_allows(caller, model_id)
    if isinstance(caller, Principal) and caller.api_key_id is not None:
        return Origin(source="api", api_key_id=caller.api_key_id)
    return Origin(source=source)


class GenerationService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @property
    def catalog_ttl(self) -> float:
        """Seconds a catalog entry read for a call is reused by the next calls of the model (0: read on every call);
        the gateway sets it (GATEWAY_CACHE_SECONDS)."""
        return self._s.flow.catalog_ttl

    @catalog_ttl.setter
    def catalog_ttl(self, seconds: float) -> None:
        self._s.flow.catalog_ttl = seconds

    @property
    def user_ttl(self) -> float:
        """Seconds a payer's account read for a call is reused by their next calls (0: read on every call); the
        gateway sets it (GATEWAY_CACHE_SECONDS). Charges always use the markup read under the account's lock."""
        return self._s.flow.user_ttl

    @user_ttl.setter
    def user_ttl(self, seconds: float) -> None:
        self._s.flow.user_ttl = seconds

    @guarded(Capability.GENERATE_FOR_OTHERS, own="user", always=Capability.USE_PLAYGROUND)
    def generate(
        self,
        caller: Caller,
        user: UserView | int | str,
        model_id: str,
        request: GenerationRequest,
        *,
        provider: str | None = None,
        idempotency_key: str | None = None,
        source: str = "playground",
    ) -> GenerationResult:
        """Make one billed call of `model_id` paid by `user` (an id, an email or a UserView). `source` is where the
        call comes from (playground or cli; a call through an API key is always api). With `idempotency_key`, the
        same key again returns the first call's result and charge."""
        origin = _origin(caller, model_id, source)
        key = _ledger_key(caller, idempotency_key)
        return self._s.flow.generate(user, model_id, request, provider=provider, idempotency_key=key, origin=origin)

    @guarded(Capability.GENERATE_FOR_OTHERS, own="user", always=Capability.USE_PLAYGROUND)
    def stream(
        self,
        caller: Caller,
        user: UserView | int | str,
        model_id: str,
        request: GenerationRequest,
        *,
        provider: str | None = None,
        idempotency_key: str | None = None,
        source: str = "playground",
    ) -> GenerationStream:
        """Like `generate`, streaming the text: iterate the result, then read its `.result`. Closing the stream early
        bills what was received so far and releases the rest of the hold."""
        origin = _origin(caller, model_id, source)
        key = _ledger_key(caller, idempotency_key)
        return self._s.flow.stream(user, model_id, request, provider=provider, idempotency_key=key, origin=origin)

    @guarded(None, always=Capability.USE_PLAYGROUND)
    def count_tokens(
        self, caller: Caller, model_id: str, request: GenerationRequest, *, provider: str | None = None
    ) -> int:
        """The input tokens a chat `request` would send to `model_id`, without calling it: Anthropic's own count for
        its models, the engine's estimate (the hold's bound) for the others. Free: no hold, no charge, no usage row;
        a key's caller may count only for the models the key allows."""
        _check_key_allows(caller, model_id)
        return self._s.flow.count_tokens(model_id, request, provider=provider)
