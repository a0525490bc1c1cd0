"""Substitution hints: where a cheaper model of the same category already carries most of a person's requests, the
rest of their requests in that category on pricier models, and what moving them would save.

A hint, never a recommendation: the cheaper model may answer worse, and quality is not measured here. Costs per
request are each person's own (their prompts' sizes), from the period's successful calls; teams are not modelled yet,
so hints are per person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import duckdb

from core.catalog.types import ModelPrice
from core.optimize.dedicated import MIN_MONTHLY_SAVING
from core.optimize.opportunity import Kind, Opportunity, usd
from core.optimize.period import Period

MOST = 0.5  # "most of the traffic": more than half of the person's requests in the category

MIX_SQL = """
SELECT user_id, category, ai_model_id, sum(requests_count)::BIGINT AS requests,
       coalesce(sum(requests_count) FILTER (WHERE status = 'success'), 0)::BIGINT AS ok,
       coalesce(sum(base_nano) FILTER (WHERE status = 'success'), 0)::BIGINT AS cost_nano
FROM ai_usage_log
WHERE created_at >= ? AND created_at < ? AND NOT sandbox AND NOT cache_hit AND deployment_type <> 'dedicated'
  AND ai_model_id IS NOT NULL
GROUP BY ALL
"""


def substitution_hints(
    con: duckdb.DuckDBPyConnection, period: Period, models: Sequence[ModelPrice]
) -> list[Opportunity]:
    by_pk = {m.id: m for m in models}
    emails = dict(con.execute("SELECT id, email FROM users").fetchall())
    mix: dict[tuple[int, str], list[tuple[int, int, int, Decimal]]] = defaultdict(list)
    for uid, category, pk, requests, ok, cost_nano in con.execute(MIX_SQL, [period.start, period.end]).fetchall():
        if pk in by_pk and ok > 0:
            mix[(uid, category)].append((pk, int(requests), int(ok), Decimal(int(cost_nano)).scaleb(-9)))
    out = []
    for (uid, category), rows in mix.items():
        total = sum(r[1] for r in rows)
        main_pk, main_requests, main_ok, main_cost = max(rows, key=lambda r: (r[1], -r[0]))
        if len(rows) < 2 or main_requests <= MOST * total:
            continue
        main_per = main_cost / main_ok
        for pk, _requests, ok, cost in rows:
            per = cost / ok
            if pk == main_pk or per <= main_per:
                continue
            monthly = period.per_month(ok * (per - main_per))
            if monthly < MIN_MONTHLY_SAVING:
                continue
            cheap, dear = by_pk[main_pk], by_pk[pk]
            who = emails.get(uid, f"user {uid}")
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
