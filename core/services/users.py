"""People: who is signed in, who exists, adding someone. Identity is established here, as the system."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from core.access import Caller, Capability, Principal, guarded, sees_everyone
from core.db.models import ROLES
from core.errors import NotFoundError
from core.users import UserView, add_user, get_user, list_users

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["ROLES", "Principal", "UserService", "UserView"]


class UserService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(None, system_only=True)
    def identify(self, caller: Caller, email: str) -> Principal | None:
        """The principal of a signed-in email, or None when it is not a user (the system establishes identity)."""
        try:
            with self._s.db.session() as s:
                return Principal.of(get_user(s, email))
        except NotFoundError:
            return None

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def list(self, caller: Caller, role: str | None = None) -> list[UserView]:
        """Everyone (with balances) for finance, admins and the system; only oneself for everybody else."""
        with self._s.db.session() as s:
            if sees_everyone(caller):
                return list_users(s, role=role)
            me = get_user(s, caller.user_id)  # type: ignore[union-attr]
        return [me] if role in (None, me.role) else []

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def get(self, caller: Caller, user: int | str) -> UserView:
        with self._s.db.session() as s:
            return get_user(s, user)

    @guarded(Capability.MANAGE_USERS)
    def add(
        self, caller: Caller, *, email: str, name: str, role: str, markup_pct: Decimal | str | int | None = None
    ) -> UserView:
        markup = self._s.settings.default_markup_pct if markup_pct is None else markup_pct
        with self._s.db.write_session() as s:
            return add_user(s, email=email, name=name, role=role, markup_pct=markup)
