"""The permission matrix: each role x each capability, one's own account, the system caller, and what the services
do with forbidden calls (every service method, every role: tests/core/services/test_access_matrix.py)."""

from __future__ import annotations

import pytest

from core.access import (
    PAGES,
    SYSTEM,
    Capability,
    Principal,
    Role,
    SystemCaller,
    guarded,
    is_self,
    require,
    require_self_or,
    rule_of,
)
from core.db import Database
from core.errors import PermissionDeniedError
from tests.conftest import services_of

ALLOWED = {
    Role.ADMIN: set(Capability),
    Role.FINANCE: {
        Capability.VIEW_ALL_SPEND,
        Capability.GRANT_CREDITS,
        Capability.USE_PLAYGROUND,
        Capability.FIND_SAVINGS,
        Capability.MANAGE_BUDGETS,
    },
    Role.ENGINEER: {
        Capability.MANAGE_ENDPOINTS,
        Capability.RUN_BREAKEVEN,
        Capability.USE_PLAYGROUND,
        Capability.FIND_SAVINGS,
    },
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


def test_the_system_caller_may_do_anything_and_is_audited_by_name() -> None:
    for cap in Capability:
        require(SYSTEM, cap)
    assert SystemCaller("cli:ana").actor == "cli:ana" and who(Role.PM).actor == "pm@x.io"


def test_no_caller_is_never_allowed() -> None:
    """A forgotten caller must fail loudly, never mean "the system"."""
    with pytest.raises(TypeError, match="SYSTEM"):
        require(None, Capability.USE_PLAYGROUND)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="caller"):
        require_self_or("admin@x.io", 7, Capability.VIEW_ALL_SPEND)  # type: ignore[arg-type]


def test_self_service() -> None:
    require_self_or(who(Role.PM, 7), 7, Capability.GENERATE_FOR_OTHERS)
    require_self_or(who(Role.PM, 7), "PM@x.io", Capability.GENERATE_FOR_OTHERS)
    require_self_or(who(Role.PM, 7), "7", Capability.GENERATE_FOR_OTHERS)
    with pytest.raises(PermissionDeniedError):
        require_self_or(who(Role.PM, 7), 8, Capability.GENERATE_FOR_OTHERS)
    with pytest.raises(PermissionDeniedError):
        require_self_or(who(Role.PM, 7), "other@x.io", Capability.GENERATE_FOR_OTHERS)
    assert not is_self(who(Role.PM, 7), True) and not is_self(SYSTEM, 7) and not is_self(who(Role.PM, 7), None)


def test_guarded_declares_and_enforces_its_rule() -> None:
    class Service:
        @guarded(Capability.GRANT_CREDITS)
        def grant(self, caller: object, user: int) -> str:
            return f"granted {user}"

        @guarded(Capability.VIEW_ALL_SPEND, own="user")
        def balance(self, caller: object, user: int) -> int:
            return user

    s = Service()
    assert s.grant(who(Role.FINANCE), 3) == "granted 3"
    with pytest.raises(PermissionDeniedError, match="grant"):
        s.grant(who(Role.PM), 3)
    assert s.balance(who(Role.PM, 7), user=7) == 7
    with pytest.raises(PermissionDeniedError):
        s.balance(who(Role.PM, 7), 8)
    with pytest.raises(TypeError):
        s.grant(None, 3)
    assert rule_of(Service.balance).describe() == "view_all_spend unless their own user"
    with pytest.raises(TypeError, match="no argument"):
        guarded(Capability.VIEW_ALL_SPEND, own="nobody")(lambda self, caller: None)


def test_pages_per_role() -> None:
    assert "home" not in PAGES[Role.PM] and "ledger" in PAGES[Role.PM]
    assert set(PAGES[Role.FINANCE]) >= {"home", "spend", "ledger"}
    assert {"breakeven", "endpoints"} <= set(PAGES[Role.ENGINEER])
    assert "endpoints" not in PAGES[Role.FINANCE] and "breakeven" not in PAGES[Role.PM]


def test_scoped_ledger_and_prices_through_the_services(sqlite_runtime: Database) -> None:
    """A PM sees only their own account and history; finance sees and grants for everyone but edits no price."""
    from core.users import add_user

    svc = services_of(sqlite_runtime)
    with sqlite_runtime.session() as s:
        pm = add_user(s, email="pm@x.io", name="P", role="pm")
        other = add_user(s, email="o@x.io", name="O", role="pm")
        fin = add_user(s, email="f@x.io", name="F", role="finance")
    pm_p, fin_p = Principal.of(pm), Principal.of(fin)
    with pytest.raises(PermissionDeniedError, match="grant"):
        svc.ledger.grant(pm_p, pm.id, 100)
    svc.ledger.grant(fin_p, other.id, 100)
    assert [a.email for a in svc.ledger.balances(pm_p)] == ["pm@x.io"]
    assert len(svc.ledger.balances(fin_p)) == 3
    assert svc.ledger.history(pm_p, "pm@x.io").transactions == []
    with pytest.raises(PermissionDeniedError):
        svc.ledger.history(pm_p, "o@x.io")
    with pytest.raises(PermissionDeniedError):
        svc.ledger.balance(pm_p, other.id)  # another user's balance, by id
    assert len(svc.ledger.history(fin_p, "o@x.io").transactions) == 1
    [entry] = svc.ledger.audit(fin_p)
    assert entry.actor == "f@x.io" and entry.target == "o@x.io"
    gpt = svc.models.get(fin_p, "gpt-4o")
    with pytest.raises(PermissionDeniedError, match="edit catalog prices"):
        svc.models.update_prices(fin_p, gpt.id, {"input_per_1m_usd": "3"})
    assert [u.email for u in svc.users.list(pm_p)] == ["pm@x.io"]
