"""The command line, `python -m core ...`: one module per command group, each with `register(subparsers)`.

Every command calls `core.services` as the system itself (audited as `cli:<login>`), or as a user with
`--as EMAIL`, in which case that user's role decides what the command may see and do. Adding a command group is one
module here and one line in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.access import SYSTEM, Caller, SystemCaller
from core.errors import CoreError, NotFoundError

if TYPE_CHECKING:
    from core.services import Services

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
    "core.cli.access_cmd",
    "core.cli.optimize_cmd",
    "core.cli.pricing_cmd",
    "core.cli.teams_cmd",
    "core.cli.budgets_cmd",
    "core.cli.alerts_cmd",
    "core.cli.keys_cmd",
    "core.cli.serve_cmd",
)


@dataclass(frozen=True)
class Context:
    """What a command runs with: the services of this process and who is calling."""

    services: Services
    caller: Caller


def cli_caller() -> SystemCaller:
    """The system, audited under the login that ran the command."""
    try:
        return SystemCaller(f"cli:{getpass.getuser()}")
    except (KeyError, OSError):
        return SystemCaller("cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="AI credits engine: catalog, billing, providers, spend analytics, break-even and endpoints.",
    )
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="EMAIL",
        help="act as this user, with their role's rights (default: the system itself, audited as cli:<login>)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from core.services import Services

        services = Services()
        try:
            return int(args.func(args, Context(services, _caller(services, args.as_user))) or 0)
        finally:
            services.close()
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _caller(services: Services, email: str | None) -> Caller:
    if not email:
        return cli_caller()
    principal = services.users.identify(SYSTEM, email)
    if principal is None:
        raise NotFoundError(f"--as {email}: no such user; `python -m core users list` shows who exists.")
    return principal
