"""`python -m core breakeven`: serverless against dedicated GPUs (always-on or scale-to-zero) for a traffic profile."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.args import bounded_int, decimal_arg, iso_date, positive_int, seed_int
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError
from core.services.breakeven import (
    DEFAULT_COLD_START_SECONDS,
    DEFAULT_MAX_REPLICAS,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_TARGET_UTILIZATION,
    HF_DEFAULT_IDLE_MINUTES,
    PROFILES,
    RESOLUTIONS,
    BreakevenInput,
    BreakevenResult,
)

REPLICAS = bounded_int(1, 1_000, "replicas")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _throughput(text: str) -> tuple[str, float]:
    gpu, sep, rate = text.partition("=")
    if not sep or not gpu:
        raise argparse.ArgumentTypeError(f"{text!r} is not GPU=REQUESTS_PER_HOUR, e.g. T4=1800 or nvidia-t4=1800")
    return gpu.strip(), _number(rate)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "breakeven",
        help="compare serverless with dedicated T4/L4/A10G/A100 endpoints (always-on and scale-to-zero)",
        description=(
            "Simulate a month of traffic minute by minute and compare serverless with each dedicated GPU, always-on "
            "and with scale-to-zero: monthly cost, billed hours, replicas, utilization, cold starts, p95 latency. "
            "Money is printed as decimal strings rounded to cents; figures are per month of 730 hours."
        ),
    )
    p.add_argument("--requests-per-hour", type=_number, help="average traffic (with --profile history: rescale it)")
    p.add_argument("--profile", choices=PROFILES, default="flat", help="traffic shape (default flat)")
    p.add_argument("--model", dest="model_id", metavar="MODEL_ID", help="catalog model: prices, memory, defaults")
    p.add_argument(
        "--since", type=iso_date, help="history start, YYYY-MM-DD, a day in REPORTING_TZ (default 29 days before today)"
    )
    p.add_argument("--until", type=iso_date, help="history end, YYYY-MM-DD inclusive, in REPORTING_TZ (default today)")
    p.add_argument("--resolution", choices=tuple(RESOLUTIONS), default="minute", help="history buckets")
    p.add_argument(
        "--serverless-cost-per-request",
        type=decimal_arg,
        metavar="USD",
        help="what one serverless request costs (default: the model's catalog price, else $0.01)",
    )
    p.add_argument("--serverless-cost-per-second", type=decimal_arg, metavar="USD", help="price per compute second")
    p.add_argument("--compute-seconds-per-request", type=_number, metavar="S", help="with a per-second price")
    p.add_argument(
        "--serverless-cold-start-seconds",
        type=_number,
        metavar="S",
        help="how long a serverless cold start takes (default: the model's catalog figure, else none)",
    )
    p.add_argument(
        "--serverless-cold-start-share",
        type=_number,
        metavar="F",
        help="share of serverless requests that meet one, 0-1 (default: the model's catalog figure, else none)",
    )
    p.add_argument(
        "--scale-to-zero-minutes",
        type=positive_int,
        default=HF_DEFAULT_IDLE_MINUTES,
        metavar="T",
        help=f"idle timeout (default {HF_DEFAULT_IDLE_MINUTES}, Hugging Face's)",
    )
    p.add_argument(
        "--cold-start-seconds",
        type=_number,
        default=DEFAULT_COLD_START_SECONDS,
        metavar="C",
        help=f"a dedicated replica's cold start (default {DEFAULT_COLD_START_SECONDS:g} s)",
    )
    p.add_argument("--p95-slo-seconds", type=_number, metavar="S", help="p95 latency target (default per category)")
    p.add_argument("--hours", type=_number, metavar="H", help="horizon for synthetic profiles (default 720)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed: the same seed gives the same trace")
    p.add_argument("--list-prices", action="store_true", help="price GPUs at Hugging Face's list price")
    p.add_argument(
        "--throughput",
        type=_throughput,
        action="append",
        default=[],
        metavar="GPU=RPH",
        help="requests/hour one replica serves at the latency target, e.g. T4=1800 or nvidia-t4=1800 (repeatable)",
    )
    p.add_argument("--service-time-seconds", type=_number, metavar="S", help="one request's latency on an idle GPU")
    p.add_argument("--memory-gb", type=_number, help="GPU memory the model needs (default from the catalog)")
    p.add_argument("--min-replicas", type=REPLICAS, default=DEFAULT_MIN_REPLICAS, help="always-on replicas")
    p.add_argument(
        "--max-replicas",
        type=REPLICAS,
        default=DEFAULT_MAX_REPLICAS,
        help=f"most replicas (default {DEFAULT_MAX_REPLICAS})",
    )
    p.add_argument("--utilization", type=_number, default=DEFAULT_TARGET_UTILIZATION, help="target, 0-1")
    p.add_argument("--json", action="store_true", help="print options, break-even and recommendation as JSON")
    p.set_defaults(func=run)


def to_input(args: argparse.Namespace) -> BreakevenInput:
    if args.compute_seconds_per_request is not None and args.serverless_cost_per_second is None:
        raise InvalidInputError(  # it was ignored without a word
            "--compute-seconds-per-request goes with --serverless-cost-per-second (a price per second of compute); "
            "give both, or neither."
        )
    return BreakevenInput(
        requests_per_hour=args.requests_per_hour,
        profile=args.profile,
        model_id=args.model_id,
        since=args.since,
        until=args.until,
        resolution=args.resolution,
        serverless_cost_per_request=args.serverless_cost_per_request,
        serverless_cost_per_second=args.serverless_cost_per_second,
        compute_seconds_per_request=args.compute_seconds_per_request,
        serverless_cold_start_seconds=args.serverless_cold_start_seconds,
        serverless_cold_start_share=args.serverless_cold_start_share,
        scale_to_zero_minutes=args.scale_to_zero_minutes,
        cold_start_seconds=args.cold_start_seconds,
        p95_slo_seconds=args.p95_slo_seconds,
        hours=args.hours,
        seed=args.seed,
        list_prices=args.list_prices,
        throughput_per_hour=tuple(args.throughput),
        service_time_seconds=args.service_time_seconds,
        memory_gb=args.memory_gb,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_utilization=args.utilization,
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.services.init()
    result = ctx.services.breakeven.simulate(ctx.caller, to_input(args))
    if args.json:
        print_json(result.to_dict())
    else:
        print_text(result)
    return 0


def print_text(result: BreakevenResult) -> None:
    ev = result.evaluation
    t = result.summary()
    where = f" for {t['model']}" if t["model"] else ""
    print(
        f"{t['profile']} traffic{where}: {t['mean_requests_per_hour']:,.2f} requests/hour on average, "
        f"{t['peak_requests_per_hour']:,.0f} at the busiest {result.scenario.capacity_window_minutes} minutes, "
        f"{t['requests']:,} requests over {t['horizon_hours']:,.0f} hours"
    )
    if h := t["history"]:
        print(f"recorded traffic from {h['start']} to {h['end']} ({h['resolution']} buckets, cache hits excluded)")
    print(f"serverless price: {result.serverless_basis}")
    sc = result.scenario
    if sc.serverless_cold_start_s > 0 and sc.serverless_cold_start_share > 0:
        share = sc.serverless_cold_start_share
        print(f"serverless cold starts: {sc.serverless_cold_start_s:g} s for {share:.1%} of requests")
    print("figures per month of 730 hours; money in USD rounded to cents\n")
    rows = []
    for o in ev.options:
        d = o.to_dict()
        rows.append(
            {
                "option": d["option"],
                "monthly_usd": d["monthly_cost_usd"] or "",
                "billed_h": "" if d["billed_hours"] is None else f"{d['billed_hours']:,.1f}",
                "replicas": "" if d["replicas"] is None else d["replicas"],
                "util": "" if d["utilization"] is None else f"{d['utilization']:.1%}",
                "cold": "" if d["cold_start_fraction"] is None else f"{d['cold_start_fraction']:.1%}",
                "p95_s": "" if d["p95_latency_s"] is None else f"{d['p95_latency_s']:.2f}",
                "meets_slo": "yes" if d["meets_slo"] else "no",
                "excluded": d["excluded_reason"] or "",
            }
        )
    print_table(rows)
    print()
    be = ", ".join(
        f"{gpu} {'never' if r is None else f'{r:,.2f}'}" for gpu, r in ev.break_even_requests_per_hour.items()
    )
    print(f"always-on break-even (requests/hour against serverless): {be}")
    if result.sweep.crossovers:
        shown = ", ".join(
            f"{c.option} overtakes {c.other} at {c.requests_per_hour:,.1f}" for c in result.sweep.crossovers[:8]
        )
        print(f"crossovers: {shown}")
    rec = ev.recommendation
    print(f"\nrecommendation: {rec.option or 'none'}. {rec.reason}")
