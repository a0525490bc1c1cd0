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


def test_endpoint_actions_need_the_capability() -> None:
    from core.scoped import endpoints_for

    class Service:
        def list_endpoints(self) -> list:
            return []

        def pause(self, name: str) -> str:
            return f"paused {name}"

    assert endpoints_for(who(Role.ENGINEER), Service()).pause("x") == "paused x"
    assert endpoints_for(None, Service()).pause("x") == "paused x"
    assert endpoints_for(who(Role.FINANCE), Service()).list_endpoints() == []
    with pytest.raises(PermissionDeniedError, match="dedicated endpoints"):
        endpoints_for(who(Role.FINANCE), Service()).pause("x")


def test_scoped_billing_and_prices(sqlite_runtime) -> None:
    from core.catalog import get_model
    from core.scoped import balances_for, billing_for, transactions_for, update_prices_as
    from core.users import add_user

    rt = sqlite_runtime
    with rt.session() as s:
        pm = add_user(s, email="pm@x.io", name="P", role="pm")
        other = add_user(s, email="o@x.io", name="O", role="pm")
        fin = add_user(s, email="f@x.io", name="F", role="finance")
    pm_p, fin_p = Principal.of(pm), Principal.of(fin)
    with pytest.raises(PermissionDeniedError, match="grant"):
        billing_for(pm_p, rt.session_factory, rt.settings).grant(pm.id, 100)
    billing_for(fin_p, rt.session_factory, rt.settings).grant(other.id, 100)
    with rt.session() as s:
        assert [a.email for a in balances_for(pm_p, s)] == ["pm@x.io"]
        assert len(balances_for(fin_p, s)) == 3
        billing = billing_for(pm_p, rt.session_factory, rt.settings)
        assert transactions_for(pm_p, billing, s, "pm@x.io") == []
        with pytest.raises(PermissionDeniedError):
            transactions_for(pm_p, billing, s, "o@x.io")
        assert len(transactions_for(fin_p, billing, s, "o@x.io")) == 1
        with pytest.raises(PermissionDeniedError, match="edit catalog prices"):
            update_prices_as(fin_p, s, get_model(s, "gpt-4o").id, {"input_per_1m_usd": "3"})
