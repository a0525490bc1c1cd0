"""`python -m core pricing whatif`: replay a period's usage under another markup, credit price or rounding policy,
beside what was billed. Read from the analytics store (synced first whenever the database holds rows it lacks)."""

from __future__ import annotations

import argparse
from decimal import Decimal

from core.cli import Context
from core.cli.args import decimal_arg, positive_int
from core.cli.optimize_cmd import period_args
from core.cli.output import print_json, print_table
from core.services import dollars
from core.services.optimize import ROUNDING_POLICIES, PricingScenario
from core.services.spend import UP_TO_DATE


def _user_markup(text: str) -> tuple[str, Decimal]:
    email, sep, pct = text.rpartition("=")
    if not sep or not email.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not EMAIL=PERCENT, e.g. ana@example.com=80")
    return email.strip(), decimal_arg(pct)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pricing", help="the pricing lab: what-if replays of real usage")
    s = p.add_subparsers(dest="pricing_command", metavar="ACTION", required=True)
    w = s.add_parser(
        "whatif",
        help="revenue, margin and rounding beyond markup under another markup, credit price or rounding policy",
        description=(
            "Replays every call and endpoint uptime debit of the period with the billing rules and the given "
            "settings, beside what was billed. Without options it replays the settings in force and gives back "
            "the billed revenue exactly."
        ),
    )
    w.add_argument("--markup", type=decimal_arg, metavar="PCT", help="everyone's markup in percent (0-1000)")
    w.add_argument(
        "--user-markup",
        type=_user_markup,
        action="append",
        default=[],
        metavar="EMAIL=PCT",
        help="one person's markup (repeatable; wins over --markup)",
    )
    w.add_argument("--credit-usd", type=decimal_arg, metavar="USD", help="the price of one credit (now: CREDIT_USD)")
    w.add_argument("--rounding", choices=ROUNDING_POLICIES, help="default: each call as it was billed")
    w.add_argument("--top", type=positive_int, default=10, help="people and models shown (default 10; --json has all)")
    period_args(w)
    w.set_defaults(func=run_whatif)


def run_whatif(args: argparse.Namespace, ctx: Context) -> int:
    scenario = PricingScenario(
        markup_pct=args.markup,
        user_markups=tuple(args.user_markup),
        credit_usd=args.credit_usd,
        rounding=args.rounding,
    )
    fresh = None if args.no_sync else UP_TO_DATE
    result = ctx.services.optimize.what_if(
        ctx.caller, scenario, since=args.since, until=args.until, sync_if_older_than=fresh
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"period {result.period.label()}; as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC (last sync)")
    b, w = result.billed, result.what_if
    rows = [
        ("credits", f"{b.credits:,}", f"{w.credits:,}", f"{w.credits - b.credits:+,}"),
        ("credit price", f"${result.credit_usd}", f"${result.what_if_credit_usd}", ""),
    ]
    for label, name in (
        ("revenue", "revenue_usd"),
        ("refunds", "refunds_usd"),
        ("margin", "margin_usd"),
        ("marked-up cost", "marked_up_cost_usd"),
        ("rounding beyond markup", "rounding_beyond_markup_usd"),
    ):
        before, after = getattr(b, name), getattr(w, name)
        rows.append((label, dollars(before), dollars(after), f"{after - before:+,.2f}"))
    print_table([{"": r[0], "billed": r[1], "what-if": r[2], "difference": r[3]} for r in rows])
    print(
        f"provider cost {dollars(result.base_cost_usd)} for {result.requests:,} requests; "
        f"{result.pays_more()} people pay more, {result.pays_less()} pay less"
    )
    print(
        f"rounding uplift billed ${result.rounding_uplift_usd:,.2f} (as `spend` shows it: each call rounded to whole "
        "credits before the markup; the rounding beyond markup above also counts the rounding after it, and accrual)"
    )
    for title, label, frame in (("people", "person", result.by_user), ("models", "model", result.by_model)):
        print(f"\n{title} (biggest difference first)")
        print_table(
            [
                {
                    label: r[frame.columns[0]],
                    **({"provider": r["provider"]} if "provider" in r else {}),
                    "billed $": f"{r['billed_revenue_usd']:,.2f}",
                    "what-if $": f"{r['what_if_revenue_usd']:,.2f}",
                    "difference $": f"{r['difference_usd']:+,.2f}",
                    "what-if margin $": f"{r['what_if_margin_usd']:,.2f}",
                }
                for r in frame.head(args.top).to_dict("records")
            ]
        )
    return 0
