"""`python -m core budgets set|list|remove`: spending limits per user, team or API key, monthly or one-off."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli import Context
from core.cli.args import iso_date, positive_int
from core.cli.output import print_json, print_table
from core.services import credits_text
from core.services.budgets import BudgetView


def _percents(text: str) -> str:
    """The thresholds as typed: the engine reads them as the Budgets page's field is read ("" none, "50,,80" an empty
    one refused, digits 0-9 only), so both doors take the same text."""
    return text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("budgets", help="spending limits per user, team or API key")
    s = p.add_subparsers(dest="budgets_command", metavar="ACTION", required=True)
    st = s.add_parser(
        "set",
        help="set (or change) a budget",
        description="A budget in credits per calendar month in the reporting time zone (or --once, in all). Hard "
        "budgets refuse a call that would pass them; --soft ones only alert. Setting it again changes it.",
    )
    who = st.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="EMAIL")
    who.add_argument("--team", metavar="NAME")
    who.add_argument("--key", type=positive_int, metavar="API_KEY_ID", help="an API key's id")
    st.add_argument("--credits", type=positive_int, required=True, help="the limit in credits")
    st.add_argument("--once", action="store_true", help="one-off: a total that never resets (default: monthly)")
    st.add_argument("--since", type=iso_date, help="with --once: count spend from this local day (default: now)")
    st.add_argument("--soft", action="store_true", help="alert only, never refuse (default: hard)")
    st.add_argument("--thresholds", type=_percents, help="alert thresholds in percent (default 50,80,100)")
    st.add_argument("--name", help="how alerts and refusals name it (default: the user, team or key)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=run_set)
    ls = s.add_parser("list", help="budgets with their spend this period, holds in flight and what is left")
    ls.add_argument("--user", metavar="EMAIL", help="only the budgets covering this user (their own, their team's)")
    ls.add_argument("--team", metavar="NAME", help="only this team's")
    ls.add_argument("--all", action="store_true", help="include removed budgets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    rm = s.add_parser("remove", help="stop a budget (its history stays)")
    rm.add_argument("id", type=positive_int)
    rm.add_argument("--json", action="store_true")
    rm.set_defaults(func=run_remove)


def budget_row(b: BudgetView) -> dict[str, Any]:
    """A budget as the command line prints it (and as --json gives it)."""
    return {
        "id": b.id,
        "name": b.name,
        "covers": b.target,
        "scope": b.scope,
        "period": b.period,
        "enforcement": b.enforcement,
        "credits": b.credits,
        "spent": b.spent,
        "in_flight": b.in_flight,
        "left": b.left,
        "used_pct": round(b.used_pct, 1),
        "thresholds": list(b.thresholds),
        "period_label": b.period_label,
        "period_start": b.period_start,
        "resets_on": b.resets_on,
        "removed_at": b.removed_at,
    }


def run_set(args: argparse.Namespace, ctx: Context) -> int:
    b = ctx.services.budgets.set_budget(
        ctx.caller,
        user=args.user,
        team=args.team,
        api_key_id=args.key,
        credits=args.credits,
        period="once" if args.once else "monthly",
        enforcement="soft" if args.soft else "hard",
        thresholds=args.thresholds,
        name=args.name,
        starts_on=args.since,
    )
    if args.json:
        print_json(budget_row(b))
    else:
        print(
            f"budget {b.id} '{b.name}': {b.enforcement} {b.period} limit of {credits_text(b.credits)} on {b.target}; "
            f"{b.spent:,} spent {_in(b.period_label)}, {b.left:,} left"
        )
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    found = ctx.services.budgets.budgets(ctx.caller, user=args.user, team=args.team, include_removed=args.all)
    rows = [budget_row(b) for b in found]
    if args.json:
        print_json(rows)
        return 0
    table = [
        {
            "id": r["id"],
            "name": r["name"],
            "covers": r["covers"],
            "kind": f"{r['enforcement']} {r['period']}",
            "limit": f"{r['credits']:,}",
            "spent": f"{r['spent']:,}",
            "in flight": f"{r['in_flight']:,}",
            "left": f"{r['left']:,}",
            "used %": r["used_pct"],
            "period": r["period_label"],
            "resets": r["resets_on"] or "never",
        }
        for r in rows
    ]
    if args.all:  # a removed budget no longer limits anything: say so, or it reads as one in force
        table = [t | {"removed_at": r["removed_at"]} for t, r in zip(table, rows, strict=True)]
    print_table(table, tz=ctx.services.settings.reporting_tz)
    return 0


def run_remove(args: argparse.Namespace, ctx: Context) -> int:
    b = ctx.services.budgets.remove_budget(ctx.caller, args.id)
    if args.json:
        print_json(budget_row(b))
    else:
        print(f"removed budget {b.id} '{b.name}' ({b.target})")
    return 0


def _in(period_label: str) -> str:
    """ "in December 2026", or "since 2026-12-01" for a one-off budget (never "in since ...")."""
    return period_label if period_label.startswith("since ") else f"in {period_label}"
