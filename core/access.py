"""Who may see and do what. The engine enforces it; the app's navigation only mirrors it.

A `Principal` (the signed-in person and their role) is passed to the services. A product manager's (and an engineer's)
spend, ledger and generate calls are scoped to their own user whatever the caller asks; forbidden actions raise
`PermissionDeniedError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import PermissionDeniedError
from core.users import UserView


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    ENGINEER = "engineer"
    PM = "pm"


class Capability(StrEnum):
    VIEW_ALL_SPEND = "view_all_spend"  # everyone's usage, spend and balances
    GRANT_CREDITS = "grant_credits"  # grants, top-ups, adjustments, refunds
    EDIT_PRICES = "edit_prices"
    MANAGE_ENDPOINTS = "manage_endpoints"
    RUN_BREAKEVEN = "run_breakeven"
    USE_PLAYGROUND = "use_playground"
    GENERATE_FOR_OTHERS = "generate_for_others"  # bill a call to someone else's credits
    MANAGE_USERS = "manage_users"


PERMISSIONS: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.FINANCE: frozenset({Capability.VIEW_ALL_SPEND, Capability.GRANT_CREDITS, Capability.USE_PLAYGROUND}),
    Role.ENGINEER: frozenset({Capability.MANAGE_ENDPOINTS, Capability.RUN_BREAKEVEN, Capability.USE_PLAYGROUND}),
    Role.PM: frozenset({Capability.USE_PLAYGROUND}),
}

# The pages each role may open (the router lists exactly these; each page checks again).
PAGES: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: ("home", "playground", "spend", "ledger", "budgets", "breakeven", "endpoints", "models"),
    Role.FINANCE: ("home", "spend", "ledger", "budgets", "models", "playground"),
    Role.ENGINEER: ("playground", "spend", "ledger", "budgets", "breakeven", "endpoints", "models"),
    Role.PM: ("playground", "spend", "ledger", "budgets", "models"),
}


@dataclass(frozen=True, kw_only=True)
class Principal:
    user_id: int
    email: str
    name: str
    role: Role

    @classmethod
    def of(cls, user: UserView) -> Principal:
        return cls(user_id=user.id, email=user.email, name=user.name, role=Role(user.role))

    def can(self, capability: Capability) -> bool:
        return capability in PERMISSIONS[self.role]

    def may_open(self, page: str) -> bool:
        return page in PAGES[self.role]


ACTION_NAMES = {
    Capability.VIEW_ALL_SPEND: "see other people's spend and balances",
    Capability.GRANT_CREDITS: "grant, top up, adjust or refund credits",
    Capability.EDIT_PRICES: "edit catalog prices",
    Capability.MANAGE_ENDPOINTS: "create, pause, resume or delete dedicated endpoints",
    Capability.RUN_BREAKEVEN: "run the break-even simulator",
    Capability.USE_PLAYGROUND: "use the Playground",
    Capability.GENERATE_FOR_OTHERS: "bill a call to another user's credits",
    Capability.MANAGE_USERS: "add users or change their markup",
}


def require(principal: Principal | None, capability: Capability) -> None:
    """Raise PermissionDeniedError unless `principal` holds `capability`. None means the system itself (CLI)."""
    if principal is None or principal.can(capability):
        return
    raise PermissionDeniedError(
        f"Your role ({principal.role}) may not {ACTION_NAMES[capability]}; ask an admin if you need to."
    )


def scope_user_ids(principal: Principal | None, requested: list[int] | None) -> list[int] | None:
    """The user ids a spend or ledger query may cover: a PM or engineer only ever sees their own."""
    if principal is None or principal.can(Capability.VIEW_ALL_SPEND):
        return requested
    if requested and any(uid != principal.user_id for uid in requested):
        raise PermissionDeniedError(
            f"Your role ({principal.role}) may see only your own usage and credits; ask finance for others'."
        )
    return [principal.user_id]


def require_self_or(principal: Principal | None, user_id: int, capability: Capability) -> None:
    """Acting on one's own account is always allowed; on someone else's it needs `capability`."""
    if principal is None or principal.user_id == user_id:
        return
    require(principal, capability)
