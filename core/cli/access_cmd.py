"""`python -m core access`: who may call what, every service method against every role (read from the engine's own
rules, so the table is always the one enforced)."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.output import print_json, print_table
from core.services.rules import matrix


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("access", help="the access matrix: every service method against every role")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    rows = matrix()
    if args.json:
        print_json(rows)
    else:
        print_table(rows)
        print("yes: allowed · own: only on, or only showing, their own account · no: refused")
    return 0
