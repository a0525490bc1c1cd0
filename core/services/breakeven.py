"""Break-even: one call for the command line and the page: read the catalog (and history), build the traffic and the
scenario, evaluate every option and sweep the rate. Defaults come from the chosen model's category and catalog entry.

Running the simulator is an engineer's or an admin's capability: the history profile reads every user's traffic of a
model. Its dates are days in the reporting time zone, bounded exactly as Spend bounds them (`times.day_bounds`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from core.access import Caller, Capability, guarded
from core.breakeven import serverless as serverless_price
from core.breakeven.defaults import (
    DEFAULT_COLD_START_SECONDS,
    DEFAULT_HORIZON_HOURS,
    DEFAULT_MAX_REPLICAS,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_TARGET_UTILIZATION,
    HF_DEFAULT_IDLE_MINUTES,
    MONTH_HOURS,
    RequestSize,
    category_defaults,
)
from core.breakeven.errors import InvalidRateError, NoServerlessPriceError, whole
from core.breakeven.history import (
    RESOLUTIONS,
    HistoryCounts,
    HistoryDays,
    catalog_gpus,
    check_range,
    default_range,
    load_history,
    observed_request_size,
    throughput_by_gpu,
)
from core.breakeven.model import Evaluation, evaluate
from core.breakeven.scenario import Scenario
from core.breakeven.serverless import ServerlessPrice
from core.breakeven.sweep import DEFAULT_POINTS, Sweep, sweep
from core.breakeven.sweep import default_range as sweep_range
from core.breakeven.traffic import PROFILES, Traffic, from_counts, make_traffic
from core.catalog.lookup import get_model, list_hardware, list_models
from core.catalog.types import ModelPrice
from core.services.times import day_bounds, local_day, stamp

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = [
    "DEFAULT_COLD_START_SECONDS",
    "DEFAULT_HORIZON_HOURS",
    "DEFAULT_MAX_REPLICAS",
    "DEFAULT_MIN_REPLICAS",
    "DEFAULT_TARGET_UTILIZATION",
    "HF_DEFAULT_IDLE_MINUTES",
    "MONTH_HOURS",
    "PROFILES",
    "RESOLUTIONS",
    "BreakevenInput",
    "BreakevenResult",
    "BreakevenService",
    "ScenarioDefaults",
    "compare",
    "options_rows",
    "timeline",
]

SPEC_PRICE_PER_REQUEST = Decimal("0.01")  # the specification's break-even example, when no model is chosen


@dataclass(frozen=True, kw_only=True)
class BreakevenInput:
    """Everything a person can set. None means "the default for the chosen model"."""

    requests_per_hour: float | None = None
    profile: str = "flat"
    model_id: str | None = None
    since: date | None = None
    until: date | None = None
    resolution: str = "minute"
    serverless_cost_per_request: Decimal | None = None
    serverless_cost_per_second: Decimal | None = None
    compute_seconds_per_request: float | None = None  # with a per-second price; default: the service time
    serverless_cold_start_seconds: float | None = None  # default: the model's catalog figure (none without a model)
    serverless_cold_start_share: float | None = None  # share of serverless requests meeting one (0-1), likewise
    scale_to_zero_minutes: int = HF_DEFAULT_IDLE_MINUTES
    cold_start_seconds: float = DEFAULT_COLD_START_SECONDS
    p95_slo_seconds: float | None = None
    hours: float | None = None
    seed: int = 0
    list_prices: bool = False  # price GPUs at Hugging Face's list price instead of the product's rate
    throughput_per_hour: tuple[tuple[str, float], ...] = ()  # (GPU id, requests/hour) overrides
    service_time_seconds: float | None = None
    memory_gb: float | None = None
    min_replicas: int = DEFAULT_MIN_REPLICAS
    max_replicas: int = DEFAULT_MAX_REPLICAS
    target_utilization: float = DEFAULT_TARGET_UTILIZATION
    sweep_points: int = DEFAULT_POINTS


@dataclass(frozen=True, kw_only=True)
class GpuDefaults:
    id: str
    memory_gb: int
    hourly_usd: Decimal
    list_hourly_usd: Decimal | None
    throughput_per_hour: float | None


@dataclass(frozen=True, kw_only=True)
class ScenarioDefaults:
    """What the form starts from for a model (or for a generic chat model when none is chosen)."""

    model: str | None  # provider/model_id
    category: str
    service_time_s: float
    p95_slo_s: float
    memory_gb: float | None
    serverless_per_request_usd: Decimal | None
    serverless_basis: str
    serverless_cold_start_s: float  # from the model's catalog entry; 0 when it has none (or no model is chosen)
    serverless_cold_start_share: float
    request_size: RequestSize
    gpus: tuple[GpuDefaults, ...]


def scenario_defaults(session: Session, model_id: str | None = None) -> ScenarioDefaults:
    model: ModelPrice | None = get_model(session, model_id) if model_id else None
    cat_name = model.category if model else None
    cat = category_defaults(cat_name)
    size = cat.request_size
    if model is None:
        per_request, basis = SPEC_PRICE_PER_REQUEST, "$0.01 per request (the specification's example)"
    else:
        try:
            price = serverless_price.from_catalog(model, size)
            per_request, basis = price.per_request_usd, price.basis
        except NoServerlessPriceError as exc:
            per_request, basis = None, str(exc)
    gpus = tuple(
        GpuDefaults(
            id=hw.id,
            memory_gb=hw.gpu_memory_gb,
            hourly_usd=hw.hourly_usd,
            list_hourly_usd=hw.list_hourly_usd,
            throughput_per_hour=cat.throughput_per_hour.get(hw.id),
        )
        for hw in list_hardware(session)
    )
    return ScenarioDefaults(
        model=model.key if model else None,
        category=cat_name or "chat",
        service_time_s=cat.service_time_s,
        p95_slo_s=cat.p95_slo_s,
        memory_gb=float(model.memory_gb) if model and model.memory_gb is not None else None,
        serverless_per_request_usd=per_request,
        serverless_basis=basis,
        serverless_cold_start_s=float(model.serverless_cold_start_s or 0) if model else 0.0,
        serverless_cold_start_share=float(model.serverless_cold_start_share or 0) if model else 0.0,
        request_size=size,
        gpus=gpus,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class BreakevenResult:
    inputs: BreakevenInput
    defaults: ScenarioDefaults
    scenario: Scenario
    traffic: Traffic
    evaluation: Evaluation
    sweep: Sweep
    serverless_basis: str
    # model, since, until (local days), tz, start, end (local times naming tz), resolution, requests
    history: dict[str, Any] | None = field(default=None)
    tz: str = "UTC"  # the reporting time zone: history days, and the clock the diurnal curve's hours are on

    def to_dict(self) -> dict[str, Any]:
        """The command line's JSON shape: options, break_even_requests_per_hour, recommendation."""
        return self.evaluation.to_dict()

    def summary(self) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "profile": self.traffic.profile,
            "model": self.defaults.model,
            "mean_requests_per_hour": round(ev.mean_requests_per_hour, 3),
            "peak_requests_per_hour": round(ev.peak_requests_per_hour, 3),
            "requests": ev.requests,
            "horizon_hours": round(ev.horizon_hours, 3),
            "serverless_price_per_request_usd": (
                None if self.scenario.serverless is None else str(self.scenario.serverless.per_request_usd)
            ),
            "serverless_basis": self.serverless_basis,
            "history": self.history,
        }

    def export(self) -> dict[str, Any]:
        """Everything needed to reproduce and read the result (the page's download)."""
        inputs = asdict(self.inputs)
        inputs["throughput_per_hour"] = dict(self.inputs.throughput_per_hour)
        scenario = self.scenario
        return {
            **self.to_dict(),
            "inputs": inputs,
            "scenario": {
                "service_time_s": scenario.service_time_s,
                "p95_slo_s": scenario.p95_slo_s,
                "idle_timeout_minutes": scenario.idle_timeout_minutes,
                "cold_start_s": scenario.cold_start_s,
                "serverless_cold_start_s": scenario.serverless_cold_start_s,
                "serverless_cold_start_share": scenario.serverless_cold_start_share,
                "target_utilization": scenario.target_utilization,
                "min_replicas": scenario.min_replicas,
                "max_replicas": scenario.max_replicas,
                "model_memory_gb": scenario.model_memory_gb,
                "gpus": [
                    {
                        "id": g.id,
                        "hourly_usd": str(g.hourly_usd),
                        "memory_gb": g.memory_gb,
                        "throughput_per_hour": g.throughput_per_hour,
                    }
                    for g in scenario.gpus
                ],
            },
            "traffic": self.summary(),
            "crossovers": [
                {
                    "requests_per_hour": round(c.requests_per_hour, 2),
                    "option": c.option,
                    "other": c.other,
                    "monthly_cost_usd": f"{c.monthly_cost_usd:.2f}",
                }
                for c in self.sweep.crossovers
            ],
        }


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def _serverless(inp: BreakevenInput, model: ModelPrice | None, size: RequestSize, service_s: float) -> ServerlessPrice:
    if inp.serverless_cost_per_request is not None and inp.serverless_cost_per_second is not None:
        raise InvalidRateError("Give the serverless price per request or per second of compute, not both.")
    if inp.serverless_cost_per_request is not None:
        return serverless_price.per_request(inp.serverless_cost_per_request)
    if inp.serverless_cost_per_second is not None:
        seconds = inp.compute_seconds_per_request if inp.compute_seconds_per_request is not None else service_s
        return serverless_price.per_second(inp.serverless_cost_per_second, seconds)
    if model is None:
        return serverless_price.per_request(SPEC_PRICE_PER_REQUEST)
    return serverless_price.from_catalog(model, size)


def history_days(since: date | None, until: date | None, tz: str, now: datetime | None = None) -> HistoryDays:
    """Days `since`..`until` in time zone `tz` (by default the last 30 days, today there included) and the UTC
    instants they cover: Spend's bounds for the same days (`day_bounds`)."""
    if since is None or until is None:
        today = _today(tz, now)
        if since is not None and since > today:  # "swap the dates" would name an end nobody gave
            raise InvalidRateError(
                f"The range starts on {since}, after today ({today} in {tz}): the history has no such days yet; "
                "pick an earlier start."
            )
        d_since, d_until = default_range(today)
        since, until = since or d_since, until or d_until
    check_range(since, until)
    start, end = day_bounds(since, until, tz)
    assert start is not None and end is not None
    return HistoryDays(since=since, until=until, tz=tz, start=start, end=end)


def _today(tz: str, now: datetime | None = None) -> date:
    """Today in time zone `tz` (`now` is an aware instant or naive UTC)."""
    at = now or datetime.now(UTC)
    return local_day(at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at, tz)


def _traffic(
    session: Session, inp: BreakevenInput, now: datetime | None, tz: str
) -> tuple[Traffic, HistoryCounts | None]:
    if inp.profile not in PROFILES:
        raise InvalidRateError(f"Unknown traffic profile {inp.profile!r}; choose one of: {', '.join(PROFILES)}.")
    whole("The seed", inp.seed, 0, "Any whole number from 0 gives a repeatable trace.")
    if inp.profile != "history":
        if inp.requests_per_hour is None:
            raise InvalidRateError(
                "Give the traffic in requests per hour (--requests-per-hour), or use --profile history with a model."
            )
        if inp.since or inp.until:
            raise InvalidRateError("--since/--until pick recorded history: use them with --profile history.")
        hours = inp.hours if inp.hours is not None else DEFAULT_HORIZON_HOURS
        return make_traffic(inp.profile, inp.requests_per_hour, hours, inp.seed), None
    if not inp.model_id:
        raise InvalidRateError("The history profile replays a model's recorded traffic: choose a model (--model).")
    if inp.hours is not None:
        raise InvalidRateError("With --profile history the date range sets the horizon; leave out --hours.")
    days = history_days(inp.since, inp.until, tz, now)
    hist = load_history(session, inp.model_id, days, resolution=inp.resolution, now=now)
    traffic = from_counts(
        hist.counts,
        bucket_minutes=hist.bucket_minutes,
        start=hist.start,
        requests_per_hour=inp.requests_per_hour,
        seed=inp.seed,
    )
    return traffic, hist


def simulate(session: Session, inp: BreakevenInput, *, now: datetime | None = None, tz: str = "UTC") -> BreakevenResult:
    """Evaluate every option for `inp` and sweep cost against requests/hour; history days are days in `tz`."""
    defaults = scenario_defaults(session, inp.model_id)
    model = get_model(session, inp.model_id) if inp.model_id else None
    traffic, hist = _traffic(session, inp, now, tz)
    size = defaults.request_size
    observed = None
    if hist is not None and model is not None:
        observed = observed_request_size(session, model.model_id, hist.start, hist.end)
        size = observed or size
    service_s = inp.service_time_seconds if inp.service_time_seconds is not None else defaults.service_time_s
    try:
        price: ServerlessPrice | None = _serverless(inp, model, size, service_s)
        basis = price.basis if price else ""
    except NoServerlessPriceError as exc:
        price, basis = None, str(exc)
    sized = model is not None and model.cost_unit in ("token", "character", "second")
    if observed is not None and price is not None and sized and model is not None and basis.startswith(model.key):
        basis += ", the average request recorded in the history"
    throughput = {g.id: g.throughput_per_hour for g in defaults.gpus if g.throughput_per_hour is not None}
    throughput.update(throughput_by_gpu(session, inp.throughput_per_hour))
    scenario = Scenario(
        serverless=price,
        gpus=catalog_gpus(session, throughput, list_price=inp.list_prices),
        service_time_s=service_s,
        p95_slo_s=inp.p95_slo_seconds if inp.p95_slo_seconds is not None else max(defaults.p95_slo_s, service_s),
        idle_timeout_minutes=inp.scale_to_zero_minutes,
        cold_start_s=inp.cold_start_seconds,
        target_utilization=inp.target_utilization,
        min_replicas=inp.min_replicas,
        max_replicas=inp.max_replicas,
        model_memory_gb=inp.memory_gb if inp.memory_gb is not None else defaults.memory_gb,
        serverless_cold_start_s=_given(inp.serverless_cold_start_seconds, defaults.serverless_cold_start_s),
        serverless_cold_start_share=_given(inp.serverless_cold_start_share, defaults.serverless_cold_start_share),
    )
    evaluation = evaluate(traffic, scenario)
    low, high = sweep_range(traffic, evaluation.break_even_requests_per_hour)
    curves = sweep(traffic, scenario, low=low, high=high, points=inp.sweep_points)
    history = None
    if hist is not None:
        history = {
            "model": inp.model_id,
            "since": hist.days.since.isoformat(),
            "until": hist.days.until.isoformat(),
            "tz": tz,
            "start": stamp(hist.start, tz),
            "end": stamp(hist.end, tz),
            "resolution": inp.resolution,
            "requests": hist.requests,
        }
    return BreakevenResult(
        inputs=inp,
        defaults=defaults,
        scenario=scenario,
        traffic=traffic,
        evaluation=evaluation,
        sweep=curves,
        serverless_basis=basis,
        history=history,
        tz=tz,
    )


def options_rows(result: BreakevenResult) -> list[dict[str, Any]]:
    """The options table as rows (JSON-ready values): what the page shows and the CSV download holds."""
    return [o.to_dict() for o in result.evaluation.options]


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Two saved results (`BreakevenResult.export()`) side by side: each option's monthly cost and p95 in both, and
    the difference B - A in dollars."""
    rows = []
    b_by_name = {o["option"]: o for o in b["options"]}
    for oa in a["options"]:
        ob = b_by_name.get(oa["option"], {})
        ca, cb = oa.get("monthly_cost_usd"), ob.get("monthly_cost_usd")
        rows.append(
            {
                "option": oa["option"],
                "A monthly_cost_usd": ca,
                "B monthly_cost_usd": cb,
                "B - A usd": None if ca is None or cb is None else f"{Decimal(cb) - Decimal(ca):.2f}",
                "A p95_latency_s": oa.get("p95_latency_s"),
                "B p95_latency_s": ob.get("p95_latency_s"),
                "A meets_slo": oa.get("meets_slo"),
                "B meets_slo": ob.get("meets_slo"),
            }
        )
    return rows


def timeline(result: BreakevenResult, gpu_id: str, *, hours: int, bin_minutes: int = 1) -> dict[str, np.ndarray]:
    """The first `hours` of the trace: requests and scale-to-zero replicas of `gpu_id`, per `bin_minutes` bin
    (requests summed, replicas at their most within the bin)."""
    counts = result.traffic.counts
    replicas = result.evaluation.timelines.get(gpu_id)
    if replicas is None:
        raise InvalidRateError(f"{gpu_id} has no scale-to-zero timeline (it is excluded or unknown).")
    n = min(hours * 60, counts.size)
    n -= n % bin_minutes
    n = max(n, bin_minutes)
    c = counts[:n].reshape(-1, bin_minutes).sum(axis=1)
    r = replicas[:n].reshape(-1, bin_minutes).max(axis=1)
    return {"minute": np.arange(0, n, bin_minutes), "requests": c, "replicas": r}


class BreakevenService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(Capability.RUN_BREAKEVEN)
    def model_ids(self, caller: Caller) -> list[str]:
        """The catalog's models a scenario may be built on (the sandbox's are not real models)."""
        with self._s.db.session() as s:
            return sorted({m.model_id for m in list_models(s) if m.provider != "sandbox"})

    @guarded(Capability.RUN_BREAKEVEN)
    def defaults(self, caller: Caller, model_id: str | None = None) -> ScenarioDefaults:
        """What the form starts from for a model (or a generic chat model)."""
        with self._s.db.session() as s:
            return scenario_defaults(s, model_id)

    @guarded(Capability.RUN_BREAKEVEN)
    def default_range(self, caller: Caller, *, now: datetime | None = None) -> tuple[date, date]:
        """The history's default days: the last 30 in the reporting time zone, today there included."""
        return default_range(_today(self._s.settings.reporting_tz, now))

    @guarded(Capability.RUN_BREAKEVEN)
    def simulate(self, caller: Caller, inp: BreakevenInput, *, now: datetime | None = None) -> BreakevenResult:
        """Evaluate every option for `inp` and sweep cost against requests/hour; history days are reporting days."""
        with self._s.db.session() as s:
            return simulate(s, inp, now=now, tz=self._s.settings.reporting_tz)
