"""Substitution hints: where a cheaper model of the same category already carries most of a person's requests, the
rest of their requests in that category on pricier models, and what moving them would save.

A hint, never a recommendation: the cheaper model may answer worse, and quality is not measured here. Costs per
request are each person's own (their prompts' sizes), from the period's successful calls; teams are not modelled yet,
so hints are per person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, timedelta
from decimal import Decimal

import pandas as pd

from core.analytics.filters import SpendFilter, local_midnight_utc, zone
from core.analytics.queries import SpendQueries
from core.catalog.types import ModelPrice
from core.db.models import DEPLOYMENT_TYPES
from core.optimize.dedicated import MIN_MONTHLY_SAVING
from core.optimize.opportunity import Kind, Opportunity, usd
from core.optimize.period import Period

MOST = 0.5  # "most of the traffic": more than half of the person's requests in the category


def _person_mix(queries: SpendQueries, period: Period) -> pd.DataFrame:
    """Requests and provider cost per person, category and model in the period: serverless calls, cache hits out.

    Read through the spend queries, so whole local days come from the daily rollup (about twenty times fewer rows);
    the period's end is taken to the next local midnight, which adds nothing (the store holds no row after its sync)."""
    last_day = (period.end - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(zone(queries.tz)).date()
    f = SpendFilter(
        start=period.start,
        end=local_midnight_utc(last_day + timedelta(days=1), queries.tz),
        deployment_types=tuple(d for d in DEPLOYMENT_TYPES if d != "dedicated"),
        kinds=("usage",),
    )
    return queries.breakdown(["user", "category", "model"], f).frame


def substitution_hints(queries: SpendQueries, period: Period, models: Sequence[ModelPrice]) -> list[Opportunity]:
    by_key = {(m.provider, m.model_id): m for m in models}
    mix: dict[tuple[str, str], list[tuple[ModelPrice, int, int, Decimal]]] = defaultdict(list)
    for r in _person_mix(queries, period).to_dict("records"):
        model = by_key.get((r["model_provider"], r["model"]))
        ok = int(r["requests"]) - int(r["failed"]) - int(r["cache_hits"])  # successful calls that reached a provider
        if model is not None and ok > 0:
            cost = r["base_cost_usd"] - r["cache_saving_usd"]
            mix[(r["user"], r["category"])].append((model, int(r["requests"]) - int(r["cache_hits"]), ok, cost))
    out = []
    for (who, category), rows in mix.items():
        total = sum(r[1] for r in rows)
        cheap, main_requests, main_ok, main_cost = max(rows, key=lambda r: (r[1], r[0].key))
        if len(rows) < 2 or main_requests <= MOST * total:
            continue
        main_per = main_cost / main_ok
        for dear, _requests, ok, cost in rows:
            per = cost / ok
            if dear is cheap or per <= main_per:
                continue
            monthly = period.per_month(ok * (per - main_per))
            if monthly < MIN_MONTHLY_SAVING:
                continue
            share = main_requests / total
            out.append(
                Opportunity(
                    kind=Kind.SUBSTITUTION,
                    subject=who,
                    action=(
                        f"hint: {who} already sends {share:.0%} of their {category} requests to {cheap.model_id} "
                        f"(${main_per:.4f}/request); moving the {ok:,} on {dear.model_id} (${per:.4f}/request) would "
                        f"save about {usd(monthly)}/month, if its answers are good enough (quality is not measured)"
                    ),
                    monthly_saving_usd=monthly,
                    hint=True,
                    evidence={
                        "user": who,
                        "category": category,
                        "cheaper_model": cheap.key,
                        "cheaper_share_of_requests": round(share, 4),
                        "cheaper_cost_per_request_usd": f"{main_per:.6f}",
                        "model": dear.key,
                        "requests": ok,
                        "cost_per_request_usd": f"{per:.6f}",
                        "cost_usd": f"{cost:.2f}",
                    },
                )
            )
    return out
