"""`python -m core credits grant|balance|history|refund` and `python -m core ledger check`."""

from __future__ import annotations

import argparse
import getpass

from core.billing import BillingService
from core.billing.ledger_check import check_ledger
from core.billing.service import GRANT_KINDS
from core.cli.args import positive_int
from core.cli.output import print_json, print_table
from core.runtime import Runtime


def _whole_number(text: str) -> int:
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of credits") from None


def _cli_actor() -> str:
    """Who is acting from the command line (the roles issue may replace this with a signed-in principal)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("credits", help="grant, inspect and refund credits")
    s = p.add_subparsers(dest="credits_command", metavar="ACTION", required=True)

    g = s.add_parser("grant", help="add credits to a user (grant, top-up) or correct a balance (adjustment)")
    g.add_argument("--user", required=True, help="the user's email (or id)")
    g.add_argument("--credits", required=True, type=_whole_number, help="credits to add (negative: adjustment only)")
    g.add_argument("--kind", choices=GRANT_KINDS, default="grant")
    g.add_argument("--note", help="why, shown in the history and the audit log")
    g.add_argument("--idempotency-key", help="a retried command with the same key posts once")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=run_grant)

    b = s.add_parser("balance", help="a user's total, held and available credits")
    b.add_argument("--user", required=True)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_balance)

    h = s.add_parser("history", help="a user's transactions with the running balance")
    h.add_argument("--user", required=True)
    h.add_argument("--limit", type=positive_int, help="only the most recent N")
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


def _service(rt: Runtime) -> BillingService:
    return BillingService(rt.session_factory, rt.settings)


def run_grant(args: argparse.Namespace, rt: Runtime) -> int:
    billing = _service(rt)
    tx = billing.grant(
        args.user,
        args.credits,
        kind=args.kind,
        note=args.note,
        idempotency_key=args.idempotency_key,
        actor=_cli_actor(),
    )
    if args.json:
        print_json(tx)
    else:
        print(
            f"{args.kind} of {tx.amount:+,} credits to {args.user}: transaction {tx.id}, balance {tx.balance_after:,}"
        )
    return 0


def run_balance(args: argparse.Namespace, rt: Runtime) -> int:
    bal = _service(rt).balance(args.user)
    if args.json:
        print_json({"total": bal.total, "held": bal.held, "available": bal.available})
    else:
        print(f"{args.user}: {bal.total:,} credits, {bal.held:,} held, {bal.available:,} available")
    return 0


def run_history(args: argparse.Namespace, rt: Runtime) -> int:
    txs = _service(rt).transactions(args.user, limit=args.limit)
    if args.json:
        print_json(txs)
    else:
        print_table(
            [
                {
                    "id": t.id,
                    "at (UTC)": t.created_at,
                    "type": t.transaction_type,
                    "amount": f"{t.amount:+,}",
                    "balance": f"{t.balance_after:,}",
                    "description": t.description,
                }
                for t in txs
            ]
        )
    return 0


def run_refund(args: argparse.Namespace, rt: Runtime) -> int:
    tx = _service(rt).refund(args.transaction, args.reason, actor=_cli_actor(), credits=args.credits)
    if args.json:
        print_json(tx)
    else:
        print(f"refunded {tx.amount:,} credits of transaction {args.transaction}: transaction {tx.id}")
    return 0


def run_check(args: argparse.Namespace, rt: Runtime) -> int:
    violations = check_ledger(rt.session_factory)
    if args.json:
        print_json({"ok": not violations, "violations": violations})
    elif violations:
        for v in violations:
            print(v)
        print(f"{len(violations)} violation(s)")
    else:
        print(
            "ledger OK: every balance equals its transactions; every charge has exactly one debit; every accrual "
            "remainder equals what its calls paid ahead"
        )
    return 1 if violations else 0
