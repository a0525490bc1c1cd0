"""`python -m core users add|list`."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.args import decimal_arg
from core.cli.output import print_json, print_table
from core.services.users import ROLES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="add and list users")
    s = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = s.add_parser("add", help="add a user")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    add.add_argument("--markup", type=decimal_arg, default=None, help="developer markup in percent (default 100)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=run_add)
    ls = s.add_parser("list", help="list users with their balances")
    ls.add_argument("--role", choices=ROLES)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)


def run_add(args: argparse.Namespace, ctx: Context) -> int:
    user = ctx.services.users.add(ctx.caller, email=args.email, name=args.name, role=args.role, markup_pct=args.markup)
    if args.json:
        print_json(user)
    else:
        print(f"added {user.email} ({user.role}, markup {user.developer_markup_pct.normalize():f}%) as user {user.id}")
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    users = ctx.services.users.list(ctx.caller, role=args.role)
    if args.json:
        print_json(users)
    else:
        print_table(
            [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "role": u.role,
                    "markup_pct": u.developer_markup_pct,
                    "credits": u.credit_balance,
                }
                for u in users
            ]
        )
    return 0
