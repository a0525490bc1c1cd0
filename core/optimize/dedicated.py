"""Serverless models whose recorded traffic would cost less on a dedicated GPU (always-on or scale-to-zero) that
meets the latency target.

Only open-weight models can run on a dedicated endpoint; in the catalog they are the ones with a GPU memory figure
(`memory_gb`, which the break-even model also uses to rule out GPUs they do not fit). The serverless side is what the
period actually cost: its provider cost divided by its requests is the price per request the model replays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

import duckdb

from core.breakeven.serverless import ServerlessPrice
from core.catalog.types import HardwarePrice, ModelPrice
from core.money import dollars, rate_text
from core.optimize.opportunity import EndpointForm, Kind, Opportunity
from core.optimize.period import Period
from core.optimize.simulate import Choice, Simulation, describe, simulate
from core.optimize.traffic import minute_counts

MIN_MONTHLY_SAVING = Decimal("1.00")
MAX_NAME = 32


def endpoint_name(model_id: str, hardware: str) -> str:
    """A valid endpoint name (1-32 lowercase letters, digits, hyphens) for a model on a GPU."""
    suffix = f"-{hardware.lower()}"
    base = re.sub(r"[^a-z0-9]+", "-", model_id.split("/")[-1].lower()).strip("-") or "model"
    return base[: MAX_NAME - len(suffix)].strip("-") + suffix


def candidates(models: Sequence[ModelPrice]) -> dict[int, ModelPrice]:
    """Serverless catalog models that could run on a dedicated GPU, by primary key."""
    return {
        m.id: m
        for m in models
        if m.id is not None and m.memory_gb is not None and m.deployment_type != "dedicated" and m.provider != "sandbox"
    }


def choice_evidence(sim: Simulation, best: Choice) -> dict[str, object]:
    """The figures of the simulated option (shared by models and endpoints)."""
    ev, o = best.evaluation, best.option
    return {
        "mean_requests_per_hour": round(ev.mean_requests_per_hour, 2),
        "peak_requests_per_hour": round(ev.peak_requests_per_hour, 1),
        "option": o.option,
        "idle_timeout_minutes": best.idle_minutes,
        "option_monthly_usd": None if o.monthly_cost_usd is None else f"{o.monthly_cost_usd:.2f}",
        "replicas": o.replicas,
        "billed_hours_per_month": None if o.billed_hours is None else round(o.billed_hours, 1),
        "utilization": None if o.utilization is None else round(o.utilization, 4),
        "cold_start_fraction": None if o.cold_start_fraction is None else round(o.cold_start_fraction, 4),
        "p95_latency_s": None if o.p95_latency_s is None else round(o.p95_latency_s, 2),
        "p95_target_s": sim.slo_s,
    }


def form_for(name: str, model_repo: str, best: Choice) -> EndpointForm:
    o = best.option
    assert o.hardware is not None
    replicas = max(o.replicas or 1, 1)
    return EndpointForm(
        name=name,
        model_repo=model_repo,
        hardware=o.hardware,
        min_replicas=0 if o.scale_to_zero else replicas,
        max_replicas=replicas,
        scale_to_zero_minutes=best.idle_minutes if o.scale_to_zero else None,
    )


def dedicated_opportunities(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    models: Sequence[ModelPrice],
    hardware: Sequence[HardwarePrice],
) -> list[Opportunity]:
    found = candidates(models)
    if not found or not hardware:
        return []
    marks = ", ".join("?" * len(found))
    traffic = minute_counts(
        con, period, "ai_model_id", f"ai_model_id IN ({marks}) AND deployment_type <> 'dedicated'", list(found)
    )
    out = []
    for pk, counts in traffic.items():
        model = found[pk]
        if counts.requests == 0 or counts.cost_usd <= 0:
            continue
        per_request = counts.cost_usd / counts.requests
        price = ServerlessPrice(
            per_request_usd=per_request, basis=f"${per_request:.6f} per request: the period's provider cost"
        )
        memory = float(model.memory_gb) if model.memory_gb is not None else None
        sim = simulate(
            counts.per_minute,
            start=period.start,
            category=model.category,
            memory_gb=memory,
            serverless=price,
            hardware=hardware,
        )
        best, serverless = sim.best, sim.serverless
        if best is None or serverless is None or best.option.hardware is None:
            continue
        assert serverless.option.monthly_cost_usd is not None and best.option.monthly_cost_usd is not None
        saving = serverless.option.monthly_cost_usd - best.option.monthly_cost_usd
        if saving < MIN_MONTHLY_SAVING:
            continue
        mean = best.evaluation.mean_requests_per_hour
        out.append(
            Opportunity(
                kind=Kind.DEDICATED,
                subject=model.model_id,
                action=(
                    f"create {describe(best)} for {model.model_id}: saves about {dollars(saving)}/month at the "
                    f"period's traffic ({rate_text(mean)} requests/hour; serverless costs "
                    f"{dollars(serverless.option.monthly_cost_usd)}/month)"
                ),
                monthly_saving_usd=saving,
                evidence={
                    "model": model.key,
                    "category": model.category,
                    "requests": counts.requests,
                    "serverless_cost_usd": f"{counts.cost_usd:.2f}",
                    "serverless_cost_per_request_usd": f"{per_request:.6f}",
                    "serverless_monthly_usd": f"{serverless.option.monthly_cost_usd:.2f}",
                    **choice_evidence(sim, best),
                    "break_even_requests_per_hour": _rounded(
                        best.evaluation.break_even_requests_per_hour.get(best.option.hardware)
                    ),
                },
                endpoint_form=form_for(endpoint_name(model.model_id, best.option.hardware), model.model_id, best),
            )
        )
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
