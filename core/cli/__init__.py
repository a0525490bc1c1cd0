"""The command line, `python -m core ...`: one module per command group, each with `register(subparsers)`.

Every command calls `core.services` as the system itself (audited as `cli:<login>`), or as a user with
`--as EMAIL`, in which case that user's role decides what the command may see and do. Adding a command group is one
module here and one line in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import importlib
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.exc import DBAPIError

from core.access import SYSTEM, Caller, SystemCaller
from core.errors import CoreError, InvalidInputError, NotFoundError

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


MAX_LINE = 400  # characters of an error line


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


class UsageError(Exception):
    """A command line argparse refused; `main` prints it as one line and exits 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr (`--help` shows the usage) and never exits by itself."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        if args == ("--json",):  # every command that prints data takes it; one sentence for all of them
            kwargs.setdefault("help", "print JSON (exact decimals) instead of text")
        return super().add_argument(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    """Run one command. Every mistake (a malformed argument, an unknown user, an unreachable database) is one line on
    stderr and exit 2, with nothing written; output cut short by a closed pipe (`| head`) ends quietly."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_encoding(args_list)
        parser = build_parser()
        _check_repeats(parser, args_list)
        args = parser.parse_args(args_list)
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside this handler, not in the interpreter's final flush
        return code
    except (UsageError, CoreError) as exc:
        _fail(f"error: {exc}")
        return 2
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except OSError as exc:
        if exc.errno in _FULL and exc.filename is None:  # the output's disk is full: the machine's state, not a bug
            _fail(f"error: the output could not be written ({exc.strerror}); free some space and run it again")
            return 1
        return _bug(exc)
    except Exception as exc:
        return _bug(exc)


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _bug(exc: Exception) -> int:
    """A bug: still one line, but exit 1 so it is never mistaken for a refused input."""
    if os.environ.get("CORE_DEBUG"):
        raise exc
    _fail(f"error: unexpected {type(exc).__name__}: {exc} (a bug; rerun with CORE_DEBUG=1 for the traceback)")
    return 1


# Commands that run without an existing database: init and demo create it, breakeven sets one up for the hardware
# catalog its arithmetic needs, access reads only the rules. Every other command refuses a missing SQLite file.
CREATE_THE_DATABASE = frozenset({"init", "demo", "breakeven", "access"})


def _run(args: argparse.Namespace) -> int:
    from core.config import load_settings
    from core.services import Services

    settings = load_settings()
    missing = settings.sqlite_file()
    if args.command not in CREATE_THE_DATABASE and missing is not None and not missing.exists():
        # a mistyped DATABASE_URL must not leave an empty database (and its folders) behind
        raise NotFoundError(
            f"No database at {missing}: run `python -m core init` to create it, or set DATABASE_URL to the database "
            "you meant."
        )
    services = Services(settings=settings)
    try:
        return int(args.func(args, Context(services, _caller(services, args.as_user))) or 0)
    except DBAPIError as exc:  # unreachable, locked past the busy timeout, or a value it refused
        raise services.database_error(exc) from exc
    finally:
        services.close()


def _check_repeats(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """An option that takes one value, given twice, is refused: argparse keeps the last one without a word, so
    `--as pm@x --as admin@x` ran as the admin and `--markup 100 --markup 50` stored 50. Options that collect values
    (`--type usage --type refund`) and flags may repeat."""
    chain = [parser]
    seen: dict[str, int] = {}
    for arg in argv:
        if arg == "--":
            return
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            action = next(
                (p._option_string_actions[name] for p in reversed(chain) if name in p._option_string_actions), None
            )
            if type(action) is argparse._StoreAction:
                seen[action.dest] = seen.get(action.dest, 0) + 1
                if seen[action.dest] > 1:
                    raise UsageError(f"{name} is given more than once; give it once.")
            continue
        subcommands = next((a for a in chain[-1]._actions if isinstance(a, argparse._SubParsersAction)), None)
        if subcommands is not None and arg in subcommands.choices:
            chain.append(subcommands.choices[arg])
            seen = {}  # a subcommand's options are its own


def _check_encoding(argv: list[str]) -> None:
    """Invalid UTF-8 in an argument reaches Python as lone surrogates, which no database, file or terminal takes."""
    for i, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            prev = argv[i - 1] if i else ""
            where = f"the value of {prev}" if prev.startswith("--") else f"argument {i + 1}"
            raise UsageError(
                f"{where} ({shown[:60]}) is not valid UTF-8 text; retype it, or check the terminal's encoding"
            ) from None


def _fail(message: str) -> None:
    """One line on stderr, whatever the message holds (a newline from an upstream, an unprintable character)."""
    line = " ".join(message.split("\n")).strip()
    if len(line) > MAX_LINE:  # an error that quotes a 10,000-character value back stays readable
        line = line[: MAX_LINE // 2] + " … " + line[-MAX_LINE // 2 :]
    sys.stderr.write(line.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


def _quiet_stdout() -> None:
    # The reader went away (`| head`): point stdout at /dev/null so the interpreter's final flush does not complain.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _caller(services: Services, email: str | None) -> Caller:
    if email is None:
        return cli_caller()
    if not email.strip():  # `--as "$EMAIL"` with EMAIL unset must not act as the system, with every right
        raise InvalidInputError("--as was given no email; name the user to act as, or leave --as out.")
    principal = services.users.identify(SYSTEM, email)
    if principal is None:
        raise NotFoundError(f"--as {email}: no such user; `python -m core users list` shows who exists.")
    return principal
