"""The savings list: every opportunity Optimize finds in a period's real traffic, largest monthly saving first.

One call reads the analytics store (traffic per minute, repeated requests, each person's model mix: `traffic`,
`cache`, `substitution`) and the system of record (the catalogs, the endpoints and their metered uptime), runs the
break-even model per model and per endpoint (`dedicated`, `endpoints`), and ranks what it found. Access is not checked
here: the services layer decides who may ask (admin, engineer, finance).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.analytics.queries import SpendQueries
from core.catalog.lookup import list_hardware, list_models
from core.optimize.cache import cache_opportunities
from core.optimize.dedicated import dedicated_opportunities
from core.optimize.endpoints import endpoint_opportunities
from core.optimize.opportunity import Kind, Opportunity
from core.optimize.period import Period
from core.optimize.substitution import substitution_hints


@dataclass(frozen=True, kw_only=True)
class SavingsReport:
    period: Period
    as_of: datetime  # naive UTC: the analytics store's sync this was read from
    opportunities: list[Opportunity]  # largest monthly saving first
    seconds: dict[str, float] = field(default_factory=dict)  # how long each part took (the benchmark prints them)

    @property
    def monthly_saving_usd(self) -> Decimal:
        """The sum over opportunities that are not hints. Opportunities may overlap (a model's cached repeats are
        also part of its dedicated case), so this is an upper bound of acting on all of them."""
        return sum((o.monthly_saving_usd for o in self.opportunities if not o.hint), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            # instants (naive UTC), written by whoever prints them: the command line's JSON gives them an offset
            "period": {"start": self.period.start, "end": self.period.end},
            "as_of": self.as_of,
            "monthly_saving_usd": f"{self.monthly_saving_usd:.2f}",
            "opportunities": [o.to_dict() for o in self.opportunities],
        }


def find_savings(
    queries: SpendQueries,
    session: Session,
    *,
    since: date | None = None,
    until: date | None = None,
    kinds: tuple[Kind, ...] = tuple(Kind),
) -> SavingsReport:
    """Every opportunity in local days `since`..`until` (default: the last 30 days up to the last sync)."""
    t0 = time.perf_counter()
    as_of = queries.as_of()
    period = Period.of_days(since, until, tz=queries.tz, as_of=as_of)
    models = list_models(session, include_inactive=True)
    hardware = list_hardware(session)
    seconds: dict[str, float] = {"catalog": time.perf_counter() - t0}
    found: list[Opportunity] = []
    con = queries.store.connect()
    try:
        parts = {
            Kind.DEDICATED: lambda: dedicated_opportunities(con, period, models, hardware),
            Kind.ENDPOINT: lambda: endpoint_opportunities(con, session, period, models, hardware),
            Kind.CACHE: lambda: cache_opportunities(con, period, models),
            Kind.SUBSTITUTION: lambda: substitution_hints(queries, period, models),
        }
        for kind, run in parts.items():
            if kind in kinds:
                t = time.perf_counter()
                found.extend(run())
                seconds[kind.value] = time.perf_counter() - t
    finally:
        con.close()
    order = {k: i for i, k in enumerate(Kind)}
    found.sort(key=lambda o: (-o.monthly_saving_usd, o.hint, order[o.kind], o.subject))
    seconds["total"] = time.perf_counter() - t0
    return SavingsReport(period=period, as_of=as_of, opportunities=found, seconds=seconds)
