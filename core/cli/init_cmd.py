"""`python -m core init`: migrate the database and load the catalogs (idempotent)."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create or migrate the database and load the catalogs (safe to run twice)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.init()
    if args.json:
        print_json(report)
    elif report.changed:
        print(
            f"catalog loaded: {report.models_added} models added, {report.models_updated} updated; "
            f"{report.hardware_added} hardware added, {report.hardware_updated} updated"
        )
    else:
        print("database up to date; catalog unchanged")
    return 0
