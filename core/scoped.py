"""The engine's services as one signed-in person may use them.

Pages and outside callers that act for a person go through here: every read is scoped by the principal's role and
every write checks it, so a page that asks for too much gets a `PermissionDeniedError`, not someone else's data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.access import Capability, Principal, require, require_self_or
from core.billing import BillingService
from core.billing.accounts import AccountBalance, AuditEntry, account_balances, audit_entries
from core.billing.types import Transaction
from core.catalog.edit import PriceChange, update_prices
from core.config import Settings
from core.users import get_user


def billing_for(
    principal: Principal | None, session_factory: sessionmaker[Session], settings: Settings
) -> BillingService:
    """A billing service whose grants, top-ups, adjustments and refunds need the GRANT_CREDITS capability."""

    def authorize(action: str, actor: Any) -> None:
        require(principal, Capability.GRANT_CREDITS)

    return BillingService(session_factory, settings, authorize=authorize)


def balances_for(principal: Principal | None, session: Session, **filters: Any) -> list[AccountBalance]:
    """Everyone's balances for finance and admins; only one's own for everybody else."""
    rows = account_balances(session, **filters)
    if principal is None or principal.can(Capability.VIEW_ALL_SPEND):
        return rows
    return [a for a in rows if a.email == principal.email]


def transactions_for(
    principal: Principal | None, billing: BillingService, session: Session, user: str | int, **window: Any
) -> list[Transaction]:
    target = get_user(session, user)
    require_self_or(principal, target.id, Capability.VIEW_ALL_SPEND)
    return billing.transactions(target.id, **window)


def audit_for(principal: Principal | None, session: Session, action_prefix: str | None = None) -> list[AuditEntry]:
    require(principal, Capability.VIEW_ALL_SPEND)
    return audit_entries(session, action_prefix=action_prefix)


def update_prices_as(
    principal: Principal | None, session: Session, model_pk: int, changes: dict[str, Any], note: str | None = None
) -> PriceChange:
    require(principal, Capability.EDIT_PRICES)
    return update_prices(session, model_pk, changes, principal.email if principal else "system", note)


class _EndpointsAs:
    """A dedicated-endpoints service whose actions need MANAGE_ENDPOINTS; reads pass through."""

    ACTIONS = frozenset({"create_endpoint", "pause", "resume", "scale_to_zero", "delete", "refresh", "wait_until"})

    def __init__(self, principal: Principal | None, service: Any) -> None:
        self._principal = principal
        self._service = service

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if name in self.ACTIONS:
            require(self._principal, Capability.MANAGE_ENDPOINTS)
        return attr


def endpoints_for(principal: Principal | None, service: Any) -> Any:
    """`service` (a HuggingFaceEndpointService) as `principal` may use it."""
    return _EndpointsAs(principal, service)


def spend_page_for(principal: Principal | None, queries: Any, **kwargs: Any) -> Any:
    """The Spend page's data as `principal` may see it: PMs and engineers get only their own spend."""
    from core.analytics.page import spend_page

    if principal is not None and not principal.can(Capability.VIEW_ALL_SPEND):
        asked = set(kwargs.get("users") or ()) | ({kwargs["drill_user"]} if kwargs.get("drill_user") else set())
        if asked - {principal.email}:
            require(principal, Capability.VIEW_ALL_SPEND)
        kwargs["users"] = (principal.email,)
    return spend_page(queries, **kwargs)


def spend_queries_for(principal: Principal | None, queries: Any, user_email: str | None) -> str | None:
    """The user a spend question (CLI, usage totals) may cover: one's own unless the role sees everyone's."""
    if principal is None or principal.can(Capability.VIEW_ALL_SPEND):
        return user_email
    if user_email not in (None, principal.email):
        require(principal, Capability.VIEW_ALL_SPEND)
    return principal.email
