"""Who may see and do what: the one access mechanism of the engine. The app's navigation only mirrors it.

Every call into `core.services` names its caller: a `Principal` (a signed-in person and their role) or a `SystemCaller`
(the command line, scheduled jobs, the app establishing who is signed in). There is no "no caller": `None` is refused.
Service methods declare their rule with `@guarded(...)`, which enforces it before the method runs and records it for
the access test (`tests/core/services/test_access_matrix.py` walks every public service method with every role).
Reads that cover many people (balances, spend) are scoped inside the service with `sees_everyone`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias, TypeVar

from core.errors import PermissionDeniedError

F = TypeVar("F", bound=Callable[..., Any])


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
    FIND_SAVINGS = "find_savings"  # the Savings list: where money is lost in everyone's traffic
    MANAGE_BUDGETS = "manage_budgets"  # budgets, teams, alert webhooks, running the alerts
    MANAGE_API_KEYS = "manage_api_keys"  # create, list and revoke other people's API keys (one's own: everyone)
    BILL_ENDPOINTS_TO_OTHERS = "bill_endpoints_to_others"  # an endpoint whose uptime someone else pays


PERMISSIONS: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.FINANCE: frozenset(
        {
            Capability.VIEW_ALL_SPEND,
            Capability.GRANT_CREDITS,
            Capability.USE_PLAYGROUND,
            Capability.FIND_SAVINGS,
            Capability.MANAGE_BUDGETS,
        }
    ),
    Role.ENGINEER: frozenset(
        {Capability.MANAGE_ENDPOINTS, Capability.RUN_BREAKEVEN, Capability.USE_PLAYGROUND, Capability.FIND_SAVINGS}
    ),
    Role.PM: frozenset({Capability.USE_PLAYGROUND}),
}

# The pages each role may open (the router lists exactly these; each page checks again).
PAGES: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: (
        "home", "playground", "spend", "ledger", "budgets", "breakeven", "endpoints", "models", "savings",
        "pricing_lab", "keys",
    ),
    Role.FINANCE: ("home", "spend", "ledger", "budgets", "models", "playground", "savings", "pricing_lab", "keys"),
    Role.ENGINEER: ("playground", "spend", "ledger", "budgets", "breakeven", "endpoints", "models", "savings", "keys"),
    Role.PM: ("playground", "spend", "ledger", "budgets", "models", "keys"),
}  # fmt: skip


def roles_for_page(page: str) -> tuple[Role, ...]:
    """The roles that may open `page` (most privileged first); none for a page that does not exist."""
    return tuple(r for r in Role if page in PAGES[r])


ACTION_NAMES = {
    Capability.VIEW_ALL_SPEND: "see other people's spend and balances",
    Capability.GRANT_CREDITS: "grant, top up, adjust or refund credits",
    Capability.EDIT_PRICES: "edit catalog prices",
    Capability.MANAGE_ENDPOINTS: "create, pause, resume, delete or meter dedicated endpoints",
    Capability.RUN_BREAKEVEN: "run the break-even simulator",
    Capability.USE_PLAYGROUND: "use the Playground",
    Capability.GENERATE_FOR_OTHERS: "bill a call to another user's credits",
    Capability.MANAGE_USERS: "add users or change their markup",
    Capability.FIND_SAVINGS: "see the savings found in everyone's traffic",
    Capability.MANAGE_BUDGETS: "set budgets, manage teams and alert webhooks, or run the alerts",
    Capability.MANAGE_API_KEYS: "manage another user's API keys",
    Capability.BILL_ENDPOINTS_TO_OTHERS: "create an endpoint whose uptime another user pays",
}


@dataclass(frozen=True, kw_only=True)
class Principal:
    """A signed-in person acting through a page, the command line's `--as`, or an API key of theirs (then
    `api_key_id` names the key and `api_key_models` lists the models it may use; None: every model)."""

    user_id: int
    email: str
    name: str
    role: Role
    api_key_id: int | None = None
    api_key_models: tuple[str, ...] | None = None

    @classmethod
    def of(cls, user: Any) -> Principal:
        """The principal of a user row or view (anything with id, email, name and role)."""
        return cls(user_id=user.id, email=user.email, name=user.name, role=Role(user.role))

    @property
    def actor(self) -> str:
        """The name the audit log records."""
        return self.email

    def can(self, capability: Capability) -> bool:
        return capability in PERMISSIONS[self.role]

    def may_open(self, page: str) -> bool:
        return page in PAGES[self.role]


@dataclass(frozen=True)
class SystemCaller:
    """The system itself: the command line (as `cli:<login>`), scheduled jobs, the app before anyone signs in.
    It may do everything; what it does is audited under its name."""

    name: str = "system"

    @property
    def actor(self) -> str:
        return self.name

    def can(self, capability: Capability) -> bool:
        return True


SYSTEM = SystemCaller()
Caller: TypeAlias = Principal | SystemCaller


def check_caller(caller: object) -> Caller:
    """The caller itself, or a TypeError for anything else (a forgotten caller must never mean "allowed")."""
    if isinstance(caller, Principal | SystemCaller):
        return caller
    raise TypeError(
        f"A service call needs its caller (a Principal, or core.access.SYSTEM for the system itself), got {caller!r}."
    )


def denied(caller: Principal, capability: Capability) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"Your role ({caller.role}) may not {ACTION_NAMES[capability]}; ask an admin if you need to."
    )


def require(caller: Caller, capability: Capability) -> None:
    """Raise PermissionDeniedError unless `caller` holds `capability`."""
    check_caller(caller)
    if not caller.can(capability):
        raise denied(caller, capability)  # type: ignore[arg-type]


def is_self(caller: Caller, user: object) -> bool:
    """Whether `user` (an id, a digit string, an email, or a view with `id`) names the caller's own account."""
    if not isinstance(caller, Principal) or user is None or isinstance(user, bool):
        return False
    uid = getattr(user, "id", None)
    if isinstance(uid, int):
        return uid == caller.user_id
    if isinstance(user, int):
        return user == caller.user_id
    if isinstance(user, str):
        ref = user.strip()
        return int(ref) == caller.user_id if ref.isdigit() else ref.lower() == caller.email
    return False


def require_self_or(caller: Caller, user: object, capability: Capability) -> None:
    """Acting on one's own account is always allowed; on someone else's it needs `capability`."""
    check_caller(caller)
    if not is_self(caller, user):
        require(caller, capability)


def sees_everyone(caller: Caller) -> bool:
    """Whether a read covering many people (balances, spend, endpoints' owners) may show everyone's rows."""
    return check_caller(caller).can(Capability.VIEW_ALL_SPEND)


@dataclass(frozen=True)
class Rule:
    """A service method's access rule: the capability it needs (None: any caller), and the name of the argument that
    names a user when acting on one's own account needs no capability."""

    capability: Capability | None
    own: str | None = None
    always: Capability | None = None  # needed whoever the call is for (e.g. the Playground for any generation)
    scoped: tuple[Capability, ...] = ()  # open to anyone, but narrowed to one's own unless holding one of these
    system_only: bool = False  # the system itself only (e.g. establishing who is signed in)

    def describe(self) -> str:
        if self.system_only:
            return "the system only"
        parts = [str(self.always)] if self.always else []
        if self.capability is not None:
            parts.append(f"{self.capability}" + (f" unless their own {self.own}" if self.own else ""))
        if self.scoped:
            parts.append(f"anyone; only their own without {' or '.join(self.scoped)}")
        return " and ".join(parts) or "anyone"


def guarded(
    capability: Capability | None,
    *,
    own: str | None = None,
    always: Capability | None = None,
    scoped: tuple[Capability, ...] = (),
    system_only: bool = False,
) -> Callable[[F], F]:
    """Declare and enforce who may call a service method `(self, caller, ...)`.

    `capability`: what the caller needs (None: any caller).
    `own`: the argument naming a user; when it names the caller's own account the capability is not needed.
    `always`: a capability needed in every case (checked first).
    `scoped`: declares that the method narrows what it returns to the caller's own unless they hold one of these (the
    method does the narrowing, with `sees_everyone` or the caller's capabilities).
    `system_only`: only the system itself may call it."""
    rule = Rule(capability, own, always, scoped, system_only)

    def decorate(method: F) -> F:
        signature = inspect.signature(method)
        params = list(signature.parameters)
        if len(params) < 2 or params[1] != "caller":
            raise TypeError(f"{method.__qualname__}: a guarded method takes (self, caller, ...)")
        if own is not None and own not in params:
            raise TypeError(f"{method.__qualname__} has no argument {own!r} to check ownership on")

        @functools.wraps(method)
        def wrapper(self: Any, caller: Any, *args: Any, **kwargs: Any) -> Any:
            check_caller(caller)
            if system_only and not isinstance(caller, SystemCaller):
                raise PermissionDeniedError(f"Only the system itself may {method.__name__.replace('_', ' ')}.")
            if always is not None:
                require(caller, always)
            if capability is not None:
                if own is not None:
                    bound = signature.bind_partial(self, caller, *args, **kwargs)
                    require_self_or(caller, bound.arguments.get(own), capability)
                else:
                    require(caller, capability)
            return method(self, caller, *args, **kwargs)

        wrapper.__rule__ = rule  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def rule_of(method: Callable[..., Any]) -> Rule | None:
    return getattr(method, "__rule__", None)
