"""Benchmark the break-even simulator: one evaluation of every option over a 30-day minute-by-minute trace, and a
200-point sweep of cost against requests/hour, for every traffic profile (the slowest is the headline).

Goals (issue 6): one evaluation <= 50 ms, the sweep <= 1 s. Prints medians of wall-clock and CPU time; the machine is
shared, so CPU time (process time) shows the work itself and wall time what a person waits.

    .venv/bin/python benchmarks/breakeven.py            # full: 30 days, 15 evaluations and 5 sweeps per profile
    .venv/bin/python benchmarks/breakeven.py --quick    # 7 days, fewer repeats (a smoke run)
    .venv/bin/python benchmarks/breakeven.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from core.breakeven import Gpu, Scenario, Traffic, evaluate, from_counts, make_traffic, sweep
from core.breakeven.defaults import category_defaults
from core.breakeven.serverless import per_request
from core.breakeven.sweep import default_range
from core.catalog.loader import parse_hardware
from core.config import DATA_DIR

EVAL_GOAL_MS = 50.0
SWEEP_GOAL_S = 1.0


def shipped_scenario() -> Scenario:
    """The shipped hardware catalog (T4, L4, A10G, A100) with the chat defaults and $0.01 serverless requests."""
    from decimal import Decimal

    chat = category_defaults("chat")
    gpus = tuple(
        Gpu(
            id=h["id"],
            hourly_usd=h["hourly_usd"],
            memory_gb=float(h["gpu_memory_gb"]),
            throughput_per_hour=chat.throughput_per_hour.get(h["id"]),
        )
        for h in parse_hardware(DATA_DIR / "hardware.yaml")
    )
    return Scenario(
        serverless=per_request(Decimal("0.01")),
        gpus=gpus,
        service_time_s=chat.service_time_s,
        p95_slo_s=chat.p95_slo_s,
        idle_timeout_minutes=15,  # short enough that every profile scales to zero somewhere
        cold_start_s=120,
    )


def traces(hours: float, rph: float) -> dict[str, Traffic]:
    out = {p: make_traffic(p, rph, hours, seed=1) for p in ("flat", "poisson", "diurnal", "bursty")}
    # a recorded history: sparse, irregular minutes (what a small model's ai_usage_log looks like)
    rng = np.random.default_rng(2)
    minutes = round(hours * 60)
    recorded = rng.poisson(np.repeat(rng.gamma(0.6, 1.0, minutes // 60 + 1), 60)[:minutes] * rph / 60)
    out["history"] = from_counts(recorded)
    return out


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `repeats` calls (after one warm-up call)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="7-day trace and fewer repeats")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--requests-per-hour", type=float, default=200.0)
    args = ap.parse_args()
    hours = 24 * 7 if args.quick else 24 * 30
    eval_repeats, sweep_repeats = (5, 1) if args.quick else (15, 5)
    sc = shipped_scenario()
    results = []
    for name, traffic in traces(hours, args.requests_per_hour).items():
        ev = evaluate(traffic, sc)
        low, high = default_range(traffic, ev.break_even_requests_per_hour)
        e_wall, e_cpu = timed(lambda t=traffic: evaluate(t, sc), eval_repeats)
        s_wall, s_cpu = timed(
            lambda t=traffic, lo=low, hi=high: sweep(t, sc, low=lo, high=hi, points=200), sweep_repeats
        )
        results.append(
            {
                "profile": name,
                "minutes": traffic.minutes,
                "options": len(ev.options),
                "evaluate_ms_wall": round(e_wall * 1000, 2),
                "evaluate_ms_cpu": round(e_cpu * 1000, 2),
                "sweep_s_wall": round(s_wall, 3),
                "sweep_s_cpu": round(s_cpu, 3),
                "recommendation": ev.recommendation.option,
            }
        )
    worst_eval = max(results, key=lambda r: r["evaluate_ms_wall"])
    worst_sweep = max(results, key=lambda r: r["sweep_s_wall"])
    summary = {
        "mode": "quick" if args.quick else "full",
        "trace_minutes": results[0]["minutes"],
        "requests_per_hour": args.requests_per_hour,
        "sweep_points": 200,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "profiles": results,
        "worst_evaluate_ms_wall": worst_eval["evaluate_ms_wall"],
        "worst_evaluate_profile": worst_eval["profile"],
        "worst_sweep_s_wall": worst_sweep["sweep_s_wall"],
        "worst_sweep_profile": worst_sweep["profile"],
        "evaluate_goal_met": worst_eval["evaluate_ms_wall"] <= EVAL_GOAL_MS,
        "sweep_goal_met": worst_sweep["sweep_s_wall"] <= SWEEP_GOAL_S,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"break-even benchmark ({summary['mode']}): {summary['trace_minutes']:,}-minute traces at "
        f"{args.requests_per_hour:g} requests/hour, {results[0]['options']} options, 200-point sweep; "
        f"load average {summary['load_average_1m']} on {summary['cpus']} CPUs"
    )
    print(f"{'profile':<9} {'evaluate wall':>14} {'evaluate cpu':>13} {'sweep wall':>11} {'sweep cpu':>10}")
    for r in results:
        print(
            f"{r['profile']:<9} {r['evaluate_ms_wall']:>11.2f} ms {r['evaluate_ms_cpu']:>10.2f} ms "
            f"{r['sweep_s_wall']:>9.3f} s {r['sweep_s_cpu']:>8.3f} s"
        )
    ok = "met" if summary["evaluate_goal_met"] else "MISSED"
    print(f"worst evaluation: {worst_eval['evaluate_ms_wall']:.2f} ms ({worst_eval['profile']}); goal <= 50 ms: {ok}")
    ok = "met" if summary["sweep_goal_met"] else "MISSED"
    print(f"worst sweep: {worst_sweep['sweep_s_wall']:.3f} s ({worst_sweep['profile']}); goal <= 1 s: {ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
