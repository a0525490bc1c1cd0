"""`python -m core teams add|list|members`: teams, their owner and their members (one team per user)."""

from __future__ import annotations

import argparse
from typing import Any

from core.budgets import MemberView, TeamDirectory, TeamView
from core.cli.credits_cmd import _cli_actor
from core.cli.output import print_json, print_table
from core.runtime import Runtime


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


def run_add(args: argparse.Namespace, rt: Runtime) -> int:
    teams = TeamDirectory(rt.session_factory)
    team = teams.add(args.name, owner=args.owner, actor=_cli_actor())
    for email in args.member:
        teams.add_member(team.id, email, actor=_cli_actor())
    team = teams.get(team.id)
    if args.json:
        print_json(_team_row(team))
    else:
        print(
            f"added team {team.name!r} ({team.members} members, owner {team.owner_email or 'none'}) as team {team.id}"
        )
    return 0


def run_list(args: argparse.Namespace, rt: Runtime) -> int:
    rows = [_team_row(t) for t in TeamDirectory(rt.session_factory).list_teams()]
    if args.json:
        print_json(rows)
    else:
        print_table(rows)
    return 0


def run_members(args: argparse.Namespace, rt: Runtime) -> int:
    teams = TeamDirectory(rt.session_factory)
    for email in args.add:
        teams.add_member(args.name, email, actor=_cli_actor())
    for email in args.remove:
        teams.remove_member(args.name, email, actor=_cli_actor())
    if args.owner:
        teams.set_owner(args.name, args.owner, actor=_cli_actor())
    rows = [_member_row(m) for m in teams.members(args.name)]
    if args.json:
        print_json(rows)
    else:
        team = teams.get(args.name)
        print(f"team {team.name!r}, owner {team.owner_email or 'none'}:")
        print_table(rows)
    return 0
