"""A team's owner sees the team's spend, and only its members': the Spend page over a team (`spend.team_page`) and
the teams whose spend one may see (`spend.teams`), as issue 15 asks ("a team has an owner who sees the team's
spend"). Known figures: each member's calls cost a fixed number of credits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.access import SYSTEM, Principal
from core.db import Database
from core.errors import PermissionDeniedError
from core.services import Services
from core.services.spend import PageQuery
from core.users import UserView
from tests.conftest import make_runtime
from tests.core.optimize.history import model, user, write_usage

DAY = datetime(2026, 11, 10, 12, 0)
QUERY = PageQuery(since=date(2026, 11, 1), until=date(2026, 11, 30))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Services, dict[str, UserView]]]:
    """Team research: owned by the PM Olga (not a member), members Ana (3 calls of 10 credits) and Ben (2 of 7);
    Cy (5 of 100) is in no team; Dan, another PM, owns nothing."""
    db: Database = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    people = {
        "olga": user(db, "olga@example.com", role="pm"),
        "ana": user(db, "ana@example.com", role="engineer"),
        "ben": user(db, "ben@example.com", role="pm"),
        "cy": user(db, "cy@example.com", role="pm"),
        "dan": user(db, "dan@example.com", role="pm"),
        "fin": user(db, "fin@example.com", role="finance"),
    }
    chat = model(db, "gpt-4o-mini")
    for who, calls, credits in (("ana", 3, 10), ("ben", 2, 7), ("cy", 5, 100), ("olga", 1, 1000)):
        times = [DAY + timedelta(minutes=k) for k in range(calls)]
        write_usage(db, people[who], chat, times, "0.01", cost_credits=credits)
    services = Services(db)
    services.budgets.add_team(
        SYSTEM, "research", owner="olga@example.com", members=["ana@example.com", "ben@example.com"]
    )
    services.spend.sync(SYSTEM)  # the analytics copy groups by team with the membership it copied
    yield services, people
    services.close()
    db.dispose()


def as_(people: dict[str, UserView], who: str) -> Principal:
    return Principal.of(people[who])


def test_the_owner_sees_the_members_spend_and_nobody_elses(world: tuple[Services, dict[str, UserView]]) -> None:
    services, people = world
    page = services.spend.team_page(as_(people, "olga"), "research", QUERY)
    users = page.top_users.frame
    assert sorted(users["user"]) == ["ana@example.com", "ben@example.com"]  # not the owner's own, not Cy's
    assert dict(zip(users["user"], users["credits"], strict=True)) == {"ana@example.com": 30, "ben@example.com": 14}
    assert list(page.top_teams.frame["team"]) == ["research"] and int(page.top_teams.frame["credits"].sum()) == 44
    drill = services.spend.team_page(as_(people, "olga"), "research", replace(QUERY, drill_user="ben@example.com"))
    assert drill.drill is not None and drill.drill.totals.credits == 14


def test_the_owner_may_not_name_anyone_outside_the_team(world: tuple[Services, dict[str, UserView]]) -> None:
    services, people = world
    olga = as_(people, "olga")
    for asked in (
        replace(QUERY, users=("cy@example.com",)),
        replace(QUERY, drill_user="cy@example.com"),
    ):
        with pytest.raises(PermissionDeniedError, match="not in team research"):
            services.spend.team_page(olga, "research", asked)
    mine = services.spend.team_page(olga, "research", replace(QUERY, users=("ana@example.com",)))
    assert list(mine.top_users.frame["user"]) == ["ana@example.com"]


def test_other_people_see_no_team_and_may_not_open_one(world: tuple[Services, dict[str, UserView]]) -> None:
    services, people = world
    assert services.spend.teams(as_(people, "dan")) == []
    assert services.spend.teams(as_(people, "ana")) == []  # a member is not the owner
    for who in ("dan", "ana", "cy"):
        with pytest.raises(PermissionDeniedError, match="Only team research's owner"):
            services.spend.team_page(as_(people, who), "research", QUERY)
    [team] = services.spend.teams(as_(people, "olga"))
    assert (team.name, team.owner_email, team.members) == (
        "research",
        "olga@example.com",
        ("ana@example.com", "ben@example.com"),
    )


def test_finance_sees_every_team_and_spend_grouped_by_team(world: tuple[Services, dict[str, UserView]]) -> None:
    services, people = world
    fin = as_(people, "fin")
    assert [t.name for t in services.spend.teams(fin)] == ["research"]
    page = services.spend.page(fin, QUERY)
    teams = dict(zip(page.top_teams.frame["team"], page.top_teams.frame["credits"], strict=True))
    assert teams == {"(no team)": 500 + 1000, "research": 44}
    # finance may narrow a team's view to anyone; someone outside the team simply has no spend in it
    outside = services.spend.team_page(fin, "research", replace(QUERY, users=("cy@example.com",)))
    assert outside.top_users.frame.empty


def test_a_member_who_leaves_leaves_the_owners_view_at_once(world: tuple[Services, dict[str, UserView]]) -> None:
    services, people = world
    olga = as_(people, "olga")
    services.budgets.change_team(SYSTEM, "research", remove=["ben@example.com"])
    page = services.spend.team_page(olga, "research", QUERY)  # no new sync: membership is the system of record's
    assert list(page.top_users.frame["user"]) == ["ana@example.com"]
    with pytest.raises(PermissionDeniedError):
        services.spend.team_page(olga, "research", replace(QUERY, drill_user="ben@example.com"))
    services.budgets.change_team(SYSTEM, "research", remove=["ana@example.com"])
    empty = services.spend.team_page(olga, "research", QUERY)  # no members: nothing, not everyone
    assert empty.top_users.frame.empty and empty.kpis.month_to_date.credits == 0
