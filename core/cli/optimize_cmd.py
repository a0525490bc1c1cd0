"""`python -m core optimize`: the savings found in a period's real traffic, largest monthly saving first. Read from the
analytics store, synced first whenever the database holds rows it lacks (`--no-sync` answers from it as it is)."""

from __future__ import annotations

import argparse
import textwrap

from core.cli import Context
from core.cli.args import iso_date
from core.cli.output import print_json
from core.services import dollars
from core.services.spend import UP_TO_DATE


def period_args(p: argparse.ArgumentParser) -> None:
    """--since/--until/--no-sync/--json, shared with `pricing whatif`."""
    p.add_argument("--since", type=iso_date, help="first day (YYYY-MM-DD, reporting time zone; default 30 days ago)")
    p.add_argument("--until", type=iso_date, help="last day, included (default: the day of the last sync)")
    p.add_argument("--no-sync", action="store_true", help="answer from the analytics store as it is, without syncing")
    p.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="savings in real traffic: dedicated GPUs, endpoint settings, repeated requests, cheaper models (hints)",
        description=(
            "Runs the break-even model over every open model's recorded traffic and every metered endpoint, finds "
            "repeated identical requests the response cache would have served, and hints at cheaper models of the "
            "same category; lists them by monthly saving (the period's figures scaled to 730 hours)."
        ),
    )
    period_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.optimize.savings_report(
        ctx.caller, since=args.since, until=args.until, sync_if_older_than=None if args.no_sync else UP_TO_DATE
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"period {report.period.label()}; as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC (last sync)")
    if not report.opportunities:
        print("no saving of $1/month or more found in this period's traffic")
        return 0
    for i, o in enumerate(report.opportunities, 1):
        head = f"{i:>3}. ${o.monthly_saving_usd:>10,.2f}/month  {o.kind.value}{' (hint)' if o.hint else ''}"
        print(head)
        print(textwrap.indent(textwrap.fill(o.action, 110), " " * 7))
    print(
        f"total {dollars(report.monthly_saving_usd)}/month without the hints (opportunities can overlap); "
        "--json shows each one's evidence"
    )
    return 0
