"""`python -m core alerts run|list|deliveries|webhooks`: evaluate and deliver alerts (cron), read them back, and
manage the webhooks they are POSTed to."""

from __future__ import annotations

import argparse
import os
from typing import Any

from core.cli import Context
from core.cli.args import positive_int
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError
from core.services.budgets import ALERT_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="budget, low-balance and anomaly alerts: run (cron), list, deliveries, webhooks")
    s = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    run = s.add_parser(
        "run",
        help="evaluate every alert rule and deliver the queue; for cron, safe to repeat",
        description="Thresholds, low balances (credits and runway) and spend anomalies, each alert recorded once; "
        "then the queued webhooks and emails are sent. Run it every few minutes.",
    )
    run.add_argument("--no-deliver", action="store_true", help="record alerts, send nothing")
    run.add_argument("--no-anomalies", action="store_true", help="skip the analytics' anomaly check (and its sync)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=run_run)
    ls = s.add_parser("list", help="alerts, newest first")
    ls.add_argument("--user", metavar="EMAIL", help="only those about this user or their team")
    ls.add_argument("--kind", action="append", default=[], choices=ALERT_KINDS, help="only these kinds (repeatable)")
    ls.add_argument("--limit", type=positive_int, default=50, help="the newest N (default 50)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    dl = s.add_parser("deliveries", help="the delivery log: every attempt to send an alert")
    dl.add_argument("--limit", type=positive_int, default=50, help="the newest N (default 50)")
    dl.add_argument("--json", action="store_true")
    dl.set_defaults(func=run_deliveries)

    wh = s.add_parser("webhooks", help="the webhooks alerts are POSTed to")
    ws = wh.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    add = ws.add_parser("add", help="add a webhook; prints its signing secret once")
    add.add_argument("--name", required=True)
    add.add_argument("--url", required=True)
    add.add_argument("--kind", action="append", default=[], choices=ALERT_KINDS, help="only these kinds (repeatable)")
    add.add_argument(
        "--secret-env", metavar="VAR", help="take the signing secret from this environment variable (default: new)"
    )
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=run_webhook_add)
    wl = ws.add_parser("list", help="webhooks (host only; secrets masked)")
    wl.add_argument("--json", action="store_true")
    wl.set_defaults(func=run_webhook_list)
    wr = ws.add_parser("remove", help="stop sending to a webhook")
    wr.add_argument("name")
    wr.set_defaults(func=run_webhook_remove)


def run_run(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.budgets.run_alerts(ctx.caller, deliver=not args.no_deliver, anomalies=not args.no_anomalies)
    if args.json:
        print_json(report)
        return 0
    for a in report.alerts:
        print(f"[{a['severity']}] {a['message']}")
    sent = report.delivery
    print(
        f"{len(report.alerts)} new alert(s); "
        + (f"{sent.delivered} delivered, {sent.requeued} to retry, {sent.failed} failed" if sent else "nothing sent")
    )
    for note in report.notes:
        print(note)
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    found = ctx.services.budgets.alerts(ctx.caller, kinds=tuple(args.kind), user=args.user, limit=args.limit)
    rows: list[dict[str, Any]] = [
        {
            "id": a.id,
            "at": a.created_at,
            "kind": a.kind,
            "severity": a.severity,
            "about": a.user_email or (f"team {a.team_name}" if a.team_name else ""),
            "message": a.message,
        }
        for a in found
    ]
    if args.json:
        print_json(found)
    else:
        print_table(rows, tz=ctx.services.settings.reporting_tz)
    return 0


def run_deliveries(args: argparse.Namespace, ctx: Context) -> int:
    found = ctx.services.budgets.deliveries(ctx.caller, limit=args.limit)
    if args.json:
        print_json(found)
        return 0
    print_table(
        [
            {
                "at": d.at,
                "alert": d.alert_id,
                "to": f"{d.channel}: {d.destination}",
                "try": d.attempt,
                "result": "ok" if d.ok else (d.error or "failed"),
                "code": d.status_code,
                "ms": d.duration_ms,
                "now": d.status,
            }
            for d in found
        ],
        tz=ctx.services.settings.reporting_tz,
    )
    return 0


def run_webhook_add(args: argparse.Namespace, ctx: Context) -> int:
    secret = None
    if args.secret_env:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise InvalidInputError(f"The environment variable {args.secret_env} is not set.")
    hook, key = ctx.services.budgets.add_webhook(ctx.caller, args.name, args.url, secret=secret, kinds=tuple(args.kind))
    if args.json:
        print_json({"id": hook.id, "name": hook.name, "host": hook.host, "kinds": list(hook.kinds), "secret": key})
    else:
        print(f"added webhook {hook.name!r} to {hook.host} (id {hook.id})")
        if not args.secret_env:
            print(f"signing secret (shown once; the receiver checks X-AI-Credits-Signature with it): {key}")
    return 0


def run_webhook_list(args: argparse.Namespace, ctx: Context) -> int:
    hooks = ctx.services.budgets.webhooks(ctx.caller)
    if args.json:
        print_json(hooks)
    else:
        print_table(
            [
                {
                    "id": h.id,
                    "name": h.name,
                    "host": h.host,
                    "kinds": ", ".join(h.kinds) or "all",
                    "active": h.active,
                    "secret": h.secret_hint,
                }
                for h in hooks
            ]
        )
    return 0


def run_webhook_remove(args: argparse.Namespace, ctx: Context) -> int:
    ctx.services.budgets.remove_webhook(ctx.caller, args.name)
    print(f"webhook {args.name!r} removed")
    return 0
