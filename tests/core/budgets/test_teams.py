"""Teams: one team per user, an owner, moves between teams (which move the team budgets' spend), audited."""

from __future__ import annotations

import pytest

from core.billing import BillingService
from core.billing.accounts import audit_entries
from core.budgets import BudgetBook, TeamDirectory, UnknownTeamError
from core.catalog import ModelPrice
from core.db import Database
from core.errors import InvalidInputError, NotFoundError
from tests.core.budgets.conftest import funded, spend_one


def test_a_user_belongs_to_one_team_at_a_time(runtime: Database, billing: BillingService, teams: TeamDirectory) -> None:
    ana, ben = funded(runtime, billing, "ana@example.com"), funded(runtime, billing, "ben@example.com")
    red = teams.add("  red   team ", owner=ana.email)
    assert red.name == "red team" and red.owner_email == "ana@example.com" and red.members == 0
    teams.add("blue")
    teams.add_member("Red Team", ana.email)
    teams.add_member(red.id, ben.id)
    assert [m.email for m in teams.members("red team")] == ["ana@example.com", "ben@example.com"]
    moved = teams.add_member("blue", ben.email)
    assert moved.team_id != red.id
    assert [t.members for t in teams.list_teams()] == [1, 1]  # blue, red team (by name)
    team = teams.team_of(ben.email)
    assert team is not None and team.name == "blue"
    assert [t.name for t in teams.owned_by(ana.email)] == ["red team"]
    teams.remove_member("blue", ben.email)
    assert teams.team_of(ben.email) is None
    with runtime.session() as s:
        actions = [e.action for e in audit_entries(s, action_prefix="teams.")]
    assert sorted(actions) == sorted(
        ["teams.add", "teams.add", "teams.member_add", "teams.member_add", "teams.member_add", "teams.member_remove"]
    )


def test_team_mistakes_are_refused_with_a_sentence(
    runtime: Database, billing: BillingService, teams: TeamDirectory
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    teams.add("red")
    with pytest.raises(InvalidInputError, match="already exists"):
        teams.add("RED")
    with pytest.raises(InvalidInputError, match="needs a name"):
        teams.add("  ")
    with pytest.raises(UnknownTeamError, match="teams list"):
        teams.add_member("green", ana.email)
    with pytest.raises(NotFoundError, match="No user"):
        teams.add_member("red", "nobody@example.com")
    with pytest.raises(InvalidInputError, match="is not a member"):
        teams.remove_member("red", ana.email)


def test_a_move_carries_the_members_spend_this_month_to_the_new_team(
    runtime: Database, billing: BillingService, teams: TeamDirectory, book: BudgetBook, gpt4o: ModelPrice
) -> None:
    ana = funded(runtime, billing, "ana@example.com")
    teams.add("red")
    teams.add("blue")
    teams.add_member("red", ana.email)
    book.set(team="red", credits=100)
    book.set(team="blue", credits=100)
    for i in range(3):
        spend_one(billing, gpt4o, ana, f"c{i}")
    assert {b.team_name: b.spent for b in book.list_budgets()} == {"red": 3, "blue": 0}
    teams.add_member("blue", ana.email)
    assert {b.team_name: b.spent for b in book.list_budgets()} == {"red": 0, "blue": 3}
    assert [b.team_name for b in book.list_budgets(covering_user=ana.email)] == ["blue"]
