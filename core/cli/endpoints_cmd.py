"""`python -m core endpoints list|show|create|pause|resume|scale-to-zero|delete|wait|meter|hardware`.

With HF_ENDPOINTS_API_URL=local every command runs against the offline stand-in (its state file is shared with the
app); otherwise HF_TOKEN and HF_NAMESPACE select the real Hugging Face account.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.cli import Context
from core.cli.args import bounded_int
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError
from core.services import credits_text, dollars, hourly_text, money_text
from core.services.endpoints import MAX_IDLE_MINUTES, MAX_REPLICAS, STATES, EndpointView

MAX_WAIT_SECONDS = 86_400
MAX_DEMO_DAYS = 31  # what the endpoints demo accepts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("endpoints", help="dedicated Hugging Face Inference Endpoints and their uptime cost")
    s = p.add_subparsers(dest="endpoints_command", metavar="ACTION", required=True)

    ls = s.add_parser("list", help="endpoints with state, $/h and month-to-date cost (refreshed from the API)")
    ls.add_argument("--all", action="store_true", help="include endpoints deleted this month")
    ls.add_argument("--no-refresh", action="store_true", help="show the recorded state without asking the API")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)

    show = s.add_parser("show", help="one endpoint with its state history and cost this month")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)

    c = s.add_parser("create", help="create an endpoint (its uptime is charged to the owner's credits)")
    c.add_argument("--name", required=True, help="1-32 lowercase letters, digits and hyphens")
    c.add_argument("--model", required=True, help="Hub repository, e.g. facebook/mms-tts-eng")
    c.add_argument(
        "--hardware",
        required=True,
        help="T4, L4, A10G or A100, or Hugging Face's nvidia-t4, nvidia-l4, ... (see `endpoints hardware`)",
    )
    c.add_argument(
        "--min-replicas",
        type=bounded_int(0, MAX_REPLICAS, "replicas"),
        default=0,
        help=f"replicas kept running (0-{MAX_REPLICAS}, default 0: scales to zero)",
    )
    c.add_argument(
        "--max-replicas",
        type=bounded_int(1, MAX_REPLICAS, "replicas"),
        default=1,
        help=f"most replicas (1-{MAX_REPLICAS}, default 1)",
    )
    c.add_argument(
        "--scale-to-zero-minutes",
        type=bounded_int(1, MAX_IDLE_MINUTES, "minutes"),
        default=15,
        help=f"idle minutes before scaling to zero (1-{MAX_IDLE_MINUTES:,}, default 15)",
    )
    c.add_argument("--no-autoscale", action="store_true", help="fixed size: max replicas always on")
    c.add_argument("--task", help="Hub task, e.g. text-to-speech (default: from the catalog)")
    c.add_argument(
        "--owner", help="email (or id) of the user whose credits pay the uptime (default: the person of --as)"
    )
    c.add_argument("--wait", action="store_true", help="wait until it runs")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_create)

    for action, helptext in (
        ("pause", "pause (no charge while paused; resume by hand)"),
        ("resume", "resume a paused, scaled-to-zero or failed endpoint"),
        ("scale-to-zero", "scale to zero now (the next request wakes it, with a cold start)"),
        ("refresh", "ask the API for the current state and record any change"),
    ):
        a = s.add_parser(action, help=helptext)
        a.add_argument("name")
        a.add_argument("--json", action="store_true")
        a.set_defaults(func=run_action, action=action)

    d = s.add_parser("delete", help="delete an endpoint (irreversible)")
    d.add_argument("name")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_delete)

    w = s.add_parser("wait", help="wait until an endpoint reaches a state")
    w.add_argument("name")
    w.add_argument("--state", default="running", choices=STATES, help="the state to wait for (default running)")
    w.add_argument(
        "--timeout",
        type=bounded_int(1, MAX_WAIT_SECONDS, "seconds"),
        default=900,
        help="seconds (default 900; at most a day)",
    )
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=run_wait)

    m = s.add_parser("meter", help="post complete hours of uptime to the owners' ledgers (safe to repeat)")
    m.add_argument("--until", type=_iso_utc, default=None, help="naive UTC time, e.g. 2026-12-01T10:00 (default now)")
    m.add_argument("--no-refresh", action="store_true", help="meter the recorded history without asking the API")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_meter)

    demo = s.add_parser("demo", help="a few days of history for two endpoints on the local stand-in (offline only)")
    demo.add_argument(
        "--days",
        type=bounded_int(1, MAX_DEMO_DAYS, "days"),
        default=3,
        help=f"days of history (1-{MAX_DEMO_DAYS}, default 3)",
    )
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=run_demo)

    h = s.add_parser("hardware", help="hardware choices: our hourly price and Hugging Face's live price")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=run_hardware)


def _iso_utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-12-01T10:00") from None
    if value.tzinfo is not None:
        raise argparse.ArgumentTypeError("give the time in UTC without an offset, e.g. 2026-12-01T10:00")
    return value


def _row(v: EndpointView, month_usd: Decimal | None = None, *, text: bool = False) -> dict[str, Any]:
    """One endpoint as a record: exact Decimals for --json, rounded dollars for people."""
    return {
        "name": v.name,
        "model": v.model_repo,
        "hardware": v.hardware_id,
        "state": v.state,
        "replicas": v.replicas,
        "usd_per_hour": hourly_text(v.hourly_usd) if text else money_text(v.hourly_usd),
        "month_to_date_usd": dollars(month_usd or Decimal(0)) if text else month_usd,
        "owner": v.owner_email,
        "url": v.url,
    }


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    ov = ctx.services.endpoints.overview(ctx.caller, refresh=not args.no_refresh)
    rows = ov.all_rows if args.all else ov.rows
    data = [
        _row(r.endpoint, r.month_to_date_usd if args.json else r.shown_month_to_date_usd, text=not args.json)
        for r in rows
    ]
    if args.json:
        print_json(
            {
                "as_of": ov.as_of,
                "month_start_utc": ov.month_start,
                "endpoints": data,
                "month_total_usd": ov.month_total_usd,
                "refresh_errors": ov.refresh_errors,
            }
        )
    else:
        print_table(data)
        deleted = ov.shown_deleted_usd if not args.all and ov.deleted_rows else None
        print(
            f"\nmonth to date: {dollars(ov.shown_month_total_usd)} (posted {dollars(ov.shown_month_metered_usd)}, "
            f"not yet metered {dollars(ov.shown_month_accrued_usd)}"
            + (f"; {dollars(deleted)} of it on endpoints deleted this month, --all lists them" if deleted else "")
            + f"); billing now {hourly_text(ov.cost_per_hour_now_usd)}"
        )
    for name, problem in ov.refresh_errors.items():
        print(f"warning: {name}: {problem}", file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    detail = ctx.services.endpoints.detail(ctx.caller, args.name)
    view, cost, events = detail.endpoint, detail.month_cost, detail.events
    if args.json:
        print_json({"endpoint": view, "month_cost": cost, "events": events})
        return 0
    for key, value in _row(view, cost.shown_total_usd if cost else Decimal(0), text=True).items():
        print(f"{key:>18}: {value if value is not None else ''}")
    print(
        f"{'scaling':>18}: min {view.min_replicas}, max {view.max_replicas}, "
        + (
            f"scale to zero after {view.scale_to_zero_minutes} idle min"
            if view.scale_to_zero_minutes
            else "never scales to zero"
        )
    )
    if cost:
        print(
            f"{'this month':>18}: posted {dollars(cost.shown_metered_usd)} ({credits_text(cost.metered_credits)}), "
            f"not yet metered {dollars(cost.shown_accrued_usd)}; {cost.replica_minutes} replica-minutes"
        )
    print()
    print_table(
        [{"at": e.at, "state": e.state, "replicas": e.replicas, "note": e.note} for e in events],
        tz=ctx.services.settings.reporting_tz,
    )
    return 0


def run_create(args: argparse.Namespace, ctx: Context) -> int:
    owner = args.owner or getattr(ctx.caller, "email", None)  # `--as PERSON`: their own endpoint
    if owner is None:
        raise InvalidInputError("Name who pays the uptime: --owner EMAIL, or act as that person with --as EMAIL.")
    view = ctx.services.endpoints.create(
        ctx.caller,
        args.name,
        args.model,
        args.hardware,
        owner=owner,
        auto_scale=not args.no_autoscale,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        scale_to_zero_minutes=args.scale_to_zero_minutes,
        task=args.task,
        wait=args.wait,
    )
    if args.json:
        print_json({**dataclasses.asdict(view), "hourly_usd": money_text(view.hourly_usd)})
    else:
        print(
            f"created {view.name} ({view.model_repo} on {view.hardware_id}, "
            f"{hourly_text(view.hourly_usd)} per replica, "
            f"owner {view.owner_email}): {view.state}"
        )
    return 0


def run_action(args: argparse.Namespace, ctx: Context) -> int:
    endpoints = ctx.services.endpoints
    call = {
        "pause": endpoints.pause,
        "resume": endpoints.resume,
        "scale-to-zero": endpoints.scale_to_zero,
        "refresh": endpoints.refresh,
    }[args.action]
    view = call(ctx.caller, args.name)
    if args.json:
        print_json(view)
    else:
        replicas = f"{view.replicas} billed {'replica' if view.replicas == 1 else 'replicas'}"
        print(f"{view.name}: {view.state} ({replicas}, {hourly_text(view.cost_per_hour_now_usd)} now)")
    return 0


def run_delete(args: argparse.Namespace, ctx: Context) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInputError(f"Deleting {args.name} cannot be undone: add --yes to confirm.")
        typed = input(f"Delete endpoint {args.name}? This cannot be undone. Type its name to confirm: ")
        if typed.strip() != args.name:
            print("not deleted", file=sys.stderr)
            return 1
    view = ctx.services.endpoints.delete(ctx.caller, args.name)
    if args.json:
        print_json(view)
    else:
        print(f"deleted {view.name}; uptime up to {view.deleted_at:%Y-%m-%d %H:%M} UTC is still metered")
    return 0


def run_wait(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.services.endpoints.wait_until(ctx.caller, args.name, args.state, timeout=args.timeout)
    if args.json:
        print_json(view)
    else:
        print(f"{view.name}: {view.state}")
    return 0


def run_meter(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.endpoints.meter(ctx.caller, args.until, refresh=not args.no_refresh)
    if args.json:
        print_json(report.__dict__)
    else:
        print(
            f"metered up to {report.until:%Y-%m-%d %H:%M} UTC: {report.hours_charged} hours charged "
            f"({dollars(report.base_cost_usd)} at hardware rates, {credits_text(report.credits)} with markup), "
            f"{report.hours_resumed} interrupted hours completed, {report.endpoints} endpoints"
        )
        for email in report.overdrawn:
            print(f"warning: {email} is below zero after delivered uptime; top up their credits", file=sys.stderr)
    for name, problem in report.warnings.items():
        print(f"warning: {name}: {problem}", file=sys.stderr)
    return 0


def run_demo(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.endpoints.demo(ctx.caller, days=args.days)
    if args.json:
        print_json({"endpoints": report.endpoints, "events": report.events, "metered": report.metered.__dict__})
    else:
        m = report.metered
        print(
            f"endpoints demo on the local stand-in: {', '.join(report.endpoints)} with {report.events} state changes "
            f"over {args.days} days; metered {m.hours_charged} hours "
            f"({dollars(m.base_cost_usd)}, {credits_text(m.credits)})"
        )
    return 0


def run_hardware(args: argparse.Namespace, ctx: Context) -> int:
    options, problem = ctx.services.endpoints.hardware_options(ctx.caller)
    data = [
        {
            "id": o.id,
            "instance_type": o.instance_type,
            "gpu_memory_gb": o.gpu_memory_gb,
            "usd_per_hour": money_text(o.hourly_usd),
            "hf_list_usd_per_hour": money_text(o.list_hourly_usd),
            "hf_live_usd_per_hour": money_text(o.live_hourly_usd),
            "available": o.available,
        }
        for o in options
    ]
    if args.json:
        print_json({"hardware": data, "live_prices_error": problem})
    else:
        print_table(data)
        if problem:
            print(f"warning: live prices unavailable: {problem}", file=sys.stderr)
    return 0
