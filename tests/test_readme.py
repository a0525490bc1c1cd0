"""The README's command lines name commands and options that exist: every `python -m core ...` it shows, in code or in
a sentence, resolves to a subcommand of the real parser and every `--option` on that line is one of its options
(reviewers follow the README line by line; an option it invents fails on the first try)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from core.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = re.compile(r"python -m core((?: [^`#\n]*)?)")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def _commands(parser: argparse.ArgumentParser, words: list[str], path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """The (path, parser) pairs a README line names: `pause|resume` names several."""
    subs = _subparsers(parser)
    if not subs or not words:
        yield path, parser
        return
    names = words[0].split("|")
    if not all(n in subs for n in names):
        yield path, parser  # an argument (a name, an id), not a subcommand
        return
    for name in names:
        yield from _commands(subs[name], words[1:], (*path, name))


def _lines() -> list[str]:
    return README.read_text().replace("\\\n", " ").splitlines()


def test_every_readme_command_line_uses_real_commands_and_options() -> None:
    root = build_parser()
    problems, checked = [], 0
    for line in _lines():
        for match in COMMAND.finditer(line):
            rest = re.sub(r"--as \S+", "", match.group(1))
            words = [w for w in rest.split() if not w.startswith(("-", "["))]
            for path, parser in _commands(root, words):
                options = {o for a in parser._actions for o in a.option_strings}
                for flag in re.findall(r"(--[a-z][a-z0-9-]*)", rest):
                    checked += 1
                    if flag not in options:
                        problems.append(f"{' '.join(path)} has no {flag}: {line.strip()[:100]}")
    assert checked > 100 and problems == []
