"""Budgets & alerts: teams, spending limits per person, team and API key, and the alerts that warn before spend
surprises anyone.

Finance and admins (the manage-budgets capability) set and remove budgets, manage teams and webhooks, and run the
alerts; everyone sees the budgets that cover them (and those of the teams they own) and the alerts about them or
their team. Budgets are enforced by the ledger itself, inside `reserve` (core/billing), whoever makes the call.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

from core.access import Caller, Capability, Principal, guarded, sees_everyone
from core.alerts.delivery import AlertDelivery
from core.alerts.records import AlertLog, AlertView, DeliveryView
from core.alerts.runner import AlertRunner, RunReport
from core.alerts.webhooks import WebhookRegistry, WebhookView
from core.billing.inputs import typed_whole
from core.budgets.budgets import BudgetBook, BudgetView
from core.budgets.teams import MemberView, TeamDirectory, TeamView
from core.budgets.view import BudgetsPage, budgets_page
from core.db.models import ALERT_KINDS, BUDGET_ENFORCEMENTS, BUDGET_PERIODS, utcnow
from core.errors import InvalidInputError, PermissionDeniedError
from core.money import credits_text, credits_to_usd
from core.users import get_user

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "ALERT_KINDS",
    "BUDGET_ENFORCEMENTS",
    "BUDGET_PERIODS",
    "AlertView",
    "BudgetService",
    "BudgetView",
    "BudgetsPage",
    "DeliveryView",
    "MemberView",
    "RunReport",
    "TeamView",
    "WebhookView",
]


def overdraft_banner(who: Principal, total: int, credit_usd: Decimal) -> AlertView:
    """The banner of an account below zero (a delivered call or endpoint uptime cost more than was left): computed
    from the balance on every page, never recorded, so there is nothing to dismiss and it ends with the top-up."""
    owed = credits_to_usd(-total, credit_usd)
    return AlertView(
        id=0,
        key=f"overdraft:user={who.user_id}",
        kind="overdraft",
        severity="critical",
        created_at=utcnow(),
        message=(
            f"Your balance is {credits_text(total)}: overdrawn by {credits_text(-total)} (${owed:,.2f}). "
            "Calls that cost credits are refused until a top-up brings it back above zero; "
            "the free sandbox models still work. "
            f"Ask finance for a top-up of at least {credits_text(-total)}."
        ),
        user_id=who.user_id,
        user_email=who.email,
        team_id=None,
        team_name=None,
        budget_id=None,
        threshold_pct=None,
        period_start=None,
        period_end=None,
        details={"balance": total},
        dismissed_at=None,
    )


class BudgetService:
    def __init__(self, services: Services) -> None:
        self._s = services
        sf, settings = services.db.session_factory, services.settings
        self._book = BudgetBook(sf, settings)
        self._teams = TeamDirectory(sf)
        self._log = AlertLog(sf, settings)
        self._webhooks = WebhookRegistry(sf)

    def _user_id(self, user: int | str) -> int:
        with self._s.db.session() as s:
            return get_user(s, user).id

    # ---- teams -------------------------------------------------------------------------------------------------------
    @guarded(Capability.MANAGE_BUDGETS)
    def add_team(
        self, caller: Caller, name: str, *, owner: int | str | None = None, members: Iterable[int | str] = ()
    ) -> TeamView:
        return self._teams.add(name, owner=owner, members=members, actor=caller.actor)

    @guarded(Capability.MANAGE_BUDGETS)
    def change_team(
        self,
        caller: Caller,
        team: int | str,
        *,
        add: Iterable[int | str] = (),
        remove: Iterable[int | str] = (),
        owner: int | str | None = None,
    ) -> TeamView:
        """Add or remove members (a person belongs to one team at most) and change the owner."""
        for member in add:
            self._teams.add_member(team, member, actor=caller.actor)
        for member in remove:
            self._teams.remove_member(team, member, actor=caller.actor)
        if owner is not None:
            self._teams.set_owner(team, owner, actor=caller.actor)
        return self._teams.get(team)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def teams(self, caller: Caller) -> list[TeamView]:
        """Every team; without the view-all capability, one's own team and the teams one owns."""
        found = self._teams.list_teams()
        if sees_everyone(caller):
            return found
        mine = self._teams.team_of(caller.user_id)  # type: ignore[union-attr]
        return [t for t in found if (mine and t.id == mine.id) or t.owner_id == caller.user_id]  # type: ignore[union-attr]

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def members(self, caller: Caller, team: int | str) -> list[MemberView]:
        """A team's members: for finance and admins, and for the team's owner."""
        if not sees_everyone(caller) and self._teams.get(team).owner_id != caller.user_id:  # type: ignore[union-attr]
            raise PermissionDeniedError("Only the team's owner, finance and admins see who is in a team.")
        return self._teams.members(team)

    # ---- budgets -----------------------------------------------------------------------------------------------------
    @guarded(Capability.MANAGE_BUDGETS)
    def set_budget(
        self,
        caller: Caller,
        *,
        credits: int | str,
        user: int | str | None = None,
        team: int | str | None = None,
        api_key_id: int | str | None = None,
        period: str = "monthly",
        enforcement: str = "hard",
        thresholds: Iterable[int] | str | None = None,
        name: str | None = None,
        starts_on: date | None = None,
    ) -> BudgetView:
        """A limit in credits on one user, team or API key: per calendar month in the reporting time zone, or a one-off
        total (from `starts_on`); hard (refuse past it) or soft (allow, alert); alerts at the thresholds (percent,
        or text as typed: "50, 80, 100"). The user, team or key, and the credits, may be given as typed in a form
        ("2.5" or "1e20" credits are refused, never read as 2 or 1)."""
        if isinstance(credits, str):
            credits = typed_whole(credits, "Limit")
        if any(isinstance(ref, str) and not ref.strip() for ref in (user, team, api_key_id)):
            raise InvalidInputError(
                "Say who the budget covers: a user's email, a team's name or an API key's id (the API keys page "
                "lists the ids)."
            )
        if isinstance(api_key_id, str):
            api_key_id = api_key_id.strip()
            if not (api_key_id.isascii() and api_key_id.isdigit()):
                raise InvalidInputError(
                    f"An API key is given by its id, a whole number such as 12 (the API keys page lists them), not "
                    f"{api_key_id!r}."
                )
            api_key_id = int(api_key_id)
        starts_at = None
        if starts_on is not None:
            local = datetime.combine(starts_on, time(0), tzinfo=self._s.settings.tz)
            starts_at = local.astimezone(UTC).replace(tzinfo=None)
        return self._book.set(
            user=user,
            team=team,
            api_key_id=api_key_id,
            credits=credits,
            period=period,
            enforcement=enforcement,
            thresholds=thresholds,
            name=name,
            starts_at=starts_at,
            actor=caller.actor,
        )

    @guarded(Capability.MANAGE_BUDGETS)
    def remove_budget(self, caller: Caller, budget_id: int) -> BudgetView:
        """Stop a budget; its history stays."""
        return self._book.remove(budget_id, actor=caller.actor)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def budgets(
        self,
        caller: Caller,
        *,
        user: int | str | None = None,
        team: int | str | None = None,
        include_removed: bool = False,
    ) -> list[BudgetView]:
        """Budgets with their spend this period, holds in flight and what is left. Without the view-all capability:
        the budgets covering the caller and those of the teams they own."""
        if sees_everyone(caller):
            return self._book.list_budgets(include_removed=include_removed, covering_user=user, team=team)
        me = caller.user_id  # type: ignore[union-attr]
        own = {b.id: b for b in self._book.list_budgets(include_removed=include_removed, covering_user=me)}
        for t in self._teams.owned_by(me):
            own.update({b.id: b for b in self._book.list_budgets(include_removed=include_removed, team=t.id)})
        return sorted(own.values(), key=lambda b: b.id)

    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def page(self, caller: Caller) -> BudgetsPage:
        """Everything the Budgets & alerts page draws: budgets and their burn-down, alerts, the caller's banners, teams
        and, for finance and admins, the webhooks and the delivery log. Alerts due are evaluated first (at most once
        every ALERTS_EVERY_SECONDS per process), so a threshold passed shows without `alerts run`."""
        self._s.auto_alerts.evaluate_if_due()
        me = caller.user_id if isinstance(caller, Principal) else None
        return budgets_page(
            self._s.db.session_factory,
            self._s.settings,
            viewer_id=me,
            only_user=None if sees_everyone(caller) else me,
        )

    # ---- alerts ------------------------------------------------------------------------------------------------------
    @guarded(None, scoped=(Capability.VIEW_ALL_SPEND,))
    def alerts(
        self, caller: Caller, *, kinds: tuple[str, ...] = (), user: int | str | None = None, limit: int = 500
    ) -> list[AlertView]:
        """Newest first: every alert, or those about one person (and their team). Without the view-all capability,
        only those about the caller."""
        if not sees_everyone(caller):
            user = caller.user_id  # type: ignore[union-attr]
        user_id = team_id = None
        if user is not None:
            user_id = self._user_id(user)
            team = self._teams.team_of(user_id)
            team_id = team.id if team else None
        return self._log.list_alerts(kinds=kinds, user_id=user_id, team_id=team_id, limit=limit)

    @guarded(None)
    def banners(self, caller: Caller) -> list[AlertView]:
        """The caller's active alerts (shown as banners until dismissed), led by an overdraft banner while their
        balance is below zero (it replaces the low-balance one, and goes away with the top-up); none for the system.
        Alerts due are evaluated first, as for `page`: banners are how the Overview (and every page) shows them."""
        if not isinstance(caller, Principal):
            return []
        self._s.auto_alerts.evaluate_if_due()
        shown = self._log.banners(caller.user_id)
        total = self._s.billing.balance(caller.user_id).total
        if total >= 0:
            return shown
        return [overdraft_banner(caller, total, self._s.settings.credit_usd)] + [
            a for a in shown if a.kind != "low_balance"
        ]

    @guarded(None, scoped=(Capability.MANAGE_BUDGETS,))
    def dismiss(self, caller: Caller, alert_id: int) -> None:
        """Hide a banner: one's own, or any for those who manage budgets."""
        if not caller.can(Capability.MANAGE_BUDGETS):
            me = caller.user_id  # type: ignore[union-attr]
            team = self._teams.team_of(me)
            mine = {a.id for a in self._log.list_alerts(user_id=me, team_id=team.id if team else None)}
            if alert_id not in mine:
                raise PermissionDeniedError("You may dismiss only the alerts about you or your team.")
        self._log.dismiss(alert_id, caller.actor)

    @guarded(Capability.MANAGE_BUDGETS)
    def run_alerts(self, caller: Caller, *, deliver: bool = True, anomalies: bool = True) -> RunReport:
        """Evaluate every budget threshold, low balance and spend anomaly, record what is new (once per period and
        threshold) and deliver it: what `python -m core alerts run` does from cron; safe to repeat."""
        notes: list[str] = []
        queries = None
        if anomalies:
            try:
                queries = self._s.analytics.queries()
            except Exception as exc:
                notes.append(f"warning: spend anomalies not checked: {exc}")
        delivery = AlertDelivery(self._s.db.session_factory, self._s.settings) if deliver else None
        runner = AlertRunner(
            self._s.db.session_factory,
            self._s.settings,
            self._s.billing,
            delivery=delivery,
            spend_queries=queries,
            check_anomalies=anomalies,
        )
        report = runner.run()
        report.notes[:0] = notes
        return report

    @guarded(Capability.VIEW_ALL_SPEND)
    def deliveries(self, caller: Caller, *, limit: int = 200) -> list[DeliveryView]:
        """Every attempt to send an alert (webhook host only, secrets masked), newest first."""
        return self._log.deliveries(limit=limit)

    @guarded(Capability.MANAGE_BUDGETS)
    def add_webhook(
        self, caller: Caller, name: str, url: str, *, secret: str | None = None, kinds: tuple[str, ...] = ()
    ) -> tuple[WebhookView, str]:
        """A webhook alerts are POSTed to, signed with HMAC-SHA256; returns it and its secret, shown this once."""
        return self._webhooks.add(name, url, secret=secret, kinds=kinds)

    @guarded(Capability.VIEW_ALL_SPEND)
    def webhooks(self, caller: Caller) -> list[WebhookView]:
        return self._webhooks.list_webhooks()

    @guarded(Capability.MANAGE_BUDGETS)
    def remove_webhook(self, caller: Caller, webhook: int | str) -> None:
        self._webhooks.remove(webhook)
