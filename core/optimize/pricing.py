"""The pricing lab: replay a period's usage under another markup (for everyone or per person), credit price or
rounding policy, and show revenue, margin, what rounding earns and who pays more or less, beside what was billed.

With no change asked for, every call is replayed at the markup and rounding policy it was billed with and the current
credit price, which gives back the billed credits exactly (a test holds it to the ledger's own figures). The measures
(per person, per model and in total):
- credits and revenue (credits x credit price), billed and replayed; refunds stay as they were (valued at each side's
  credit price) and are part of revenue;
- margin = revenue - provider cost (the provider cost does not change; a response-cache hit has none);
- marked-up cost = priced cost x (100 + markup) / 100, no rounding: what the markup alone earns (the priced cost is
  the provider cost, but for a cache hit the catalog cost it was charged at: core/optimize/pricing_sql.py);
- rounding beyond markup = revenue from charges - marked-up cost: what rounding to whole credits earns beyond the
  markup, both roundings (before and after the markup) counted, so the per-call and accrual policies compare on the
  same footing. It is NOT the Spend page's "rounding uplift", which counts only the rounding before the markup and 0
  for accrual calls; that one is `WhatIf.rounding_uplift_usd`, billed side only, read with the Spend page's own query
  (`SpendQueries.totals`), so the two pages cannot disagree on it.
Endpoint uptime debits are replayed per hour, as metering bills them, under every rounding policy (accrual applies to
calls). Sandbox calls are not revenue. Access is the services layer's business (finance, admin).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from core.analytics.filters import SpendFilter
from core.analytics.queries import SpendQueries
from core.config import ROUNDING_POLICIES
from core.errors import InvalidInputError
from core.optimize.period import Period
from core.optimize.pricing_sql import ledger_sql, usage_sql
from core.users import checked_markup

NANO = 10**9
MARKUP_SCALE = 10**4
AS_BILLED = "as_billed"
CENT = Decimal("0.01")


@dataclass(frozen=True, kw_only=True)
class PricingScenario:
    """What to change. None (and no per-person markups) means "as billed"."""

    markup_pct: Decimal | None = None  # everyone's markup
    user_markups: tuple[tuple[str, Decimal], ...] = ()  # (email, markup %): wins over `markup_pct` for that person
    credit_usd: Decimal | None = None  # the price of one credit
    rounding: str | None = None  # per_call | accrual; None: each call as it was billed

    def __post_init__(self) -> None:
        if self.markup_pct is not None:
            object.__setattr__(self, "markup_pct", _markup(self.markup_pct))
        object.__setattr__(
            self, "user_markups", tuple((e.strip().lower(), _markup(m)) for e, m in dict(self.user_markups).items())
        )
        if self.credit_usd is not None:
            c = self.credit_usd if isinstance(self.credit_usd, Decimal) else Decimal(str(self.credit_usd))
            if not c.is_finite() or c <= 0 or c * NANO != (c * NANO).to_integral_value():
                raise InvalidInputError(
                    f"The credit price must be a positive number of dollars with at most 9 decimals, got {c}."
                )
            object.__setattr__(self, "credit_usd", c)
        if self.rounding is not None and self.rounding not in ROUNDING_POLICIES:
            raise InvalidInputError(
                f"Unknown rounding policy {self.rounding!r}; choose {' or '.join(ROUNDING_POLICIES)}."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "markup_pct": None if self.markup_pct is None else str(self.markup_pct),
            "user_markups": {e: str(m) for e, m in self.user_markups},
            "credit_usd": None if self.credit_usd is None else str(self.credit_usd),
            "rounding": self.rounding or AS_BILLED,
        }


def _markup(value: Decimal | int | str) -> Decimal:
    pct = checked_markup(value)
    if pct * MARKUP_SCALE != (pct * MARKUP_SCALE).to_integral_value():
        raise InvalidInputError(f"A markup has at most 4 decimals, got {pct}%.")
    return pct


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of the comparison (billed, or the what-if), summed."""

    credits: int
    revenue_usd: Decimal
    refunds_usd: Decimal  # part of revenue (negative)
    margin_usd: Decimal
    marked_up_cost_usd: Decimal
    rounding_beyond_markup_usd: Decimal  # revenue from charges - marked-up cost (not Spend's rounding uplift)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if isinstance(v, int) else f"{v:.2f}") for k, v in self.__dict__.items()}


@dataclass(frozen=True, kw_only=True)
class WhatIf:
    period: Period
    as_of: datetime
    scenario: PricingScenario
    credit_usd: Decimal  # billed at
    what_if_credit_usd: Decimal
    requests: int
    base_cost_usd: Decimal
    billed: Side
    what_if: Side
    by_user: pd.DataFrame  # one row per person, biggest difference first
    by_model: pd.DataFrame  # one row per model
    uptime_debits_kept: int  # uptime debits without a recorded markup, kept as billed
    # the Spend page's rounding uplift of the period as billed (its definition, its query): sum over calls rounded per
    # call of ceil(cost / credit price) x credit price - cost, 0 for accrual calls
    rounding_uplift_usd: Decimal = Decimal(0)
    seconds: float = field(default=0.0)

    @property
    def difference_usd(self) -> Decimal:
        return self.what_if.revenue_usd - self.billed.revenue_usd

    def pays_more(self) -> int:
        return int((self.by_user["difference_usd"] > 0).sum()) if len(self.by_user) else 0

    def pays_less(self) -> int:
        return int((self.by_user["difference_usd"] < 0).sum()) if len(self.by_user) else 0

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]

        return {
            # instants (naive UTC), written by whoever prints them: the command line's JSON gives them an offset
            "period": {"start": self.period.start, "end": self.period.end},
            "as_of": self.as_of,
            "scenario": self.scenario.to_dict(),
            "credit_usd": str(self.credit_usd),
            "what_if_credit_usd": str(self.what_if_credit_usd),
            "requests": self.requests,
            "base_cost_usd": f"{self.base_cost_usd:.2f}",
            "billed": self.billed.to_dict(),
            "what_if": self.what_if.to_dict(),
            "difference_usd": f"{self.difference_usd:.2f}",
            "users_paying_more": self.pays_more(),
            "users_paying_less": self.pays_less(),
            "uptime_debits_kept_as_billed": self.uptime_debits_kept,
            "rounding_uplift_usd": f"{self.rounding_uplift_usd:.2f}",
            "by_user": records(self.by_user),
            "by_model": records(self.by_model),
        }


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return f"{v:.2f}"
    if hasattr(v, "item"):
        return v.item()
    return v


def what_if(
    queries: SpendQueries,
    scenario: PricingScenario,
    *,
    since: date | None = None,
    until: date | None = None,
) -> WhatIf:
    """Replay local days `since`..`until` (default: the last 30 days up to the last sync) under `scenario`."""
    t0 = time.perf_counter()
    as_of = queries.as_of()
    period = Period.of_days(since, until, tz=queries.tz, as_of=as_of)
    credit0 = queries.credit_usd
    credit = scenario.credit_usd if scenario.credit_usd is not None else credit0
    con = queries.store.connect()
    try:
        emails = {e.lower(): i for i, e in con.execute("SELECT id, email FROM users").fetchall()}
        names = dict(con.execute("SELECT id, email FROM users").fetchall())
        models = {i: (m, p) for i, m, p in con.execute("SELECT id, model_id, provider FROM ai_models").fetchall()}
        unknown = [e for e, _m in scenario.user_markups if e not in emails]
        if unknown:
            raise InvalidInputError(f"No user {unknown[0]!r} in the analytics store; check the email.")
        params: dict[str, Any] = {
            "start": period.start,
            "end": period.end,
            "credit": int(credit * NANO),
            "credit0": int(credit0 * NANO),
            "markup": None if scenario.markup_pct is None else int(scenario.markup_pct * MARKUP_SCALE),
        }
        for i, (email, pct) in enumerate(scenario.user_markups):
            params[f"u{i}"] = emails[email]
            params[f"m{i}"] = int(pct * MARKUP_SCALE)
        accrual = {None: "l.accrued_nano IS NOT NULL", "per_call": "FALSE", "accrual": "TRUE"}[scenario.rounding]
        if accrual != "TRUE" and scenario.rounding is None:
            any_accrued = con.execute(
                "SELECT count(*) FROM ai_usage_log WHERE created_at >= $start AND created_at < $end "
                "AND accrued_nano IS NOT NULL",
                {"start": period.start, "end": period.end},
            ).fetchall()[0][0]
            accrual = accrual if any_accrued else "FALSE"
        n = len(scenario.user_markups)
        usage_params = {k: v for k, v in params.items() if k != "credit0"}
        rows = con.execute(usage_sql(n, accrual), usage_params).fetchall()
        rows += con.execute(ledger_sql(n), params).fetchall()
    finally:
        con.close()
    spend_uplift = queries.totals(SpendFilter(start=period.start, end=period.end))[0].rounding_uplift_usd
    result = _summarise(rows, period, as_of, scenario, credit0, credit, names, models, time.perf_counter() - t0)
    return replace(result, rounding_uplift_usd=spend_uplift)


def _usd(nano: int) -> Decimal:
    return Decimal(int(nano)).scaleb(-9)


def _summarise(
    rows: list[tuple[Any, ...]],
    period: Period,
    as_of: datetime,
    scenario: PricingScenario,
    credit0: Decimal,
    credit: Decimal,
    names: dict[int, str],
    models: dict[int, tuple[str, str]],  # id -> (model id, provider)
    seconds: float,
) -> WhatIf:
    # per key: requests, base_nano, billed, replayed, marked0, marked1, refunds credits
    per_user: dict[Any, list[int]] = defaultdict(lambda: [0] * 7)
    per_model: dict[Any, list[int]] = defaultdict(lambda: [0] * 7)
    kept = 0
    for uid, pk, kind, requests, base_nano, billed, replayed, marked0, marked1, kept_rows, provider in rows:
        refund = int(billed) if kind == "refund" else 0
        values = (int(requests), int(base_nano), int(billed), int(replayed), int(marked0), int(marked1), refund)
        # a model per provider, as Spend counts it: uptime is huggingface_endpoint's whatever model it names
        for acc in (per_user[uid], per_model[(pk, provider)]):
            for i, v in enumerate(values):
                acc[i] += v
        kept += int(kept_rows)
    total = [sum(v[i] for v in per_user.values()) for i in range(7)]

    def side(billed_credits: int, marked: int, refunds: int, base: int, price: Decimal) -> Side:
        revenue = billed_credits * price
        marked_usd = Decimal(marked).scaleb(-15)
        return Side(
            credits=billed_credits,
            revenue_usd=revenue,
            refunds_usd=refunds * price,
            margin_usd=revenue - _usd(base),
            marked_up_cost_usd=marked_usd,
            rounding_beyond_markup_usd=revenue - refunds * price - marked_usd,
        )

    def frame(acc: dict[Any, list[int]], label: str, name: Any, extra: dict[str, Any] | None = None) -> pd.DataFrame:
        """One row per key of `acc`, named by `name(key)`; `extra` columns (column -> key -> value) follow it."""
        out = []
        for key, (requests, base, billed, replayed, _m0, _m1, _r) in acc.items():
            before, after = billed * credit0, replayed * credit
            out.append(
                {
                    label: name(key),
                    **{column: of(key) for column, of in (extra or {}).items()},
                    "requests": requests,
                    "base_cost_usd": _usd(base),
                    "billed_credits": billed,
                    "what_if_credits": replayed,
                    "billed_revenue_usd": before,
                    "what_if_revenue_usd": after,
                    "difference_usd": after - before,
                    "billed_margin_usd": before - _usd(base),
                    "what_if_margin_usd": after - _usd(base),
                }
            )
        out.sort(key=lambda r: (-abs(r["difference_usd"]), str(r[label])))
        df = pd.DataFrame(out, columns=[label, *(extra or {}), *_COLUMNS])
        return df

    return WhatIf(
        period=period,
        as_of=as_of,
        scenario=scenario,
        credit_usd=credit0,
        what_if_credit_usd=credit,
        requests=total[0],
        base_cost_usd=_usd(total[1]),
        billed=side(total[2], total[4], total[6], total[1], credit0),
        what_if=side(total[3], total[5], total[6], total[1], credit),
        by_user=frame(per_user, "user", lambda k: names.get(k, f"(user {k})")),
        # the provider beside the model: a repository served both serverless and on a dedicated endpoint is two rows
        by_model=frame(
            per_model,
            "model",
            lambda k: models[k[0]][0] if k[0] in models else "(unknown)",
            {"provider": lambda k: k[1]},
        ),
        uptime_debits_kept=kept,
        seconds=seconds,
    )


_COLUMNS = (
    "requests",
    "base_cost_usd",
    "billed_credits",
    "what_if_credits",
    "billed_revenue_usd",
    "what_if_revenue_usd",
    "difference_usd",
    "billed_margin_usd",
    "what_if_margin_usd",
)
