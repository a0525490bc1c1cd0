"""`python -m core ledger spool [--drain] [--json]`: the charges waiting on this server for the database."""

from __future__ import annotations

import argparse
from datetime import UTC
from typing import Any

from core.cli import Context
from core.cli.output import print_json, print_table
from core.services.ledger import SpooledWrite


def add_parser(ledger_actions: argparse._SubParsersAction) -> None:
    p = ledger_actions.add_parser(
        "spool",
        help="ledger writes kept on this server while the database was unavailable; --drain posts them now",
    )
    p.add_argument("--drain", action="store_true", help="post the waiting writes now (exit 1 if any still wait)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_spool)


def _row(w: SpooledWrite) -> dict[str, Any]:
    record = w.record
    return {
        "file": w.name,
        "kind": w.kind,
        "hold": w.hold_id,
        "user id": w.user_id,  # not the email: the listing reads no database (it may be the one that is down)
        "model": record.model.key if record is not None else "",
        "provider cost (USD)": f"{record.base_cost_usd.normalize():f}" if record is not None else "",
        "spooled at": w.spooled_at.astimezone(UTC).replace(tzinfo=None, microsecond=0),  # shown in the reporting zone
        "why": w.rejected or w.reason,
        # a settled call made with an Idempotency-Key: its answer waits too, for a retry once the charge is posted
        "answer kept": "yes" if w.reply is not None else "",
    }


def run_spool(args: argparse.Namespace, ctx: Context) -> int:
    ledger = ctx.services.ledger
    report = ledger.drain_spool(ctx.caller) if args.drain else None
    state = ledger.spool(ctx.caller)
    tz = ctx.services.settings.reporting_tz
    if args.json:
        print_json(
            {
                "directory": str(state.directory) if state.directory else None,
                "drained": None if report is None else vars(report),
                "waiting": [_row(w) for w in state.waiting],
                "set_aside": [_row(w) for w in state.set_aside],
            }
        )
    else:
        if state.directory is None:
            print("this database has no spool (an in-memory database): nothing can wait")
            return 0
        if report is not None:
            line = f"posted {report.posted}, already written {report.already_written}, set aside {report.rejected}"
            if report.unavailable:
                line += f"; stopped: the database is still unavailable ({report.unavailable})"
            print(line)
        print(f"{len(state.waiting)} write(s) waiting in {state.directory}")
        if state.waiting:
            print_table([_row(w) for w in state.waiting], tz=tz)
        if state.set_aside:
            print(f"{len(state.set_aside)} write(s) set aside in {state.directory / 'rejected'} for a person to check:")
            print_table([_row(w) for w in state.set_aside], tz=tz)
    return 1 if args.drain and state.waiting else 0
