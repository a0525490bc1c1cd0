"""Optimize: where money is lost in real traffic (Savings), and what another markup, credit price or rounding policy
would have made of it (the Pricing lab). What each page draws comes in one call: frozen views with exact money and
chart-ready frames; the command line gets the reports themselves.

Savings is for admins, engineers and finance; its substitution hints name people and teams and what they spend, so
they are left out for anyone who may not see everyone's spend. The Pricing lab replays everyone's history: finance
and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pandas as pd
from sqlalchemy.orm import Session

from core.access import Caller, Capability, guarded, sees_everyone
from core.analytics.copy import STALE_AFTER_SECONDS
from core.analytics.queries import SpendQueries
from core.config import ROUNDING_POLICIES, Settings
from core.money import price_text
from core.optimize.opportunity import EndpointForm, Kind
from core.optimize.pricing import AS_BILLED, PricingScenario, WhatIf, what_if
from core.optimize.savings import SavingsReport, find_savings
from core.users import list_users

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "AS_BILLED",
    "KIND_LABELS",
    "ROUNDING_POLICIES",
    "Kind",
    "OpportunityRow",
    "OptimizeService",
    "PricingDefaults",
    "PricingLabView",
    "PricingScenario",
    "SavingsReport",
    "SavingsView",
    "WhatIf",
]

KIND_LABELS = {
    Kind.DEDICATED: "Dedicated GPU",
    Kind.ENDPOINT: "Endpoint settings",
    Kind.CACHE: "Repeated requests",
    Kind.SUBSTITUTION: "Cheaper model (hint)",
}
EVIDENCE_LABELS = {
    "model": "model",
    "endpoint": "endpoint",
    "user": "person",
    "team": "team",
    "category": "category",
    "requests": "requests in the period",
    "serverless_cost_usd": "serverless provider cost in the period ($)",
    "serverless_cost_per_request_usd": "serverless cost per request ($)",
    "serverless_monthly_usd": "serverless, a month ($)",
    "serverless_price": "serverless priced as",
    "metered_hours": "metered hours",
    "metered_cost_usd": "metered uptime cost in the period ($)",
    "metered_monthly_usd": "metered uptime, a month ($)",
    "simulated_current_monthly_usd": "current settings replayed, a month ($)",
    "billed_minutes": "billed minutes",
    "busy_minutes": "minutes with a request",
    "idle_share_of_billed_minutes": "idle share of billed minutes",
    "hardware": "hardware now",
    "min_replicas": "min replicas now",
    "max_replicas": "max replicas now",
    "scale_to_zero_minutes": "scale to zero after (min) now",
    "mean_requests_per_hour": "mean requests/hour",
    "peak_requests_per_hour": "busiest 15 minutes (requests/hour)",
    "option": "recommended option",
    "idle_timeout_minutes": "idle timeout (min)",
    "option_monthly_usd": "recommended option, a month ($)",
    "replicas": "replicas",
    "billed_hours_per_month": "billed replica-hours a month",
    "utilization": "utilization",
    "cold_start_fraction": "requests meeting a cold start",
    "p95_latency_s": "p95 latency (s)",
    "p95_target_s": "p95 target (s)",
    "break_even_requests_per_hour": "always-on break-even (requests/hour)",
    "caching": "response cache",
    "repeated_requests": "distinct requests asked more than once",
    "requests_in_repeated_groups": "requests among them",
    "repeats": "repeats",
    "served_from_cache": "served from the cache",
    "missed": "repeats that reached the provider",
    "missed_cost_usd": "their provider cost in the period ($)",
    "cheaper_model": "cheaper model",
    "cheaper_share_of_requests": "its share of the requests",
    "cheaper_cost_per_request_usd": "its cost per request ($)",
    "cost_per_request_usd": "cost per request ($)",
    "cost_usd": "cost in the period ($)",
}


@dataclass(frozen=True, kw_only=True)
class OpportunityRow:
    rank: int
    kind: str  # the Kind's value
    kind_label: str
    subject: str
    action: str
    monthly_saving_usd: Decimal
    hint: bool
    evidence: tuple[tuple[str, str], ...]  # (label, value as text), in display order
    endpoint_form: EndpointForm | None  # set for endpoint opportunities the Endpoints create form can act on
    create_link: str | None  # the Endpoints page with that form filled in (`/endpoints?create_model=...`)


@dataclass(frozen=True, kw_only=True)
class SavingsView:
    period: str  # in words
    as_of: datetime
    monthly_saving_usd: Decimal  # without hints
    rows: tuple[OpportunityRow, ...]  # largest monthly saving first
    by_kind: dict[str, Decimal]  # kind label -> monthly saving
    table: pd.DataFrame  # one row per opportunity: what the page lists and the CSV holds


SHARES = frozenset({"utilization", "cold_start_fraction", "idle_share_of_billed_minutes", "cheaper_share_of_requests"})


def _usd_text(key: str, value: Decimal) -> str:
    """Money as the pages write it: totals in cents with separators, per-request prices by the pages' price rule
    with three significant digits (`0.00046` and `0.000028` stay apart), never `1.2E-7`; the label says "($)"."""
    if "per_request" in key:
        return price_text(value, digits=3)
    return f"{value:,.2f}"


def _text(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in SHARES:
        return f"{value:.1%}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if key.endswith("_usd") and isinstance(value, Decimal | float | str):
        try:
            return _usd_text(key, Decimal(str(value)))
        except ArithmeticError:  # not a number after all: as it is
            return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def create_link(form: EndpointForm) -> str:
    """The Endpoints page's address with its create form filled in (the page reads these query parameters)."""
    params = {
        "create_name": form.name,
        "create_model": form.model_repo,
        "create_hardware": form.hardware,
        "create_min": form.min_replicas,
        "create_max": form.max_replicas,
    }
    if form.scale_to_zero_minutes:
        params["create_idle"] = form.scale_to_zero_minutes
    return "/endpoints?" + urlencode(params)


def savings_view(
    queries: SpendQueries,
    session: Session,
    *,
    since: date | None = None,
    until: date | None = None,
    kinds: tuple[str, ...] = (),
) -> SavingsView:
    """The Savings page: every opportunity of the period (of the chosen kinds; all when none is chosen)."""
    wanted = tuple(Kind(k) for k in kinds) or tuple(Kind)
    report = find_savings(queries, session, since=since, until=until, kinds=wanted)
    rows = tuple(
        OpportunityRow(
            rank=i,
            kind=o.kind.value,
            kind_label=KIND_LABELS[o.kind],
            subject=o.subject,
            action=o.action,
            monthly_saving_usd=o.monthly_saving_usd,
            hint=o.hint,
            evidence=tuple((EVIDENCE_LABELS.get(k, k.replace("_", " ")), _text(k, v)) for k, v in o.evidence.items()),
            endpoint_form=o.endpoint_form,
            create_link=None if o.endpoint_form is None else create_link(o.endpoint_form),
        )
        for i, o in enumerate(report.opportunities, 1)
    )
    by_kind: dict[str, Decimal] = {}
    for r in rows:
        by_kind[r.kind_label] = by_kind.get(r.kind_label, Decimal(0)) + r.monthly_saving_usd
    table = pd.DataFrame(
        [
            {
                "rank": r.rank,
                "saving_per_month_usd": r.monthly_saving_usd,
                "kind": r.kind_label,
                "subject": r.subject,
                "action": r.action,
            }
            for r in rows
        ],
        columns=["rank", "saving_per_month_usd", "kind", "subject", "action"],
    )
    return SavingsView(
        period=report.period.label(),
        as_of=report.as_of,
        monthly_saving_usd=report.monthly_saving_usd,
        rows=rows,
        by_kind=by_kind,
        table=table,
    )


@dataclass(frozen=True, kw_only=True)
class PricingDefaults:
    """Where the lab's controls start: the settings in force."""

    credit_usd: Decimal
    default_markup_pct: Decimal
    rounding_policy: str
    rounding_choices: tuple[str, ...]  # "as_billed" first
    users: tuple[str, ...]  # emails a per-person markup can name
    markups: dict[str, Decimal]  # each person's configured markup (%), where their per-person markup starts


def pricing_defaults(
    queries: SpendQueries, settings: Settings, markups: dict[str, Decimal] | None = None
) -> PricingDefaults:
    con = queries.store.connect()
    try:
        users = tuple(e for (e,) in con.execute("SELECT email FROM users ORDER BY email").fetchall())
    finally:
        con.close()
    return PricingDefaults(
        credit_usd=settings.credit_usd,
        default_markup_pct=settings.default_markup_pct,
        rounding_policy=settings.rounding_policy,
        rounding_choices=(AS_BILLED, *ROUNDING_POLICIES),
        users=users,
        markups=dict(markups or {}),
    )


@dataclass(frozen=True, kw_only=True)
class PricingLabView:
    period: str
    as_of: datetime
    result: WhatIf
    comparison: pd.DataFrame  # measure, billed_usd, what_if_usd, difference_usd (exact): the side-by-side table
    chart: pd.DataFrame  # measure, side, usd (float): the grouped bar chart
    user_differences: pd.DataFrame  # user, difference_usd (float), the biggest changes first: a bar chart


COMPARED = (
    ("revenue", "revenue_usd"),
    ("margin", "margin_usd"),
    ("rounding beyond markup", "rounding_beyond_markup_usd"),
    ("marked-up cost", "marked_up_cost_usd"),
    ("refunds", "refunds_usd"),
)


def pricing_lab_view(
    queries: SpendQueries,
    *,
    markup_pct: Decimal | None = None,
    user_markups: tuple[tuple[str, Decimal], ...] = (),
    credit_usd: Decimal | None = None,
    rounding: str = AS_BILLED,
    since: date | None = None,
    until: date | None = None,
    top_users: int = 15,
) -> PricingLabView:
    """The Pricing lab page: the what-if beside what was billed, a comparison chart and who pays more or less."""
    scenario = PricingScenario(
        markup_pct=markup_pct,
        user_markups=user_markups,
        credit_usd=credit_usd,
        rounding=None if rounding == AS_BILLED else rounding,
    )
    result = what_if(queries, scenario, since=since, until=until)
    rows = [
        {
            "measure": label,
            "billed_usd": getattr(result.billed, name),
            "what_if_usd": getattr(result.what_if, name),
            "difference_usd": getattr(result.what_if, name) - getattr(result.billed, name),
        }
        for label, name in COMPARED
    ]
    comparison = pd.DataFrame(rows, columns=["measure", "billed_usd", "what_if_usd", "difference_usd"])
    chart = pd.DataFrame(
        [
            {"measure": r["measure"], "side": side, "usd": float(r[col])}
            for r in rows[:4]
            for side, col in (("billed", "billed_usd"), ("what-if", "what_if_usd"))
        ],
        columns=["measure", "side", "usd"],
    )
    changed = result.by_user[result.by_user["difference_usd"] != 0].head(top_users)
    user_differences = pd.DataFrame(
        {"user": list(changed["user"]), "difference_usd": [float(v) for v in changed["difference_usd"]]},
        columns=["user", "difference_usd"],
    )
    return PricingLabView(
        period=result.period.label(),
        as_of=result.as_of,
        result=result,
        comparison=comparison,
        chart=chart,
        user_differences=user_differences,
    )


class OptimizeService:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _queries(self, sync_if_older_than: float | None) -> SpendQueries:
        return self._s.analytics.queries(sync_if_older_than=sync_if_older_than)

    @staticmethod
    def _kinds(caller: Caller, kinds: tuple[str, ...]) -> tuple[str, ...]:
        """The kinds asked for (all when none), without substitution hints for those who may not see everyone's."""
        wanted = kinds or tuple(k.value for k in Kind)
        return tuple(k for k in wanted if k != Kind.SUBSTITUTION.value or sees_everyone(caller))

    @guarded(Capability.FIND_SAVINGS, scoped=(Capability.VIEW_ALL_SPEND,))
    def savings(
        self,
        caller: Caller,
        *,
        since: date | None = None,
        until: date | None = None,
        kinds: tuple[str, ...] = (),
        sync_if_older_than: float | None = None,
    ) -> SavingsView:
        """The Savings page: every opportunity of local days `since`..`until` (default the last 30) of the kinds."""
        with self._s.db.session() as s:
            return savings_view(
                self._queries(sync_if_older_than), s, since=since, until=until, kinds=self._kinds(caller, kinds)
            )

    @guarded(Capability.FIND_SAVINGS, scoped=(Capability.VIEW_ALL_SPEND,))
    def savings_report(
        self,
        caller: Caller,
        *,
        since: date | None = None,
        until: date | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> SavingsReport:
        """The opportunities themselves, with their evidence (`python -m core optimize`)."""
        wanted = tuple(Kind(k) for k in self._kinds(caller, ()))
        with self._s.db.session() as s:
            return find_savings(self._queries(sync_if_older_than), s, since=since, until=until, kinds=wanted)

    @guarded(Capability.VIEW_ALL_SPEND)
    def pricing_defaults(self, caller: Caller) -> PricingDefaults:
        """What the Pricing lab's controls start from: today's credit price, markup, rounding policy, and the people
        with the markup each is configured at now."""
        with self._s.db.session() as s:
            markups = {u.email: u.developer_markup_pct for u in list_users(s)}
        return pricing_defaults(self._queries(None), self._s.settings, markups)

    @guarded(Capability.VIEW_ALL_SPEND)
    def pricing_lab(
        self,
        caller: Caller,
        *,
        markup_pct: Decimal | None = None,
        user_markups: tuple[tuple[str, Decimal], ...] = (),
        credit_usd: Decimal | None = None,
        rounding: str = AS_BILLED,
        since: date | None = None,
        until: date | None = None,
        sync_if_older_than: float | None = None,
    ) -> PricingLabView:
        """The Pricing lab page: the what-if beside what was billed, a comparison chart and who pays more or less."""
        return pricing_lab_view(
            self._queries(sync_if_older_than),
            markup_pct=markup_pct,
            user_markups=user_markups,
            credit_usd=credit_usd,
            rounding=rounding,
            since=since,
            until=until,
        )

    @guarded(Capability.VIEW_ALL_SPEND)
    def what_if(
        self,
        caller: Caller,
        scenario: PricingScenario,
        *,
        since: date | None = None,
        until: date | None = None,
        sync_if_older_than: float | None = STALE_AFTER_SECONDS,
    ) -> WhatIf:
        """Replay local days `since`..`until` under `scenario` (`python -m core pricing whatif`)."""
        return what_if(self._queries(sync_if_older_than), scenario, since=since, until=until)
