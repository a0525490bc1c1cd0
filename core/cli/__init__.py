"""The command line, `python -m core ...`: one module per command group, each with `register(subparsers)`.

Adding a command group is one module here and one line in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.errors import CoreError

COMMAND_MODULES = (
    "core.cli.init_cmd",
    "core.cli.demo_cmd",
    "core.cli.users_cmd",
    "core.cli.models_cmd",
    "core.cli.endpoints_cmd",
    "core.cli.credits_cmd",
    "core.cli.generate_cmd",
    "core.cli.breakeven_cmd",
    "core.cli.spend_cmd",
    "core.cli.teams_cmd",
    "core.cli.budgets_cmd",
    "core.cli.alerts_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="AI credits engine: catalog, billing, providers, spend analytics, break-even and endpoints.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from core.runtime import Runtime

        runtime = Runtime()
        try:
            return int(args.func(args, runtime) or 0)
        finally:
            runtime.dispose()
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
