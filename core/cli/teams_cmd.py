"""`python -m core teams add|list|members`: teams, their owner and their members (one team per user)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli import Context
from core.cli.output import print_json, print_table
from core.errors import InvalidInputError
from core.services.budgets import MemberView, TeamView


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teams", help="teams: add, list, members")
    s = p.add_subparsers(dest="teams_command", metavar="ACTION", required=True)
    add = s.add_parser("add", help="add a team")
    add.add_argument("name")
    add.add_argument("--owner", metavar="EMAIL", help="who sees the team's spend")
    add.add_argument("--member", action="append", default=[], metavar="EMAIL", help="a member (repeatable)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=run_add)
    ls = s.add_parser("list", help="every team with its owner and member count")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    m = s.add_parser("members", help="a team's members; --add or --remove people, --owner to change its owner")
    m.add_argument("name")
    m.add_argument("--add", action="append", default=[], metavar="EMAIL", help="move someone into the team")
    m.add_argument("--remove", action="append", default=[], metavar="EMAIL", help="take someone out of it")
    m.add_argument("--owner", metavar="EMAIL", help="make this user the owner")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_members)


def _team_row(t: TeamView) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "owner": t.owner_email, "members": t.members, "created_at": t.created_at}


def _member_row(m: MemberView) -> dict[str, Any]:
    return {"user_id": m.user_id, "email": m.email, "name": m.name, "role": m.role, "added_at": m.added_at}


def _teams_of(ctx: Context, people: list[str] | None) -> dict[str, str]:
    """The team each of `people` (emails, as typed) is in now, by lowercased email: a person is in one team at most,
    so adding them to another moves them, which the command says."""
    wanted = {p.strip().lower() for p in people or ()}
    if not wanted:
        return {}
    budgets = ctx.services.budgets
    return {
        m.email.lower(): t.name
        for t in budgets.teams(ctx.caller)
        for m in budgets.members(ctx.caller, t.id)
        if m.email.lower() in wanted
    }


def _say_moves(before: dict[str, str], into: str) -> None:
    for email, team in sorted(before.items()):
        if team != into:
            print(f"moved {email} out of team {team!r} (a person is in one team at most)")


def run_add(args: argparse.Namespace, ctx: Context) -> int:
    before = _teams_of(ctx, args.member)
    team = ctx.services.budgets.add_team(ctx.caller, args.name, owner=args.owner, members=args.member)
    if args.json:
        print_json(_team_row(team))
    else:
        members = f"{team.members} member{'s' if team.members != 1 else ''}"
        print(f"added team {team.name!r} ({members}, owner {team.owner_email or 'none'}) as team {team.id}")
        _say_moves(before, team.name)
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = [_team_row(t) for t in ctx.services.budgets.teams(ctx.caller)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, tz=ctx.services.settings.reporting_tz)
    return 0


def run_members(args: argparse.Namespace, ctx: Context) -> int:
    budgets = ctx.services.budgets
    both = {a.strip().lower() for a in args.add or ()} & {r.strip().lower() for r in args.remove or ()}
    if both:  # nothing would happen, and nothing would say so
        raise InvalidInputError(f"{', '.join(sorted(both))} is both added and removed; say which.")
    before = _teams_of(ctx, args.add)
    if args.add or args.remove or args.owner:
        budgets.change_team(ctx.caller, args.name, add=args.add, remove=args.remove, owner=args.owner)
    rows = [_member_row(m) for m in budgets.members(ctx.caller, args.name)]
    if args.json:
        print_json(rows)
    else:
        team = next(t for t in budgets.teams(ctx.caller) if args.name in (t.name, str(t.id)))
        _say_moves(before, team.name)
        print(f"team {team.name!r}, owner {team.owner_email or 'none'}:")
        print_table(rows, tz=ctx.services.settings.reporting_tz)
    return 0
