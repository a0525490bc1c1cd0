"""Generation: one billed call of a catalog model, for the Playground, the command line and the gateway.

Anyone may generate (the Playground capability, which every role holds) on their own credits; billing someone else's
credits needs the generate-for-others capability. The call itself is `core.generate`'s flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.access import Caller, Capability, guarded
from core.generate import GenerationResult, GenerationStream
from core.providers.types import GenerationRequest
from core.users import UserView

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["GenerationRequest", "GenerationResult", "GenerationService", "GenerationStream"]


class GenerationService:
    def __init__(self, services: Services) -> None:
        self._s = services

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
    ) -> GenerationResult:
        """Make one billed call of `model_id` paid by `user` (an id, an email or a UserView)."""
        return self._s.flow.generate(user, model_id, request, provider=provider, idempotency_key=idempotency_key)

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
    ) -> GenerationStream:
        """Like `generate`, streaming the text: iterate the result, then read its `.result`."""
        return self._s.flow.stream(user, model_id, request, provider=provider, idempotency_key=idempotency_key)
