"""`python -m core spend`: spend by user, team, model, provider, category, API key, source or over time;
`spend forecast`,
`spend anomalies`, `spend sync`. Answers come from the analytics store, synced first whenever the database holds rows
it lacks, so a call made a moment ago (by any process) is counted (`--no-sync` answers from the store as it is)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.access import sees_everyone
from core.cli import Context
from core.cli.args import bounded_int, iso_date, positive_int
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError
from core.services.spend import UP_TO_DATE, SpendFilter, zone

BY = ("user", "team", "model", "provider", "category", "deployment_type", "api_key", "source", "day", "week", "month")
KINDS = ("usage", "endpoint_uptime", "refund")
TIME = ("day", "week", "month")
DAYS = bounded_int(1, 36_500, "days")  # a century: far past any history, far inside date arithmetic


def _filters(p: argparse.ArgumentParser, *, dates: bool = True) -> None:
    if dates:
        p.add_argument("--since", type=iso_date, help="first day (YYYY-MM-DD, in the reporting time zone)")
        p.add_argument("--until", type=iso_date, help="last day, included")
    p.add_argument("--user", action="append", default=[], metavar="EMAIL", help="only this user (repeatable)")
    p.add_argument("--model", action="append", default=[], metavar="MODEL_ID", help="only this model (repeatable)")
    p.add_argument("--provider", action="append", default=[], help="only this provider (repeatable)")
    p.add_argument("--category", action="append", default=[], help="only this category (repeatable)")
    p.add_argument("--status", choices=("success", "failed"), help="only successful or failed calls")
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=KINDS,
        help="only calls (usage), endpoint uptime debits or refunds (repeatable; default all three)",
    )
    p.add_argument(
        "--api-key", action="append", default=[], type=positive_int, metavar="ID", help="only this API key (repeatable)"
    )
    p.add_argument(
        "--source", action="append", default=[], choices=("playground", "cli", "api"), help="only calls from"
    )
    sandbox = p.add_mutually_exclusive_group()
    sandbox.add_argument(
        "--exclude-sandbox", dest="include_sandbox", action="store_false", help="leave sandbox calls out (default)"
    )
    sandbox.add_argument(
        "--include-sandbox", dest="include_sandbox", action="store_true", help="count sandbox calls' would-be cost"
    )
    p.set_defaults(include_sandbox=False)
    p.add_argument("--tz", help="reporting time zone for days (default: REPORTING_TZ, else UTC)")
    p.add_argument("--no-sync", action="store_true", help="answer from the store as it is, without syncing")
    p.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spend",
        help="spend analytics: by user, model, provider, category or over time; forecast; anomalies; sync",
        description="Spend from the analytics store (DuckDB). Money excludes sandbox calls unless --include-sandbox.",
    )
    p.add_argument("--by", choices=BY, default="user", help="group by (default: user)")
    p.add_argument("--top", type=positive_int, help="only the first N groups (non-time groupings)")
    p.add_argument(
        "--last-days",
        type=DAYS,
        metavar="N",
        help="a rolling window: the N x 24 hours up to now (the specification's NOW() - INTERVAL 'N days')",
    )
    _filters(p)
    p.set_defaults(func=run_by)
    s = p.add_subparsers(dest="spend_command", metavar="ACTION")
    fc = s.add_parser("forecast", help="this month to date and the month-end forecast with its band")
    _filters(fc, dates=False)
    fc.set_defaults(func=run_forecast)
    an = s.add_parser("anomalies", help="days far above a user's or a model's own baseline")
    _filters(an)
    an.add_argument("--days", type=DAYS, default=30, help="days to check without --since (default 30)")
    an.set_defaults(func=run_anomalies)
    sy = s.add_parser("sync", help="sync the analytics store from the database (new rows only)")
    sy.add_argument("--full", action="store_true", help="rebuild the store from scratch")
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=run_sync)


def _setup(args: argparse.Namespace, ctx: Context) -> tuple[SpendFilter, str, float | None]:
    tz = ctx.services.settings.reporting_tz if args.tz is None else args.tz  # an empty --tz is refused, not UTC
    zone(tz)
    kw = {
        "users": tuple(args.user),
        "models": tuple(args.model),
        "providers": tuple(args.provider),
        "categories": tuple(args.category),
        "statuses": (args.status,) if args.status else (),
        "kinds": tuple(args.kind),
        "include_sandbox": args.include_sandbox,
        "api_keys": tuple(args.api_key),
        "sources": tuple(args.source),
    }
    fresh = None if args.no_sync else UP_TO_DATE
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    last_days = getattr(args, "last_days", None)
    if last_days is not None:
        if since or until:
            raise InvalidInputError("--last-days is a window ending now: leave out --since and --until.")
        now = datetime.now(UTC).replace(tzinfo=None)
        return SpendFilter(start=now - timedelta(days=last_days), **kw), tz, fresh
    return SpendFilter.dates(since, until, tz=tz, **kw), tz, fresh


def _as_of_line(as_of: datetime, tz: str) -> str:
    return f"as of {as_of:%Y-%m-%d %H:%M:%S} UTC (last sync); days in {tz}"


def run_by(args: argparse.Namespace, ctx: Context) -> int:
    f, tz, fresh = _setup(args, ctx)
    spend = ctx.services.spend
    if args.by in TIME:
        result = spend.series(ctx.caller, args.by, f, tz=tz, sync_if_older_than=fresh)
        key = [b.isoformat() for b in result.frame["bucket"]]
    else:
        result = spend.breakdown(ctx.caller, args.by, f, top=args.top, sync_if_older_than=fresh)
        key = list(result.frame["key"])
    frame = result.frame
    # finance's figures are in the answer only for those who see everyone's spend (as on the Spend page)
    finance = "base_cost_usd" in frame.columns
    records = frame.to_dict("records")
    if args.json:
        print_json([_json_row(k, r, finance, result.as_of) for k, r in zip(key, records, strict=True)])
        return 0
    print_table([_table_row(args.by, k, r, finance) for k, r in zip(key, records, strict=True)])
    window = f"; since {f.start:%Y-%m-%d %H:%M} UTC" if args.last_days else ""
    print(_as_of_line(result.as_of, tz) + window + "; sandbox " + ("included" if args.include_sandbox else "excluded"))
    return 0


def _json_row(key: str, r: dict[str, Any], finance: bool, as_of: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "requests": int(r["requests"])}
    if finance:
        row["base_cost_usd"] = r["base_cost_usd"]
    row |= {"credits": int(r["credits"]), "revenue_usd": r["revenue_usd"]}
    if finance:
        row |= {
            "margin_usd": r["margin_usd"],
            "effective_markup_pct": r["markup_pct"],
            "rounding_uplift_usd": r["rounding_uplift_usd"],
        }
    row["cache_hits"] = int(r["cache_hits"])
    if finance:
        row["cache_saving_usd"] = r["cache_saving_usd"]
    return row | {"as_of": as_of}


def _table_row(by: str, key: str, r: dict[str, Any], finance: bool) -> dict[str, Any]:
    row: dict[str, Any] = {by: key, "requests": int(r["requests"]), "credits": int(r["credits"])}
    if not finance:
        return row | {"revenue $": _usd(r["revenue_usd"])}
    return row | {
        "base cost $": _usd(r["base_cost_usd"]),
        "revenue $": _usd(r["revenue_usd"]),
        "margin $": _usd(r["margin_usd"]),
        # charged over provider cost, whole-credit rounding included: not the markup set per person; shown as
        # computed, to two places (rounded again to one, 553.05 read 553.0)
        "effective markup %": "" if r["markup_pct"] is None else f"{r['markup_pct']:,.2f}",
        "rounding uplift $": _usd(r["rounding_uplift_usd"]),
        # cache hits' catalog cost, which no provider billed (as --json and the Spend page show it)
        "cache saving $": _usd(r["cache_saving_usd"]),
    }


def _usd(v: Decimal) -> str:
    """Dollars and cents; an amount that rounds to no cent prints 0.00, never -0.00 (a sandbox call's would-be
    cost less its 0 revenue)."""
    text = f"{Decimal(v):,.2f}"
    return text.removeprefix("-") if text == "-0.00" else text


def run_forecast(args: argparse.Namespace, ctx: Context) -> int:
    f, tz, fresh = _setup(args, ctx)
    fc = ctx.services.spend.forecast(ctx.caller, f, tz=tz, sync_if_older_than=fresh)
    finance = sees_everyone(ctx.caller)  # provider cost and margin: finance's figures, withheld from the others
    if args.json:
        costs = {
            "base_cost_to_date_usd": fc.base_cost_to_date_usd,
            "base_cost_forecast_usd": fc.base_cost_forecast_usd,
            "margin_forecast_usd": fc.margin_forecast_usd,
        }
        print_json(
            {
                "month": fc.month,
                "as_of": fc.as_of,
                "tz": fc.tz,
                "revenue_to_date_usd": fc.revenue_to_date_usd,
                "revenue_forecast_usd": fc.revenue_forecast_usd,
                "revenue_low_usd": fc.revenue_low_usd,
                "revenue_high_usd": fc.revenue_high_usd,
                **(costs if finance else {}),
                "method": fc.method,
                "band": fc.band,
            }
        )
        return 0
    print(f"{fc.month:%B %Y} ({fc.tz})")
    print(f"  revenue to date     ${_usd(fc.revenue_to_date_usd)}")
    print(
        f"  month-end forecast  ${fc.revenue_forecast_usd:,}  "
        f"({fc.band}: ${fc.revenue_low_usd:,} .. ${fc.revenue_high_usd:,})"
    )
    if finance:
        print(
            f"  provider cost       ${_usd(fc.base_cost_to_date_usd)} to date, ${fc.base_cost_forecast_usd:,} forecast"
        )
        print(f"  margin forecast     ${fc.margin_forecast_usd:,}")
    print(f"  method: {fc.method}")
    print(_as_of_line(fc.as_of, tz))
    return 0


def run_anomalies(args: argparse.Namespace, ctx: Context) -> int:
    f, tz, fresh = _setup(args, ctx)
    result = ctx.services.spend.anomalies(ctx.caller, f, days=args.days, tz=tz, sync_if_older_than=fresh)
    if args.json:
        print_json({"as_of": result.as_of, "tz": tz, "anomalies": result.records()})
        return 0
    if result.frame.empty:
        print("no anomalies: no day is far above its user's or model's own baseline")
    else:  # money in dollars and cents, as the other tables print it ($11.60, never $11.6)
        money = {"revenue_usd": "revenue $", "baseline_usd": "baseline $", "excess_usd": "excess $"}
        print_table([{money.get(k, k): _usd(v) if k in money else v for k, v in r.items()} for r in result.records()])
    print(_as_of_line(result.as_of, tz))
    return 0


def run_sync(args: argparse.Namespace, ctx: Context) -> int:
    shown = [-1]

    def progress(done: int, total: int) -> None:  # a line per tenth, on stderr (stdout stays the answer)
        tenth = done * 10 // total if total else 10
        if tenth > shown[0]:
            shown[0] = tenth
            print(f"syncing: {done:,} of about {total:,} rows copied", file=sys.stderr, flush=True)

    report = ctx.services.spend.sync(ctx.caller, full=args.full, progress=progress)
    if args.json:
        print_json(report)
        return 0
    if report.mode == "none":
        print(f"analytics store up to date ({report.reason}); {report.total_usage_rows:,} usage rows")
    else:
        print(
            f"{report.mode} sync ({report.reason}): +{report.usage_rows:,} usage rows, +{report.ledger_rows:,} "
            f"ledger rows in {report.seconds:.1f} s; store holds {report.total_usage_rows:,} usage rows "
            f"(version {report.version})"
        )
    print(f"as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC -> {ctx.services.settings.analytics_path}")
    return 0
