"""Every public service method, called as every role and as the system, does what the role table says.

EXPECTED is the product's access table written out by hand (admin, finance, engineer, pm): "yes" allowed, "no"
refused with PermissionDeniedError, "own" allowed on (or showing only) the caller's own account and refused for anyone
else's. The test checks three things: every public method of every service has a rule and a row here (a new method
cannot slip in unguarded), the rule each method declares gives this table, and calling it really behaves so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.access import SYSTEM, Caller, Principal, Role
from core.alerts.records import AlertLog, NewAlert
from core.analytics.filters import SpendFilter
from core.endpoints.clock import ManualClock
from core.errors import InvalidInputError, PermissionDeniedError
from core.providers.types import GenerationRequest
from core.services import Services
from core.services.breakeven import BreakevenInput
from core.services.optimize import PricingScenario
from core.services.rules import ROLES, matrix, public_methods
from core.services.spend import PageQuery
from core.usage import Usage
from core.users import UserView, add_user
from tests.conftest import make_runtime

# method: (admin, finance, engineer, pm); the system may always.
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "users.add": ("yes", "no", "no", "no"),
    "users.get": ("yes", "yes", "own", "own"),
    "users.identify": ("no", "no", "no", "no"),
    "users.list": ("yes", "yes", "own", "own"),
    "ledger.audit": ("yes", "yes", "no", "no"),
    "ledger.balance": ("yes", "yes", "own", "own"),
    "ledger.balances": ("yes", "yes", "own", "own"),
    "ledger.check": ("yes", "yes", "no", "no"),
    "ledger.spool": ("yes", "yes", "no", "no"),
    "ledger.drain_spool": ("yes", "yes", "no", "no"),
    "ledger.disputed": ("yes", "yes", "own", "own"),
    "ledger.grant": ("yes", "yes", "no", "no"),
    "ledger.history": ("yes", "yes", "own", "own"),
    "ledger.history_page": ("yes", "yes", "own", "own"),
    "ledger.refund": ("yes", "yes", "no", "no"),
    "ledger.review_grant": ("yes", "yes", "no", "no"),
    "ledger.review_refund": ("yes", "yes", "no", "no"),
    "spend.anomalies": ("yes", "yes", "own", "own"),
    "spend.breakdown": ("yes", "yes", "own", "own"),
    "spend.default_range": ("yes", "yes", "yes", "yes"),
    "spend.forecast": ("yes", "yes", "own", "own"),
    "spend.kpis": ("yes", "yes", "own", "own"),
    "spend.options": ("yes", "yes", "own", "own"),
    "spend.page": ("yes", "yes", "own", "own"),
    "spend.series": ("yes", "yes", "own", "own"),
    "spend.store_version": ("yes", "yes", "yes", "yes"),
    "spend.sync": ("yes", "yes", "yes", "yes"),
    "spend.team_page": ("yes", "yes", "own", "own"),
    "spend.teams": ("yes", "yes", "own", "own"),
    "spend.total_usage": ("yes", "yes", "own", "own"),
    "spend.usage_by_provider": ("yes", "yes", "own", "own"),
    "overview.overview": ("yes", "yes", "no", "no"),
    "generation.count_tokens": ("yes", "yes", "yes", "yes"),
    "generation.generate": ("yes", "own", "own", "own"),
    "generation.stream": ("yes", "own", "own", "own"),
    "playground.available_credits": ("yes", "yes", "own", "own"),
    "playground.catalog": ("yes", "yes", "yes", "yes"),
    "playground.compare": ("yes", "own", "own", "own"),
    "playground.payers": ("yes", "own", "own", "own"),
    "models.get": ("yes", "yes", "yes", "yes"),
    "models.hardware": ("yes", "yes", "yes", "yes"),
    "models.list": ("yes", "yes", "yes", "yes"),
    "models.price_history": ("yes", "yes", "yes", "yes"),
    "models.quote": ("yes", "yes", "yes", "yes"),
    "models.typical_costs": ("yes", "yes", "yes", "yes"),
    "models.review_prices": ("yes", "no", "no", "no"),
    "models.update_prices": ("yes", "no", "no", "no"),
    "endpoints.configuration_problem": ("yes", "yes", "yes", "yes"),
    "endpoints.create": ("yes", "no", "own", "no"),
    "endpoints.delete": ("yes", "no", "yes", "no"),
    "endpoints.demo": ("yes", "no", "yes", "no"),
    "endpoints.detail": ("yes", "yes", "yes", "own"),
    "endpoints.hardware_options": ("yes", "yes", "yes", "yes"),
    "endpoints.is_local": ("yes", "yes", "yes", "yes"),
    "endpoints.meter": ("yes", "no", "yes", "no"),
    "endpoints.overview": ("yes", "yes", "yes", "own"),
    "endpoints.owners": ("yes", "no", "own", "no"),
    "endpoints.pause": ("yes", "no", "yes", "no"),
    "endpoints.refresh": ("yes", "no", "yes", "no"),
    "endpoints.resume": ("yes", "no", "yes", "no"),
    "endpoints.scale_to_zero": ("yes", "no", "yes", "no"),
    "endpoints.wait_until": ("yes", "no", "yes", "no"),
    "breakeven.default_range": ("yes", "no", "yes", "no"),
    "breakeven.defaults": ("yes", "no", "yes", "no"),
    "breakeven.model_ids": ("yes", "no", "yes", "no"),
    "breakeven.simulate": ("yes", "no", "yes", "no"),
    "optimize.pricing_defaults": ("yes", "yes", "no", "no"),
    "optimize.pricing_lab": ("yes", "yes", "no", "no"),
    "optimize.savings": ("yes", "yes", "yes", "no"),
    "optimize.savings_report": ("yes", "yes", "yes", "no"),
    "optimize.what_if": ("yes", "yes", "no", "no"),
    "budgets.add_team": ("yes", "yes", "no", "no"),
    "budgets.add_webhook": ("yes", "yes", "no", "no"),
    "budgets.alerts": ("yes", "yes", "own", "own"),
    "budgets.banners": ("yes", "yes", "yes", "yes"),
    "budgets.budgets": ("yes", "yes", "own", "own"),
    "budgets.change_team": ("yes", "yes", "no", "no"),
    "budgets.deliveries": ("yes", "yes", "no", "no"),
    "budgets.dismiss": ("yes", "yes", "own", "own"),
    "budgets.members": ("yes", "yes", "own", "own"),
    "budgets.page": ("yes", "yes", "own", "own"),
    "budgets.remove_budget": ("yes", "yes", "no", "no"),
    "budgets.remove_webhook": ("yes", "yes", "no", "no"),
    "budgets.run_alerts": ("yes", "yes", "no", "no"),
    "budgets.set_budget": ("yes", "yes", "no", "no"),
    "budgets.teams": ("yes", "yes", "own", "own"),
    "budgets.webhooks": ("yes", "yes", "no", "no"),
    "demo.has_usage": ("yes", "no", "no", "no"),
    "demo.write_history": ("yes", "no", "no", "no"),
    "keys.admit": ("no", "no", "no", "no"),
    "keys.authenticate": ("no", "no", "no", "no"),
    "keys.create": ("yes", "own", "own", "own"),
    "keys.list": ("yes", "own", "own", "own"),
    "keys.models": ("yes", "yes", "yes", "yes"),
    "keys.model": ("yes", "yes", "yes", "yes"),
    "keys.revoke": ("yes", "own", "own", "own"),
}
CALLERS = ("admin", "finance", "engineer", "pm", "system")


@dataclass
class World:
    services: Services
    users: dict[str, UserView]  # by role, plus "other" (a second pm)
    names: Iterator[int]

    def me(self, caller: Caller) -> UserView:
        return self.users[str(caller.role)] if isinstance(caller, Principal) else self.users["admin"]

    def someone_else(self, caller: Caller) -> UserView:
        return self.users["other"]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"

    def team_owned_by(self, owner: UserView) -> int:
        """A team `owner` owns (made once, with nobody in it)."""
        budgets = self.services.budgets
        for team in budgets.teams(SYSTEM):
            if team.owner_id == owner.id:
                return team.id
        return budgets.add_team(SYSTEM, self.fresh("team"), owner=owner.id).id

    def alert_about(self, user: UserView) -> int:
        """A new, undismissed alert about `user` (their banner)."""
        log = AlertLog(self.services.db.session_factory, self.services.settings)
        key = self.fresh("matrix-alert")
        [alert_id] = log.record(
            [NewAlert(key=key, kind="threshold", severity="info", message="matrix test", user_id=user.id)]
        )
        return alert_id

    def endpoint(self, owner: UserView) -> str:
        """A new running endpoint of `owner`'s, who is topped up first when the uptime metered so far overdrew them
        (an overdrawn owner gets no endpoint; this test is about who may act, not about money)."""
        total = self.services.billing.balance(owner.id).total
        if total < 0:
            self.services.ledger.grant(SYSTEM, owner.id, 1000 - total)
        name = self.fresh("ep")
        self.services.endpoints.create(SYSTEM, name, "facebook/mms-tts-eng", "T4", owner=owner.email, min_replicas=1)
        return name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    db = make_runtime(f"sqlite:///{tmp / 'app.db'}", tmp, hf_endpoints_api_url="local")
    clock = ManualClock(datetime(2026, 12, 1, 12, 0))
    services = Services(db, clock=clock, sleep=clock.sleep)
    users: dict[str, UserView] = {}
    with db.session() as s:
        for role in ("admin", "finance", "engineer", "pm"):
            users[role] = add_user(s, email=f"{role}@x.io", name=role.title(), role=role)
        users["other"] = add_user(s, email="other@x.io", name="Other", role="pm")
    for u in users.values():
        services.ledger.grant(SYSTEM, u.id, 1000)
    chat = GenerationRequest(category="chat", text="hello")
    for u in users.values():
        services.generation.generate(SYSTEM, u.id, "sandbox-chat", chat)
        services.keys.create(SYSTEM, u.id, f"{u.role} key")
    # the other pm has a budget, a team of their own and an alert about them
    services.budgets.set_budget(SYSTEM, user=users["other"].id, credits=500)
    services.budgets.add_team(SYSTEM, "others", owner=users["other"].id, members=[users["other"].id])
    world = World(services, users, itertools.count())
    world.alert_about(users["other"])
    services.spend.sync(SYSTEM)  # built, as the pages find it: a call that reads the store never depends on another
    yield world
    services.close()


def principal(world: World, role: str) -> Caller:
    return SYSTEM if role == "system" else Principal.of(world.users[role])


Call = Callable[[World, Caller, UserView], Any]
CHAT = GenerationRequest(category="chat", text="hi")


def _spend(method: str) -> Call:
    def call(w: World, c: Caller, target: UserView) -> Any:
        f = SpendFilter(users=(target.email,))
        spend = w.services.spend
        return {
            "anomalies": lambda: spend.anomalies(c, f, sync_if_older_than=0),
            "breakdown": lambda: spend.breakdown(c, "user", f, sync_if_older_than=0),
            "forecast": lambda: spend.forecast(c, f, sync_if_older_than=0),
            "kpis": lambda: spend.kpis(c, f, sync_if_older_than=0),
            "series": lambda: spend.series(c, "day", f, sync_if_older_than=0),
            "page": lambda: spend.page(c, PageQuery(since=date(2026, 11, 1), until=date(2026, 12, 31), users=f.users)),
        }[method]()

    return call


def _refund(w: World, c: Caller, target: UserView) -> Any:
    tx = w.services.billing.charge(target.id, Decimal("0.04"), idempotency_key=w.fresh("charge"), description="x")
    return w.services.ledger.refund(c, tx.id, "matrix test")


def _endpoint_action(action: str) -> Call:
    def call(w: World, c: Caller, target: UserView) -> Any:
        name = w.endpoint(w.users["engineer"])
        ep = w.services.endpoints
        if action == "wait_until":
            return ep.wait_until(c, name, "running", timeout=600)
        return getattr(ep, action)(c, name)

    return call


def _demo(w: World, c: Caller, target: UserView) -> Any:
    try:
        return w.services.endpoints.demo(c, days=1)
    except InvalidInputError as exc:  # allowed, but the demo is there from an earlier caller
        assert "already there" in str(exc)
        return None


def _sandbox_pair(w: World) -> list[Any]:
    # the second has no API key here: its entry carries the error, the comparison itself is allowed
    return [w.services.models.get(SYSTEM, "sandbox-chat"), w.services.models.get(SYSTEM, "gpt-4o-mini")]


# How to call each method on behalf of `target` (the caller's own account, or someone else's).
CALLS: dict[str, Call] = {
    "users.add": lambda w, c, t: w.services.users.add(c, email=f"{w.fresh('n')}@x.io", name="N", role="pm"),
    "users.get": lambda w, c, t: w.services.users.get(c, t.id),
    "users.identify": lambda w, c, t: w.services.users.identify(c, t.email),
    "users.list": lambda w, c, t: {u.email for u in w.services.users.list(c)},
    "ledger.audit": lambda w, c, t: w.services.ledger.audit(c),
    "ledger.balance": lambda w, c, t: w.services.ledger.balance(c, t.email),
    "ledger.balances": lambda w, c, t: {a.email for a in w.services.ledger.balances(c)},
    "ledger.check": lambda w, c, t: w.services.ledger.check(c),
    "ledger.spool": lambda w, c, t: w.services.ledger.spool(c),
    "ledger.drain_spool": lambda w, c, t: w.services.ledger.drain_spool(c),
    "ledger.disputed": lambda w, c, t: w.services.ledger.disputed(c, t.id),
    "ledger.grant": lambda w, c, t: w.services.ledger.grant(c, t.id, 1),
    "ledger.history": lambda w, c, t: w.services.ledger.history(c, t.id),
    "ledger.history_page": lambda w, c, t: w.services.ledger.history_page(c, t.id, size=5),
    "ledger.refund": _refund,
    "ledger.review_grant": lambda w, c, t: w.services.ledger.review_grant(c, t.id, "1"),
    "ledger.review_refund": lambda w, c, t: w.services.ledger.review_refund(c, 5, "2"),
    "spend.anomalies": _spend("anomalies"),
    "spend.breakdown": _spend("breakdown"),
    "spend.default_range": lambda w, c, t: w.services.spend.default_range(c),
    "spend.forecast": _spend("forecast"),
    "spend.kpis": _spend("kpis"),
    "spend.options": lambda w, c, t: {e for e, _ in w.services.spend.options(c).users},
    "spend.page": _spend("page"),
    "spend.series": _spend("series"),
    "spend.store_version": lambda w, c, t: w.services.spend.store_version(c),
    "spend.sync": lambda w, c, t: w.services.spend.sync(c),
    "spend.team_page": lambda w, c, t: w.services.spend.team_page(
        c, w.team_owned_by(t), PageQuery(since=date(2026, 11, 1), until=date(2026, 12, 31))
    ),
    "spend.teams": lambda w, c, t: {tm.owner_email for tm in w.services.spend.teams(c)},
    "spend.total_usage": lambda w, c, t: w.services.spend.total_usage(c, t.id),
    "spend.usage_by_provider": lambda w, c, t: w.services.spend.usage_by_provider(c, t.email),
    "overview.overview": lambda w, c, t: w.services.overview.overview(c, sync_if_older_than=0),
    "generation.count_tokens": lambda w, c, t: w.services.generation.count_tokens(c, "sandbox-chat", CHAT),
    "generation.generate": lambda w, c, t: w.services.generation.generate(c, t.id, "sandbox-chat", CHAT),
    "generation.stream": lambda w, c, t: "".join(w.services.generation.stream(c, t.email, "sandbox-chat", CHAT)),
    "playground.available_credits": lambda w, c, t: w.services.playground.available_credits(c, t.id),
    "playground.catalog": lambda w, c, t: w.services.playground.catalog(c),
    "playground.compare": lambda w, c, t: w.services.playground.compare(c, t, _sandbox_pair(w), "hi"),
    "playground.payers": lambda w, c, t: {u.email for u in w.services.playground.payers(c)},
    "models.get": lambda w, c, t: w.services.models.get(c, "gpt-4o"),
    "models.hardware": lambda w, c, t: w.services.models.hardware(c),
    "models.list": lambda w, c, t: w.services.models.list(c),
    "models.price_history": lambda w, c, t: w.services.models.price_history(c),
    "models.quote": lambda w, c, t: w.services.models.quote(
        c, w.services.models.get(SYSTEM, "gpt-4o"), Usage(input_tokens=1000), Decimal(100)
    ),
    "models.typical_costs": lambda w, c, t: w.services.models.typical_costs(c, w.services.models.list(SYSTEM)),
    "models.review_prices": lambda w, c, t: w.services.models.review_prices(
        c, w.services.models.get(SYSTEM, "gpt-4o").id, {"input_per_1m_usd": f"2.{next(w.names):03d}"}
    ),
    "models.update_prices": lambda w, c, t: w.services.models.update_prices(
        c, w.services.models.get(SYSTEM, "gpt-4o").id, {"input_per_1m_usd": f"2.{next(w.names):03d}"}
    ),
    "endpoints.configuration_problem": lambda w, c, t: w.services.endpoints.configuration_problem(c),
    "endpoints.create": lambda w, c, t: w.services.endpoints.create(
        c, w.fresh("new"), "facebook/mms-tts-eng", "T4", owner=t.email
    ),
    "endpoints.delete": _endpoint_action("delete"),
    "endpoints.demo": _demo,
    "endpoints.detail": lambda w, c, t: w.services.endpoints.detail(c, w.endpoint(t)),
    "endpoints.hardware_options": lambda w, c, t: w.services.endpoints.hardware_options(c),
    "endpoints.is_local": lambda w, c, t: w.services.endpoints.is_local(c),
    "endpoints.meter": lambda w, c, t: w.services.endpoints.meter(c, refresh=False),
    "endpoints.overview": lambda w, c, t: {r.endpoint.owner_email for r in w.services.endpoints.overview(c).rows},
    "endpoints.owners": lambda w, c, t: set(w.services.endpoints.owners(c)),
    "endpoints.pause": _endpoint_action("pause"),
    "endpoints.refresh": _endpoint_action("refresh"),
    "endpoints.resume": _endpoint_action("resume"),
    "endpoints.scale_to_zero": _endpoint_action("scale_to_zero"),
    "endpoints.wait_until": _endpoint_action("wait_until"),
    "breakeven.default_range": lambda w, c, t: w.services.breakeven.default_range(c),
    "breakeven.defaults": lambda w, c, t: w.services.breakeven.defaults(c, "gpt-4o"),
    "breakeven.model_ids": lambda w, c, t: w.services.breakeven.model_ids(c),
    "breakeven.simulate": lambda w, c, t: w.services.breakeven.simulate(
        c, BreakevenInput(requests_per_hour=60, hours=24)
    ),
    "optimize.pricing_defaults": lambda w, c, t: w.services.optimize.pricing_defaults(c),
    "optimize.pricing_lab": lambda w, c, t: w.services.optimize.pricing_lab(c, markup_pct=Decimal(80)),
    "optimize.savings": lambda w, c, t: w.services.optimize.savings(c, sync_if_older_than=0),
    "optimize.savings_report": lambda w, c, t: w.services.optimize.savings_report(c),
    "optimize.what_if": lambda w, c, t: w.services.optimize.what_if(c, PricingScenario(markup_pct=Decimal(80))),
    "budgets.add_team": lambda w, c, t: w.services.budgets.add_team(c, w.fresh("team")),
    "budgets.add_webhook": lambda w, c, t: w.services.budgets.add_webhook(c, w.fresh("hook"), "https://hooks.x.io/a"),
    "budgets.alerts": lambda w, c, t: {a.user_email for a in w.services.budgets.alerts(c)},
    "budgets.banners": lambda w, c, t: w.services.budgets.banners(c),
    "budgets.budgets": lambda w, c, t: {b.user_email for b in w.services.budgets.budgets(c)},
    "budgets.change_team": lambda w, c, t: w.services.budgets.change_team(c, w.team_owned_by(t), owner=t.email),
    "budgets.deliveries": lambda w, c, t: w.services.budgets.deliveries(c),
    "budgets.dismiss": lambda w, c, t: w.services.budgets.dismiss(c, w.alert_about(t)),
    "budgets.members": lambda w, c, t: w.services.budgets.members(c, w.team_owned_by(t)),
    "budgets.page": lambda w, c, t: {b.user_email for b in w.services.budgets.page(c).budgets},
    "budgets.remove_budget": lambda w, c, t: w.services.budgets.remove_budget(
        c, w.services.budgets.set_budget(SYSTEM, team=w.team_owned_by(t), credits=10).id
    ),
    "budgets.remove_webhook": lambda w, c, t: w.services.budgets.remove_webhook(
        c, w.services.budgets.add_webhook(SYSTEM, w.fresh("hook"), "https://hooks.x.io/b")[0].id
    ),
    "budgets.run_alerts": lambda w, c, t: w.services.budgets.run_alerts(c, deliver=False, anomalies=False),
    "budgets.set_budget": lambda w, c, t: w.services.budgets.set_budget(c, user=t.id, credits=1000),
    "budgets.teams": lambda w, c, t: {tm.owner_email for tm in w.services.budgets.teams(c)},
    "budgets.webhooks": lambda w, c, t: w.services.budgets.webhooks(c),
    "demo.has_usage": lambda w, c, t: w.services.demo.has_usage(c),
    "demo.write_history": lambda w, c, t: w.services.demo.write_history(c, rows=200, days=3, seed=1, replace=True),
    "keys.admit": lambda w, c, t: w.services.keys.admit(c, w.services.keys.create(SYSTEM, t.id, "k").secret),
    "keys.authenticate": lambda w, c, t: w.services.keys.authenticate(
        c, w.services.keys.create(SYSTEM, t.id, "k").secret
    ),
    "keys.create": lambda w, c, t: w.services.keys.create(c, t.id, w.fresh("key")),
    "keys.list": lambda w, c, t: {k.owner_email for k in w.services.keys.list(c)},
    "keys.models": lambda w, c, t: w.services.keys.models(c),
    "keys.model": lambda w, c, t: w.services.keys.model(c, "sandbox-chat"),
    "keys.revoke": lambda w, c, t: w.services.keys.revoke(c, t.id, w.services.keys.create(SYSTEM, t.id, "k").key.id),
}
# Methods whose "own" means "shows only the caller's own": the call returns the accounts it shows.
SHOWS = {
    "users.list",
    "ledger.balances",
    "spend.options",
    "spend.teams",
    "playground.payers",
    "endpoints.overview",
    "endpoints.owners",
    "budgets.alerts",
    "budgets.budgets",
    "budgets.page",
    "budgets.teams",
    "keys.list",
}


def test_every_public_service_method_is_guarded_and_in_the_table() -> None:
    found = {name: rule for name, _, rule in public_methods()}
    unguarded = sorted(n for n, r in found.items() if r is None)
    assert not unguarded, f"service methods without an access rule: {unguarded}"
    assert set(found) == set(EXPECTED) == set(CALLS)


def test_the_declared_rules_give_the_table() -> None:
    declared = {row["method"]: tuple(row[r] for r in ("admin", "finance", "engineer", "pm")) for row in matrix()}
    assert declared == EXPECTED
    assert all(row["system"] == "yes" for row in matrix()) and ROLES[-1] == "system"


def _outcome(world: World, method: str, caller: Caller, target: UserView) -> tuple[str, Any]:
    try:
        return "allowed", CALLS[method](world, caller, target)
    except PermissionDeniedError:
        return "denied", None


@pytest.mark.parametrize("method", list(EXPECTED))
def test_calls_behave_as_the_table_says(world: World, method: str) -> None:
    # the "other" pm's data must exist in the analytics copy for the spend questions
    for who in CALLERS:
        caller = principal(world, who)
        verdict = "yes" if who == "system" else EXPECTED[method][("admin", "finance", "engineer", "pm").index(who)]
        own, other = world.me(caller), world.someone_else(caller)
        if method in SHOWS:
            result, shown = _outcome(world, method, caller, own)
            assert result == ("denied" if verdict == "no" else "allowed"), (method, who)
            if verdict == "yes":
                assert other.email in shown or method == "endpoints.overview", (method, who, shown)
            elif verdict == "own":
                assert shown <= {own.email}, (method, who, shown)
            continue
        result, _ = _outcome(world, method, caller, other)
        assert result == ("allowed" if verdict == "yes" else "denied"), (method, who, "someone else's")
        if verdict == "own":
            result, _ = _outcome(world, method, caller, own)
            assert result == "allowed", (method, who, "their own")


def test_endpoint_owners_see_their_own(world: World) -> None:
    """A PM who owns an endpoint sees it (and only it); an engineer sees every endpoint."""
    mine = world.endpoint(world.users["pm"])
    theirs = world.endpoint(world.users["other"])
    pm = Principal.of(world.users["pm"])
    seen = {r.endpoint.name for r in world.services.endpoints.overview(pm).rows}
    assert mine in seen and theirs not in seen
    assert world.services.endpoints.detail(pm, mine).endpoint.name == mine
    eng = {r.endpoint.name for r in world.services.endpoints.overview(Principal.of(world.users["engineer"])).rows}
    assert {mine, theirs} <= eng


def test_role_enum_covers_the_table() -> None:
    assert [str(r) for r in Role] == ["admin", "finance", "engineer", "pm"]


def test_an_engineer_bills_endpoints_only_to_themselves(world: World) -> None:
    """The owner choice an engineer sees is themselves; naming someone else is refused by the service itself (a
    forged form changes nothing); an admin may bill anyone, themselves listed first."""
    eng = Principal.of(world.users["engineer"])
    admin = Principal.of(world.users["admin"])
    assert world.services.endpoints.owners(eng) == ["engineer@x.io"]
    everyone = world.services.endpoints.owners(admin)
    assert everyone[0] == "admin@x.io" and {"other@x.io", "engineer@x.io"} <= set(everyone)
    with pytest.raises(PermissionDeniedError, match="another user pays"):
        world.services.endpoints.create(eng, world.fresh("forged"), "facebook/mms-tts-eng", "T4", owner="other@x.io")
    mine = world.services.endpoints.create(eng, world.fresh("mine"), "facebook/mms-tts-eng", "T4", owner=eng.email)
    assert mine.owner_email == "engineer@x.io"
    theirs = world.services.endpoints.create(
        admin, world.fresh("for-pm"), "facebook/mms-tts-eng", "T4", owner="pm@x.io"
    )
    assert theirs.owner_email == "pm@x.io"
