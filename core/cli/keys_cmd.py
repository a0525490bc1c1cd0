"""`python -m core keys create|list|revoke`: API keys for the HTTP gateway. A key is printed once, at creation."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from core.cli import Context
from core.cli.args import iso_date, positive_int
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError, NotFoundError
from core.services import Principal, Role
from core.services.keys import ApiKeyView
from core.services.times import to_local


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys for the HTTP gateway")
    s = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = s.add_parser("create", help="create a key (printed once: store it now)")
    create.add_argument("--user", required=True, metavar="EMAIL", help="the key's owner, whose credits pay")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--monthly-credits", type=positive_int, help="most credits per calendar month")
    create.add_argument("--rpm", type=positive_int, help="most requests per minute")
    create.add_argument("--models", help="comma-separated catalog model ids the key may call (default: all)")
    create.add_argument(
        "--expires",
        type=iso_date,
        metavar="DATE",
        help="the key stops working when this day starts (reporting time zone)",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=run_create)
    ls = s.add_parser("list", help="list keys (never the keys themselves: their prefixes)")
    ls.add_argument("--user", metavar="EMAIL", help="only this user's keys")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    revoke = s.add_parser("revoke", help="revoke a key: calls with it are refused from now on")
    revoke.add_argument("key", help="the key's id or prefix (from `keys list`)")
    revoke.add_argument("--user", required=True, metavar="EMAIL", help="the key's owner")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(func=run_revoke)
    demo = s.add_parser("demo", help="a fresh key for trying the gateway (`make run` prints it); revokes the last one")
    demo.add_argument("--user", metavar="EMAIL", help="its owner (default: the first admin; with --as, that person)")
    demo.set_defaults(func=run_demo)


def _row(k: ApiKeyView) -> dict[str, Any]:
    return {
        "id": k.id,
        "prefix": k.prefix,
        "name": k.name,
        "owner": k.owner_email,
        "status": k.status(),
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "expires_at": k.expires_at,
        "monthly_credits": k.limits.monthly_credits,
        "rpm": k.limits.rpm,
        "models": ",".join(k.limits.models) if k.limits.models is not None else "all",
    }


def run_create(args: argparse.Namespace, ctx: Context) -> int:
    models = None
    if args.models is not None:  # an empty list, or an empty entry, would widen the key to every model: refused
        models = [m.strip() for m in args.models.split(",")]
        if not all(models):
            raise InvalidInputError(
                f"--models {args.models!r} names an empty model; give catalog model ids separated by commas, or leave"
                " --models out for a key that may call every model."
            )
    made = ctx.services.keys.create(
        ctx.caller,
        args.user,
        args.name,
        monthly_credits=args.monthly_credits,
        rpm=args.rpm,
        models=models,
        expires=args.expires,
    )
    if args.json:
        print_json({**_row(made.key), "key": made.secret})
    else:
        print(made.secret)
        print(
            f"created key {made.key.id} ({made.key.prefix}…) for {made.key.owner_email}: store it now, it is not "
            "shown again",
            file=sys.stderr,
        )
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = [_row(k) for k in ctx.services.keys.list(ctx.caller, args.user)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, tz=ctx.services.settings.reporting_tz)
    return 0


DEMO_KEY_NAME = "demo key (make run)"


def run_demo(args: argparse.Namespace, ctx: Context) -> int:
    keys = ctx.services.keys
    owner = args.user
    if owner is None and isinstance(ctx.caller, Principal) and ctx.caller.role != Role.ADMIN:
        owner = ctx.caller.email  # `--as` someone who may make only their own keys: theirs, not an admin's
    if owner is None:
        admins = ctx.services.users.list(ctx.caller, role="admin")
        if not admins:
            raise NotFoundError("No admin to own the demo key; pass --user EMAIL (or run `python -m core demo`).")
        owner = admins[0].email
    for old in keys.list(ctx.caller, owner):
        if old.name == DEMO_KEY_NAME and old.status() == "active":
            keys.revoke(ctx.caller, owner, old.id)
    made = keys.create(ctx.caller, owner, DEMO_KEY_NAME)
    print(f"demo API key for {made.key.owner_email} (shown once; the previous demo key is revoked): {made.secret}")
    return 0


def run_revoke(args: argparse.Namespace, ctx: Context) -> int:
    asked = datetime.now(UTC).replace(tzinfo=None)  # stored times are naive UTC
    key = ctx.services.keys.revoke(ctx.caller, args.user, args.key)
    if args.json:
        print_json(_row(key))
    elif key.revoked_at is not None and key.revoked_at < asked:  # revoking a revoked key changes nothing: say so
        when = to_local(key.revoked_at, ctx.services.settings.reporting_tz)
        print(
            f"key {key.id} ({key.prefix}…) of {key.owner_email} was already revoked on {when:%Y-%m-%d %H:%M} "
            f"({ctx.services.settings.reporting_tz})"
        )
    else:
        print(f"revoked key {key.id} ({key.prefix}…) of {key.owner_email}")
    return 0
