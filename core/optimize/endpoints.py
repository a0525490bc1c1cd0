"""Dedicated endpoints that would cost less serverless, on smaller hardware or with a shorter idle timeout.

What an endpoint costs now is its metered uptime (the `endpoint_uptime_buckets` the meter wrote for the period,
scaled to a month); what it served is the dedicated traffic of its model in the analytics store (rows tagged with the
endpoint, and untagged dedicated calls of the same model: the generation flow does not tag them yet). The break-even
model replays that traffic over every option, and the cheapest that meets the latency target is compared with the
metered cost. Serverless is priced like the model's serverless catalog entry: at what its own serverless traffic cost
per request in the period, or at its catalog price for the category's typical request when it had too little.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.breakeven import serverless as serverless_price
from core.breakeven.defaults import category_defaults
from core.breakeven.errors import NoServerlessPriceError
from core.breakeven.model import option_name
from core.breakeven.serverless import ServerlessPrice
from core.catalog.types import HardwarePrice, ModelPrice
from core.db.models import EndpointUptimeBucket, InferenceEndpoint
from core.money import dollars
from core.optimize.dedicated import MIN_MONTHLY_SAVING, choice_evidence, endpoint_name, form_for
from core.optimize.opportunity import Kind, Opportunity
from core.optimize.period import Period
from core.optimize.simulate import IDLE_TIMEOUTS, Choice, describe, simulate
from core.optimize.traffic import Counts, minute_counts

MIN_OBSERVED_REQUESTS = 20  # below this, a model's own serverless cost per request is too noisy to price by


@dataclass(frozen=True, kw_only=True)
class Metered:
    """An endpoint's metered uptime in the period."""

    start: datetime  # first metered hour
    end: datetime  # end of the last metered hour
    cost_usd: Decimal
    billed_minutes: int
    replica_minutes: int

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds() // 3600)


def metered_uptime(session: Session, period: Period) -> dict[int, Metered]:
    """Each endpoint's metered hours that start in the period (summed in Python: SQLite sums Numeric as floats)."""
    acc: dict[int, list] = defaultdict(lambda: [None, None, Decimal(0), 0, 0])
    rows = session.execute(
        select(
            EndpointUptimeBucket.endpoint_id,
            EndpointUptimeBucket.bucket_start,
            EndpointUptimeBucket.bucket_end,
            EndpointUptimeBucket.base_cost_usd,
            EndpointUptimeBucket.billed_minutes,
            EndpointUptimeBucket.replica_minutes,
        ).where(EndpointUptimeBucket.bucket_start >= period.start, EndpointUptimeBucket.bucket_start < period.end)
    )
    for endpoint_id, start, end, cost, billed, replica in rows:
        a = acc[endpoint_id]
        a[0] = start if a[0] is None else min(a[0], start)
        a[1] = end if a[1] is None else max(a[1], end)
        a[2] += Decimal(cost)
        a[3] += int(billed)
        a[4] += int(replica)
    return {
        k: Metered(start=a[0], end=a[1], cost_usd=a[2], billed_minutes=a[3], replica_minutes=a[4])
        for k, a in acc.items()
    }


def _serverless_for(
    con: duckdb.DuckDBPyConnection, period: Period, twin: ModelPrice | None
) -> tuple[ServerlessPrice | None, str]:
    if twin is None:
        return None, "the catalog has no serverless entry for this model"
    where = "ai_model_id = ? AND deployment_type <> 'dedicated'"
    own = minute_counts(con, period, "ai_model_id", where, [twin.id]).get(twin.id)
    if own is not None and own.requests >= MIN_OBSERVED_REQUESTS and own.cost_usd > 0:
        per = own.cost_usd / own.requests
        return ServerlessPrice(per_request_usd=per, basis="its serverless traffic's cost"), (
            f"{twin.key} at ${per:.6f} per request, what its {own.requests:,} serverless requests cost in the period"
        )
    try:
        price = serverless_price.from_catalog(twin, category_defaults(twin.category).request_size)
    except NoServerlessPriceError as exc:
        return None, str(exc)
    return price, price.basis


def _current(endpoint: InferenceEndpoint) -> tuple[str, int | None]:
    """The endpoint's configuration as a break-even option name and its idle timeout."""
    if endpoint.min_replicas == 0 and endpoint.scale_to_zero_minutes:
        return option_name(endpoint.hardware_id, True), endpoint.scale_to_zero_minutes
    return option_name(endpoint.hardware_id, False), None


def endpoint_opportunities(
    con: duckdb.DuckDBPyConnection,
    session: Session,
    period: Period,
    models: Sequence[ModelPrice],
    hardware: Sequence[HardwarePrice],
) -> list[Opportunity]:
    metered = metered_uptime(session, period)
    if not metered:
        return []
    endpoints = list(
        session.scalars(
            select(InferenceEndpoint).where(
                InferenceEndpoint.id.in_(list(metered)), InferenceEndpoint.deleted_at.is_(None)
            )
        )
    )
    out = []
    for e in endpoints:
        m = metered[e.id]
        if m.hours <= 0 or m.cost_usd <= 0:
            continue
        window = Period(m.start, m.end)
        same = [x for x in models if x.model_id == e.model_repo]
        dedicated_pks = [x.id for x in same if x.deployment_type == "dedicated"] or [-1]
        marks = ", ".join("?" * len(dedicated_pks))
        traffic = minute_counts(
            con,
            window,
            "1",
            f"endpoint_id = ? OR (endpoint_id IS NULL AND deployment_type = 'dedicated' AND ai_model_id IN ({marks}))",
            [e.id, *dedicated_pks],
        ).get(1)
        monthly = window.per_month(m.cost_usd)
        opp = _endpoint_opportunity(con, e, m, window, monthly, traffic, same, hardware)
        if opp is not None:
            out.append(opp)
    return out


def _endpoint_opportunity(
    con: duckdb.DuckDBPyConnection,
    e: InferenceEndpoint,
    m: Metered,
    window: Period,
    monthly: Decimal,
    traffic: Counts | None,
    same: list[ModelPrice],
    hardware: Sequence[HardwarePrice],
) -> Opportunity | None:
    evidence: dict[str, object] = {
        "endpoint": e.name,
        "model": e.model_repo,
        "hardware": e.hardware_id,
        "min_replicas": e.min_replicas,
        "max_replicas": e.max_replicas,
        "scale_to_zero_minutes": e.scale_to_zero_minutes,
        "metered_hours": m.hours,
        "metered_cost_usd": f"{m.cost_usd:.2f}",
        "metered_monthly_usd": f"{monthly:.2f}",
        "billed_minutes": m.billed_minutes,
    }
    if traffic is None or traffic.requests == 0:
        if monthly < MIN_MONTHLY_SAVING:
            return None
        return Opportunity(
            kind=Kind.ENDPOINT,
            subject=e.name,
            action=f"pause or delete {e.name}: no request to it is in the usage log for its {m.hours:,} metered hours, "
            f"and it costs about {dollars(monthly)}/month",
            monthly_saving_usd=monthly,
            evidence={**evidence, "requests": 0},
        )
    busy = int((traffic.per_minute > 0).sum())
    evidence.update(
        requests=traffic.requests,
        busy_minutes=busy,
        idle_share_of_billed_minutes=round(1 - busy / m.billed_minutes, 4) if m.billed_minutes else None,
    )
    twin = next((x for x in same if x.deployment_type != "dedicated" and x.provider != "sandbox"), None)
    dedicated = next((x for x in same if x.deployment_type == "dedicated"), None)
    reference = twin or dedicated
    category = reference.category if reference else "chat"
    memory = reference.memory_gb if reference else None
    price, basis = _serverless_for(con, window, twin)
    current_option, current_idle = _current(e)
    sim = simulate(
        traffic.per_minute,
        start=window.start,
        category=category,
        memory_gb=float(memory) if memory is not None else None,
        serverless=price,
        hardware=hardware,
        idle_timeouts=(*IDLE_TIMEOUTS, *((current_idle,) if current_idle else ())),
    )
    best = sim.best
    if best is None or best.option.monthly_cost_usd is None:
        return None
    saving = monthly - best.option.monthly_cost_usd
    if saving < MIN_MONTHLY_SAVING:
        return None
    current = sim.find(current_option, current_idle)
    current_cost = None if current is None else current.option.monthly_cost_usd
    evidence.update(
        serverless_price=basis,
        simulated_current_monthly_usd=None if current_cost is None else f"{current_cost:.2f}",
        **choice_evidence(sim, best),
    )
    return Opportunity(
        kind=Kind.ENDPOINT,
        subject=e.name,
        action=_action(e, best, saving, monthly),
        monthly_saving_usd=saving,
        evidence=evidence,
        endpoint_form=None
        if best.option.hardware is None
        else form_for(endpoint_name(e.model_repo, best.option.hardware), e.model_repo, best),
    )


def _action(e: InferenceEndpoint, best: Choice, saving: Decimal, monthly: Decimal) -> str:
    o = best.option
    tail = f": saves about {dollars(saving)}/month of its {dollars(monthly)}/month metered uptime"
    if o.hardware is None:
        return f"move {e.name}'s traffic to serverless {e.model_repo} and delete the endpoint{tail}"
    if o.hardware == e.hardware_id and o.scale_to_zero:
        return f"set {e.name} to scale to zero after {best.idle_minutes} idle minutes{tail}"
    return f"replace {e.name} ({e.hardware_id}) with {describe(best)}{tail}"
