"""Repeated identical requests (the same request fingerprint on the same model) that reached the provider, and what
the response cache would have saved by answering them, at the provider's price.

In each group of identical successful requests in the period, the first one has to reach the provider; every later
one that did too (not a cache hit) is a saving missed: its recorded provider cost. Caching is on for text-to-speech and
transcription (core/providers/response_cache.py), where a miss means the request skipped the cache (`no_cache`) or
its answer was not kept; for other categories the cache is off, and answers to identical prompts may differ
(sampling), so the action says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import duckdb

from core.catalog.types import ModelPrice
from core.money import dollars
from core.optimize.dedicated import MIN_MONTHLY_SAVING
from core.optimize.opportunity import Kind, Opportunity
from core.optimize.period import Period
from core.providers.response_cache import CACHEABLE
from core.providers.types import Category

# Per model: groups of identical requests seen more than once, the requests in them, and the provider cost of the
# repeats that missed the cache. Two passes: the fingerprints seen twice or more (one cheap count over every row), then
# the details of those groups only (most requests are asked once, and their groups would cost the most to detail).
# A fingerprint covers the provider and the model, so it alone identifies a group. Parameters: start, end (twice).
REPEATS_SQL = """
WITH repeated AS (
    SELECT request_fp FROM ai_usage_log
    WHERE created_at >= ? AND created_at < ? AND status = 'success' AND NOT sandbox AND request_fp IS NOT NULL
    GROUP BY request_fp HAVING count(*) > 1
), g AS (
    SELECT any_value(l.ai_model_id) AS ai_model_id, count(*) AS n, count(*) FILTER (WHERE l.cache_hit) AS hits,
           coalesce(sum(l.base_nano) FILTER (WHERE NOT l.cache_hit), 0) AS miss_nano,
           arg_min(l.base_nano, l.id) AS first_nano, arg_min(l.cache_hit, l.id) AS first_hit
    FROM ai_usage_log l SEMI JOIN repeated r ON r.request_fp = l.request_fp
    WHERE l.created_at >= ? AND l.created_at < ? AND l.status = 'success' AND NOT l.sandbox
    GROUP BY l.request_fp
)
SELECT ai_model_id, count(*)::BIGINT AS groups, sum(n)::BIGINT AS requests, sum(n - 1)::BIGINT AS repeats,
       sum(hits)::BIGINT AS hits,
       sum(n - hits - CASE WHEN first_hit THEN 0 ELSE 1 END)::BIGINT AS missed,
       sum(miss_nano - CASE WHEN first_hit THEN 0 ELSE first_nano END)::BIGINT AS missed_nano
FROM g GROUP BY ai_model_id
"""


def cache_opportunities(
    con: duckdb.DuckDBPyConnection, period: Period, models: Sequence[ModelPrice]
) -> list[Opportunity]:
    by_pk = {m.id: m for m in models}
    out = []
    for pk, groups, requests, repeats, hits, missed, missed_nano in con.execute(
        REPEATS_SQL, [period.start, period.end] * 2
    ).fetchall():
        model = by_pk.get(pk)
        cost = Decimal(int(missed_nano or 0)).scaleb(-9)
        monthly = period.per_month(cost)
        if model is None or missed <= 0 or monthly < MIN_MONTHLY_SAVING:
            continue
        caching_on = Category(model.category) in CACHEABLE and model.provider != "sandbox"
        if caching_on:
            action = (
                f"{_counted(missed, f'repeated {model.model_id} request')} reached the provider although the response "
                "cache is on "
                f"(sent with no_cache, or answers it did not keep): serving {'it' if missed == 1 else 'them'} from the "
                "cache saves about "
                f"{dollars(monthly)}/month"
            )
        else:
            action = (
                f"cache {model.model_id}'s answers to identical requests: {_counted(missed, 'repeat')} of "
                f"{_counted(groups, 'distinct request')} reached the provider, about {dollars(monthly)}/month "
                f"(the cache is off for {model.category}; "
                "identical prompts may still deserve fresh answers)"
            )
        out.append(
            Opportunity(
                kind=Kind.CACHE,
                subject=model.model_id,
                action=action,
                monthly_saving_usd=monthly,
                evidence={
                    "model": model.key,
                    "category": model.category,
                    "caching": "on" if caching_on else "off",
                    "repeated_requests": int(groups),
                    "requests_in_repeated_groups": int(requests),
                    "repeats": int(repeats),
                    "served_from_cache": int(hits),
                    "missed": int(missed),
                    "missed_cost_usd": f"{cost:.2f}",
                },
            )
        )
    return out


def _counted(n: int, noun: str) -> str:
    """`n` and its noun agreeing with it: `1 repeat`, `60 repeats`."""
    return f"{int(n):,} {noun}" + ("" if n == 1 else "s")
