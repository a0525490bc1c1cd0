"""The pricing lab's replay in SQL: every call and uptime debit of a period re-billed under another markup, credit
price or rounding policy, beside what was billed, summed per person and model.

The arithmetic is the billing service's, in whole nano-dollars and nano-credits (core/money.py and
core/billing/accrual.py), so a replay at the settings that were in force gives back the billed credits exactly:
- per call: base credits = ceil(cost / credit price); credits = ceil(base credits x (100 + markup) / 100);
- accrual: a call's exact price is ceil(cost x (100 + markup) / 100 / credit price x 10^9) nano-credits, and after
  the k-th accrual call of a person the credits debited in all are max(0, ceil((S_k - r0) / 10^9)), where S_k sums the
  exact prices so far and r0 is the remainder the account held when the period began; each call's debit is the step.
Markups are whole 1/10,000 percents (`markup_bp`: 100% = 1,000,000). `marked` is the cost with the markup and no
rounding at all, in nano-dollars x 10^6: what the markup alone earns, so rounding's share of revenue shows apart.
A call is re-billed from the cost it was priced at (`priced_nano`): its provider cost, but for a response-cache hit
the catalog cost it was charged at (0 when hits are free); the provider cost (`base_nano`, 0 for a hit) is summed
apart, for the margin.
Failed calls and calls with no cost are billed nothing either way; sandbox calls are not revenue; refunds stay as they
were. Parameters are named ($start, $end, $credit, $credit0, $markup) and bound; override pairs are bound too.
"""

from __future__ import annotations

NANO = 1_000_000_000
MILLION = 1_000_000
# Calls below $800 (nearly all) are priced in 64-bit integers: cost in nano-dollars x (10^6 + markup) fits below 2^63
# for a markup up to 1,000%; dearer ones take the (slower) 128-bit path.
SMALL_CALL = 800 * NANO


def overrides_sql(count: int) -> str:
    """The per-person markups as a relation (user_id, markup_bp); `count` pairs of parameters $u{i}, $m{i}."""
    if not count:
        return "SELECT CAST(NULL AS INTEGER) AS user_id, CAST(NULL AS BIGINT) AS markup_bp WHERE false"
    rows = ", ".join(f"(CAST($u{i} AS INTEGER), CAST($m{i} AS BIGINT))" for i in range(count))
    return f"SELECT * FROM (VALUES {rows}) t(user_id, markup_bp)"  # noqa: S608 - placeholders only


def per_call(base: str, markup: str, credit: str = "$credit") -> str:
    """Credits of one call rounded per call (the specification's rule), as SQL over integer columns."""
    return f"((({base} + {credit} - 1) // {credit}) * ({MILLION} + {markup}) + {MILLION - 1}) // {MILLION}"


def exact_nano(marked: str) -> str:
    """A call's exact price in nano-credits, ceil(marked x 1000 / $credit), for `marked` = cost in nano-dollars x
    (10^6 + markup): split as (marked // c) x 1000 + ceil((marked % c) x 1000 / c), which stays within 64 bits (an
    exact 128-bit division costs six times as much at millions of rows)."""
    return f"(({marked}) // $credit) * 1000 + ((({marked}) % $credit) * 1000 + $credit - 1) // $credit"


def usage_sql(overrides: int, accrual: str) -> str:
    """Per (person, model): requests, provider cost, credits billed and replayed, marked-up cost before and after.

    `accrual` says which calls are replayed under accrual rounding: "FALSE", "TRUE" or "l.accrued_nano IS NOT NULL"
    (each call under the policy it was billed with)."""
    replay_accrual = accrual != "FALSE"
    steps = (
        f"""
, start_remainder AS (
    SELECT user_id, sum(cost_credits * {NANO} - accrued_nano) AS r0 FROM ai_usage_log
    WHERE created_at < $start AND accrued_nano IS NOT NULL GROUP BY user_id
), running AS (
    SELECT p.id, p.exact_nano, coalesce(r.r0, 0) AS r0,
           sum(p.exact_nano) OVER (PARTITION BY p.user_id ORDER BY p.id ROWS UNBOUNDED PRECEDING) AS s_k
    FROM priced p LEFT JOIN start_remainder r ON r.user_id = p.user_id
    WHERE p.accrue
), debits AS (
    SELECT id, greatest(0, (s_k - r0 + {NANO - 1}) // {NANO})
             - greatest(0, (s_k - exact_nano - r0 + {NANO - 1}) // {NANO}) AS debit
    FROM running
)"""  # noqa: S608 - constant SQL
        if replay_accrual
        else ""
    )
    replayed = "CASE WHEN p.accrue THEN d.debit ELSE p.per_call END" if replay_accrual else "p.per_call"
    exact_small = exact_nano(f"priced_nano * ({MILLION} + m)")
    exact_big = exact_nano(f"CAST(priced_nano AS HUGEINT) * ({MILLION} + m)")
    join = "LEFT JOIN debits d ON d.id = p.id" if replay_accrual else ""
    return f"""
WITH o AS ({overrides_sql(overrides)}),
calls AS (
    SELECT l.id, l.user_id, l.ai_model_id, l.provider, l.requests_count AS requests, l.base_nano, l.priced_nano,
           l.cost_credits AS billed,
           l.status = 'success' AS billable, l.markup_bp AS m0,
           coalesce(o.markup_bp, CAST($markup AS BIGINT), l.markup_bp) AS m, {accrual} AS accrue
    FROM ai_usage_log l LEFT JOIN o ON o.user_id = l.user_id
    WHERE l.created_at >= $start AND l.created_at < $end AND NOT l.sandbox
), priced AS (
    SELECT *,
           CASE WHEN billable THEN {per_call("priced_nano", "m")} ELSE 0 END AS per_call,
           CASE WHEN NOT (billable AND accrue) THEN 0
                WHEN priced_nano < {SMALL_CALL} THEN {exact_small}
                ELSE CAST({exact_big} AS BIGINT) END AS exact_nano,
           CASE WHEN NOT billable THEN 0 WHEN priced_nano < {SMALL_CALL} THEN priced_nano * ({MILLION} + m0)
                ELSE CAST(priced_nano AS HUGEINT) * ({MILLION} + m0) END AS marked0,
           CASE WHEN NOT billable THEN 0 WHEN priced_nano < {SMALL_CALL} THEN priced_nano * ({MILLION} + m)
                ELSE CAST(priced_nano AS HUGEINT) * ({MILLION} + m) END AS marked1
    FROM calls
){steps}
SELECT p.user_id, p.ai_model_id, 'usage' AS kind, sum(p.requests)::BIGINT AS requests,
       sum(p.base_nano)::BIGINT AS base_nano, sum(p.billed)::BIGINT AS billed,
       sum({replayed})::BIGINT AS replayed, sum(p.marked0)::HUGEINT AS marked0, sum(p.marked1)::HUGEINT AS marked1,
       0::BIGINT AS kept, p.provider
FROM priced p {join}
GROUP BY ALL
"""  # noqa: S608 - this module's own SQL; every value is a bound parameter


def ledger_sql(overrides: int) -> str:
    """Per (person, model, kind): endpoint uptime debits re-billed per hour as metering does (a debit without a
    recorded markup is kept as billed, and counted in `kept`), and refunds as they were."""
    m = "coalesce(o.markup_bp, CAST($markup AS BIGINT), l.markup_bp)"
    uptime = "l.kind = 'endpoint_uptime' AND l.markup_bp IS NOT NULL"
    return f"""
WITH o AS ({overrides_sql(overrides)})
SELECT l.user_id, l.ai_model_id, l.kind, 0::BIGINT AS requests, sum(l.base_nano)::BIGINT AS base_nano,
       sum(l.credits)::BIGINT AS billed,
       sum(CASE WHEN {uptime} THEN {per_call("l.base_nano", m)} ELSE l.credits END)::BIGINT AS replayed,
       sum(CASE WHEN {uptime} THEN CAST(l.base_nano AS HUGEINT) * ({MILLION} + l.markup_bp)
                WHEN l.kind = 'endpoint_uptime' THEN CAST(l.credits AS HUGEINT) * $credit0 * {MILLION}
                ELSE 0 END)::HUGEINT AS marked0,
       sum(CASE WHEN {uptime} THEN CAST(l.base_nano AS HUGEINT) * ({MILLION} + {m})
                WHEN l.kind = 'endpoint_uptime' THEN CAST(l.credits AS HUGEINT) * $credit * {MILLION}
                ELSE 0 END)::HUGEINT AS marked1,
       (count(*) FILTER (WHERE l.kind = 'endpoint_uptime' AND l.markup_bp IS NULL))::BIGINT AS kept, l.provider
FROM ledger_spend l LEFT JOIN o ON o.user_id = l.user_id
WHERE l.ts >= $start AND l.ts < $end AND NOT l.sandbox AND l.kind IN ('endpoint_uptime', 'refund')
GROUP BY ALL
"""  # noqa: S608 - this module's own SQL; every value is a bound parameter
