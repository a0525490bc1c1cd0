"""Who may call what: the access matrix of every public service method, read from their `@guarded` rules.

`python -m core access` prints it; `tests/core/services/test_access_matrix.py` calls every method as every role and
checks the engine does exactly what this table says.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from core.access import PERMISSIONS, Role, Rule, rule_of

ROLES = (*Role, "system")


def service_classes() -> dict[str, type]:
    """The product words and their service classes, as the container exposes them."""
    from core.services.breakeven import BreakevenService
    from core.services.budgets import BudgetService
    from core.services.demo import DemoService
    from core.services.endpoints import EndpointService
    from core.services.generation import GenerationService
    from core.services.keys import KeyService
    from core.services.ledger import LedgerService
    from core.services.models import ModelService
    from core.services.optimize import OptimizeService
    from core.services.overview import OverviewService
    from core.services.playground import PlaygroundService
    from core.services.spend import SpendService
    from core.services.users import UserService

    return {
        "users": UserService,
        "ledger": LedgerService,
        "spend": SpendService,
        "overview": OverviewService,
        "generation": GenerationService,
        "playground": PlaygroundService,
        "models": ModelService,
        "endpoints": EndpointService,
        "breakeven": BreakevenService,
        "demo": DemoService,
        "optimize": OptimizeService,
        "budgets": BudgetService,
        "keys": KeyService,
    }


def public_methods() -> Iterator[tuple[str, Callable[..., Any], Rule | None]]:
    """("word.method", the function, its rule) for every public method of every service."""
    for word, cls in service_classes().items():
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                yield f"{word}.{name}", fn, rule_of(fn)


def verdict(rule: Rule, role: Role | str) -> str:
    """'yes', 'own' (allowed on one's own account only, or shown only one's own) or 'no' for a role ('system' may do
    everything)."""
    if role == "system":
        return "yes"
    if rule.system_only:
        return "no"
    held = PERMISSIONS[Role(role)]
    if rule.always is not None and rule.always not in held:
        return "no"
    if rule.capability is None:
        return "own" if rule.scoped and not held & set(rule.scoped) else "yes"
    if rule.capability in held:
        return "yes"
    return "own" if rule.own else "no"


def matrix() -> list[dict[str, str]]:
    return [
        {"method": name, **{str(r): verdict(rule, r) for r in ROLES}, "rule": rule.describe()}
        for name, _, rule in public_methods()
        if rule is not None
    ]
