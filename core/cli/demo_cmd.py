"""`python -m core demo`: write a deterministic synthetic history (users, usage, ledger, teams and budgets)."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.args import bounded_int, seed_int
from core.cli.output import ProgressBar, print_json
from core.errors import ConfigError, InvalidInputError
from core.services.demo import DEMO_MAX_DAYS, DEMO_MAX_ROWS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="write a deterministic demo history of usage and credits")
    p.add_argument(
        "--rows",
        type=bounded_int(1, DEMO_MAX_ROWS, "rows"),
        default=200_000,
        help=f"usage events to write (default 200,000; at most {DEMO_MAX_ROWS:,})",
    )
    p.add_argument(
        "--days",
        type=bounded_int(1, DEMO_MAX_DAYS, "days"),
        default=90,
        help=f"days of history ending now (default 90; at most {DEMO_MAX_DAYS:,})",
    )
    p.add_argument("--seed", type=seed_int, default=7, help="random seed: the same seed gives the same history")
    p.add_argument("--replace", action="store_true", help="wipe existing usage and ledger rows first")
    p.add_argument("--if-empty", action="store_true", help="do nothing when the database already has usage")
    p.add_argument(
        "--with-endpoints",
        action="store_true",
        help="also write 3 days of dedicated-endpoint history on the local stand-in (HF_ENDPOINTS_API_URL=local)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    services, caller = ctx.services, ctx.caller
    if args.with_endpoints and not services.endpoints.is_local(caller):  # refused before any history is written
        raise ConfigError("--with-endpoints runs only on the local stand-in: set HF_ENDPOINTS_API_URL=local.")
    if args.if_empty and args.replace:  # one keeps a history, the other wipes it: which was meant is not ours to guess
        raise InvalidInputError("--if-empty keeps an existing history and --replace wipes it; give one of them.")
    services.init()
    if args.if_empty and services.demo.has_usage(caller):
        if args.json:  # a script reading the answer gets JSON either way
            print_json({"written": False, "reason": "demo history already present"})
        else:
            print("demo history already present; nothing to do")
        return 0
    report = services.demo.write_history(
        caller,
        rows=args.rows,
        days=args.days,
        seed=args.seed,
        replace=args.replace,
        progress=ProgressBar("demo", enabled=not args.json and None),
    )
    endpoints = services.endpoints.demo(caller) if args.with_endpoints else None
    if args.json:
        print_json({**report.__dict__, "endpoints": endpoints})
    else:
        print(
            f"wrote {report.usage_rows:,} usage events and {report.transactions:,} ledger rows for "
            f"{report.users} users, {report.teams} teams and {report.budgets} budgets in {report.seconds:.1f} s"
        )
        if endpoints is not None:
            print("wrote 3 days of dedicated-endpoint history on the local stand-in (demo-tts, demo-chat)")
    return 0
