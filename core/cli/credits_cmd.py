"""`python -m core credits grant|balance|history|refund` and `python -m core ledger check|disputed|spool`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from core.cli import Context, spool_cmd
from core.cli.args import iso_date, positive_int
from core.cli.output import print_json, print_table
from core.services import credits_text
from core.services.errors import InvalidInputError
from core.services.ledger import DISPUTES_SHOWN, GRANT_KINDS, PAGE_SIZE, TRANSACTION_TYPES
from core.services.times import day_bounds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("credits", help="grant, inspect and refund credits")
    s = p.add_subparsers(dest="credits_command", metavar="ACTION", required=True)

    g = s.add_parser("grant", help="add credits to a user (grant, top-up) or correct a balance (adjustment)")
    g.add_argument("--user", required=True, help="the user's email (or id)")
    g.add_argument(
        "--credits",
        required=True,
        help="whole credits to add, e.g. 1500 or 1,500 (negative: adjustment only); checked as the Ledger page checks",
    )
    g.add_argument("--kind", choices=GRANT_KINDS, default="grant", help="default grant; adjustment may be negative")
    g.add_argument("--note", help="why, shown in the history and the audit log")
    g.add_argument("--idempotency-key", help="a retried command with the same key posts once")
    g.add_argument(
        "--yes-large",
        action="store_true",
        help="confirm a grant above GRANT_CONFIRM_ABOVE_CREDITS (default 250,000 credits); refused without it",
    )
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=run_grant)

    b = s.add_parser("balance", help="a user's total, held and available credits")
    b.add_argument("--user", required=True)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_balance)

    h = s.add_parser("history", help="a user's transactions with the running balance")
    h.add_argument("--user", required=True)
    h.add_argument(
        "--limit", type=positive_int, help="only the most recent N, in the order they were posted (as a statement)"
    )
    h.add_argument(
        "--type",
        dest="types",
        action="append",
        choices=TRANSACTION_TYPES,
        help="only this type (repeat for several); pages newest first",
    )
    h.add_argument("--since", type=iso_date, help="from this day (YYYY-MM-DD, reporting time zone); pages newest first")
    h.add_argument(
        "--until", type=iso_date, help="to this day, included (YYYY-MM-DD, reporting time zone); pages newest first"
    )
    h.add_argument("--before", type=positive_int, metavar="ID", help="the page older than transaction ID")
    h.add_argument("--page-size", type=positive_int, help=f"transactions per page, newest first (default {PAGE_SIZE})")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=run_history)

    r = s.add_parser("refund", help="refund a debit (usage, endpoint uptime or negative adjustment), once")
    r.add_argument("--transaction", required=True, type=positive_int, help="the id of the debit")
    r.add_argument("--reason", required=True)
    r.add_argument("--credits", type=positive_int, help="refund only this many credits (default: all of it)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_refund)

    lp = sub.add_parser("ledger", help="verify the credits ledger")
    ls = lp.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    c = ls.add_parser("check", help="prove every balance from its transactions; exit 1 on any violation")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_check)
    spool_cmd.add_parser(ls)

    d = ls.add_parser("disputed", help="calls whose upstream reported more usage than the request allowed (capped)")
    d.add_argument("--user", help="only this user's calls (email or id)")
    d.add_argument("--since", type=iso_date, help="from this day (YYYY-MM-DD, reporting time zone)")
    d.add_argument(
        "--limit", type=positive_int, default=DISPUTES_SHOWN, help=f"at most N calls (default {DISPUTES_SHOWN})"
    )
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_disputed)


def run_grant(args: argparse.Namespace, ctx: Context) -> int:
    asked = datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # the ledger's times are naive UTC
    tx = ctx.services.ledger.grant(
        ctx.caller,
        args.user,
        args.credits,
        kind=args.kind,
        note=args.note,
        idempotency_key=args.idempotency_key,
        confirm_large=args.yes_large,
    )
    if args.json:
        print_json(tx)
    elif args.idempotency_key and tx.created_at < asked:  # the key's first grant, posted before: nothing new
        now = ctx.services.ledger.balance(ctx.caller, args.user)
        print(
            f"Already posted under idempotency key {args.idempotency_key!r}: {tx.transaction_type} of "
            f"{credits_text(tx.amount, signed=True)} to {args.user}, transaction {tx.id} at "
            f"{tx.created_at:%Y-%m-%d %H:%M:%S} UTC; nothing was added now. Balance now {now.total:,}."
        )
    else:
        print(
            f"{tx.transaction_type} of {credits_text(tx.amount, signed=True)} to {args.user}: transaction {tx.id}, "
            f"balance {tx.balance_after:,}"
        )
    return 0


def run_balance(args: argparse.Namespace, ctx: Context) -> int:
    bal = ctx.services.ledger.balance(ctx.caller, args.user)
    if args.json:
        print_json({"total": bal.total, "held": bal.held, "available": bal.available})
    else:
        print(f"{args.user}: {credits_text(bal.total)}, {bal.held:,} held, {bal.available:,} available")
    return 0


def run_history(args: argparse.Namespace, ctx: Context) -> int:
    if args.limit and args.page_size:  # one of them would be dropped without a word
        raise InvalidInputError("--limit and --page-size both say how many rows to show; give one of them.")
    paged = args.types or args.since or args.until or args.before or args.page_size
    if paged:
        page = ctx.services.ledger.history_page(
            ctx.caller,
            args.user,
            before=args.before,
            size=args.page_size or args.limit or PAGE_SIZE,
            kinds=tuple(args.types or ()),
            since=args.since,
            until=args.until,
        )
        txs = page.transactions
        more = f"; older: --before {page.next_before}" if page.next_before else ""
        print(f"{len(txs):,} of {page.matching:,} matching transactions, newest first{more}", file=sys.stderr)
    else:
        txs = ctx.services.ledger.history(ctx.caller, args.user, limit=args.limit).transactions
    if args.json:
        print_json(txs)
    else:
        print_table(
            [
                {
                    "id": t.id,
                    "at": t.created_at,
                    "type": t.transaction_type,
                    "amount": f"{t.amount:+,}",
                    "balance": f"{t.balance_after:,}",
                    "description": t.description,
                }
                for t in txs
            ],
            tz=ctx.services.settings.reporting_tz,
        )
    return 0


def run_refund(args: argparse.Namespace, ctx: Context) -> int:
    tx = ctx.services.ledger.refund(ctx.caller, args.transaction, args.reason, credits=args.credits)
    if args.json:
        print_json(tx)
    else:
        print(f"refunded {credits_text(tx.amount)} of transaction {args.transaction}: transaction {tx.id}")
    return 0


def run_check(args: argparse.Namespace, ctx: Context) -> int:
    violations = ctx.services.ledger.check(ctx.caller)
    waiting = ctx.services.ledger.spool(ctx.caller).waiting
    if args.json:
        print_json({"ok": not violations, "violations": violations, "spooled_waiting": len(waiting)})
    elif violations:
        for v in violations:
            print(v)
        print(f"{len(violations)} violation(s)")
    else:
        print(
            "ledger OK: every balance equals its transactions; every charge has exactly one debit; every accrual "
            "remainder equals what its calls paid ahead"
        )
    if waiting and not args.json:
        print(
            f"note: {len(waiting)} ledger write(s) wait on this server for the database "
            "(`python -m core ledger spool`); their calls are not in these balances yet"
        )
    return 1 if violations else 0


def run_disputed(args: argparse.Namespace, ctx: Context) -> int:
    since = day_bounds(args.since, None, ctx.services.settings.reporting_tz)[0]
    calls = ctx.services.ledger.disputed(ctx.caller, args.user, since=since, limit=args.limit)
    if args.json:
        print_json([c.to_dict() for c in calls])
        return 0
    print_table(
        [
            {
                "usage": c.usage_id,
                "at": c.at,
                "user": c.email,
                "model": f"{c.provider}/{c.model_id}",
                "reported -> billed": "; ".join(f"{k} {v['reported']} -> {v['billed']}" for k, v in c.figures.items()),
                "credits": c.credits_charged,
                "request id": c.request_id,
            }
            for c in calls
        ],
        tz=ctx.services.settings.reporting_tz,
    )
    return 0
