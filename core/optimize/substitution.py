"""Substitution hints: where a cheaper model of the same category already carries most of a person's or a team's
requests, the rest of their requests in that category on pricier models, and what moving them would save.

A hint, never a recommendation: the cheaper model may answer worse, and quality is not measured here. Costs per
request are the person's or the team's own (their prompts' sizes), from the period's successful calls. A team's mix
is its current members' (as the spend analytics group by team: moving someone moves their history with them); a
team hint is given only where two or more members have traffic in the category, since a team of one says what that
person's own hint says. Team and person hints can overlap (a member's requests are in both), which is one more
reason hints stay out of the savings total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal

import pandas as pd

from core.analytics.filters import SpendFilter, local_midnight_utc, zone
from core.analytics.queries import SpendQueries
from core.catalog.types import ModelPrice
from core.db.models import DEPLOYMENT_TYPES
from core.money import dollars, price_text
from core.optimize.dedicated import MIN_MONTHLY_SAVING
from core.optimize.opportunity import Kind, Opportunity
from core.optimize.period import Period

MOST = 0.5  # "most of the traffic": more than half of the person's (or team's) requests in the category


@dataclass
class _Use:
    """One model's share of a person's or a team's requests in a category, in the period."""

    model: ModelPrice
    requests: int = 0  # that reached a provider (cache hits out), failures included: the share is of these
    ok: int = 0  # successful calls that reached a provider: what a cost per request divides by
    cost: Decimal = Decimal(0)  # their provider cost

    def add(self, requests: int, ok: int, cost: Decimal) -> None:
        self.requests += requests
        self.ok += ok
        self.cost += cost


@dataclass(frozen=True)
class _Who:
    """Whose mix it is, in the words a hint uses."""

    subject: str  # the opportunity's subject: an email, or "team <name>"
    evidence: tuple[str, str]  # ("user", email) or ("team", name)
    their: str  # "their" or "its"


def _mix(queries: SpendQueries, period: Period) -> pd.DataFrame:
    """Requests and provider cost per person (with their team now), category and model in the period: serverless
    calls, cache hits out.

    Read through the spend queries, so whole local days come from the daily rollup (about twenty times fewer rows);
    the period's end is taken to the next local midnight, which adds nothing (the store holds no row after its sync)."""
    last_day = (period.end - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(zone(queries.tz)).date()
    f = SpendFilter(
        start=period.start,
        end=local_midnight_utc(last_day + timedelta(days=1), queries.tz),
        deployment_types=tuple(d for d in DEPLOYMENT_TYPES if d != "dedicated"),
        kinds=("usage",),
    )
    return queries.breakdown(["user", "team", "category", "model"], f).frame


def _mixes(frame: pd.DataFrame, models: Sequence[ModelPrice]) -> dict[tuple[_Who, str], dict[tuple[str, str], _Use]]:
    """(who, category) -> model key -> its use, for every person and every team with two or more members in the
    category, from rows grouped by user, team, category and model."""
    by_key = {(m.provider, m.model_id): m for m in models}
    mixes: dict[tuple[_Who, str], dict[tuple[str, str], _Use]] = defaultdict(dict)
    team_members: dict[tuple[_Who, str], set[str]] = defaultdict(set)
    for r in frame.to_dict("records"):
        key = (r["model_provider"], r["model"])
        model = by_key.get(key)
        ok = int(r["requests"]) - int(r["failed"]) - int(r["cache_hits"])  # successful calls that reached a provider
        if model is None or ok <= 0:
            continue
        # a cache hit's cost is in cache_saving_usd, not in the provider cost (core.analytics.queries)
        requests, cost = int(r["requests"]) - int(r["cache_hits"]), r["base_cost_usd"]
        subjects = [_Who(r["user"], ("user", r["user"]), "their")]
        if not pd.isna(r["team_id"]):
            team = _Who(f"team {r['team']}", ("team", r["team"]), "its")
            subjects.append(team)
            team_members[(team, r["category"])].add(r["user"])
        for who in subjects:
            mixes[(who, r["category"])].setdefault(key, _Use(model)).add(requests, ok, cost)
    for group, people in team_members.items():
        if len(people) < 2:
            del mixes[group]
    return mixes


def _hints(who: _Who, category: str, uses: list[_Use], period: Period) -> list[Opportunity]:
    """The hints of one person's or team's category: none unless one model carries most of its requests."""
    total = sum(u.requests for u in uses)
    main = max(uses, key=lambda u: (u.requests, u.model.key))
    if len(uses) < 2 or main.requests <= MOST * total:
        return []
    main_per = main.cost / main.ok
    share = main.requests / total
    out = []
    for dear in uses:
        per = dear.cost / dear.ok
        if dear is main or per <= main_per:
            continue
        monthly = period.per_month(dear.ok * (per - main_per))
        if monthly < MIN_MONTHLY_SAVING:
            continue
        out.append(
            Opportunity(
                kind=Kind.SUBSTITUTION,
                subject=who.subject,
                action=(
                    f"hint: {who.subject} already sends {share:.0%} of {who.their} {category} requests to "
                    f"{main.model.model_id} (${price_text(main_per)}/request); moving the {dear.ok:,} on "
                    f"{dear.model.model_id} (${price_text(per)}/request) would save about {dollars(monthly)}/month, "
                    "if its answers are good enough (quality is not measured)"
                ),
                monthly_saving_usd=monthly,
                hint=True,
                evidence={
                    who.evidence[0]: who.evidence[1],
                    "category": category,
                    "cheaper_model": main.model.key,
                    "cheaper_share_of_requests": round(share, 4),
                    "cheaper_cost_per_request_usd": f"{main_per:.6f}",
                    "model": dear.model.key,
                    "requests": dear.ok,
                    "cost_per_request_usd": f"{per:.6f}",
                    "cost_usd": f"{dear.cost:.2f}",
                },
            )
        )
    return out


def substitution_hints(queries: SpendQueries, period: Period, models: Sequence[ModelPrice]) -> list[Opportunity]:
    """Every person's and every team's hints in the period."""
    out: list[Opportunity] = []
    for (who, category), uses in _mixes(_mix(queries, period), models).items():
        out.extend(_hints(who, category, list(uses.values()), period))
    return out
