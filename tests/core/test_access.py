"""The permission matrix: each role x each capability, and scoping of spend/ledger queries."""

from __future__ import annotations

import pytest

from core.access import PAGES, Capability, Principal, Role, require, require_self_or, scope_user_ids
from core.errors import PermissionDeniedError

ALLOWED = {
    Role.ADMIN: set(Capability),
    Role.FINANCE: {Capability.VIEW_ALL_SPEND, Capability.GRANT_CREDITS, Capability.USE_PLAYGROUND},
    Role.ENGINEER: {Capability.MANAGE_ENDPOINTS, Capability.RUN_BREAKEVEN, Capability.USE_PLAYGROUND},
    Role.PM: {Capability.USE_PLAYGROUND},
}


def who(role: Role, uid: int = 7) -> Principal:
    return Principal(user_id=uid, email=f"{role}@x.io", name=str(role), role=role)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("cap", list(Capability))
def test_matrix(role: Role, cap: Capability) -> None:
    if cap in ALLOWED[role]:
        require(who(role), cap)
    else:
        with pytest.raises(PermissionDeniedError, match=f"Your role \\({role}\\) may not"):
            require(who(role), cap)


def test_system_principal_may_do_anything() -> None:
    for cap in Capability:
        require(None, cap)


def test_spend_scope() -> None:
    assert scope_user_ids(who(Role.FINANCE), None) is None
    assert scope_user_ids(who(Role.FINANCE), [1, 2]) == [1, 2]
    assert scope_user_ids(who(Role.PM, 7), None) == [7]
    assert scope_user_ids(who(Role.ENGINEER, 7), [7]) == [7]
    with pytest.raises(PermissionDeniedError, match="only your own"):
        scope_user_ids(who(Role.PM, 7), [8])


def test_self_service() -> None:
    require_self_or(who(Role.PM, 7), 7, Capability.GENERATE_FOR_OTHERS)
    with pytest.raises(PermissionDeniedError):
        require_self_or(who(Role.PM, 7), 8, Capability.GENERATE_FOR_OTHERS)


def test_pages_per_role() -> None:
    assert "home" not in PAGES[Role.PM] and "ledger" in PAGES[Role.PM]
    assert set(PAGES[Role.FINANCE]) >= {"home", "spend", "ledger"}
    assert {"breakeven", "endpoints"} <= set(PAGES[Role.ENGINEER])
    assert "endpoints" not in PAGES[Role.FINANCE] and "breakeven" not in PAGES[Role.PM]
