"""Teams: a name, an owner who sees the team's spend, and members (a user belongs to at most one team).

Team budgets count the spend of the team's current members, as the Spend analytics group it: when someone joins or
leaves, the counters of the team's budgets (old team and new) are recounted from the ledger in the same transaction,
while no ledger row can be written (`ledger_locked`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.billing.budget_sql import BudgetSQL, ledger_locked
from core.billing.ledger_sql import read_transaction, write_audit
from core.db.limits import check_line
from core.db.models import Budget, Team, TeamMember, User, utcnow
from core.errors import InvalidInputError, NotFoundError
from core.users import no_such_user, user_key

teams = Team.__table__
members = TeamMember.__table__
users = User.__table__
budgets = Budget.__table__

MAX_TEAM_NAME = 100


class UnknownTeamError(NotFoundError):
    pass


@dataclass(frozen=True, kw_only=True)
class TeamView:
    id: int
    name: str
    owner_id: int | None
    owner_email: str | None
    members: int
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class MemberView:
    user_id: int
    email: str
    name: str
    role: str
    team_id: int
    added_at: datetime


def _team_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("A team needs a name, e.g. 'research'.")
    clean = " ".join(check_line(name, "A team's name").split())  # a newline is refused, not made a space
    if len(clean) > MAX_TEAM_NAME:
        raise InvalidInputError(f"A team name has at most {MAX_TEAM_NAME} characters; {clean[:20]!r}... is longer.")
    return clean


def user_row(conn: Connection, user: int | str) -> tuple[int, str]:
    """(id, email) of a user given by id or email."""
    by, params = user_key(user)  # an id too large to exist is refused here, before the database compares it
    cond = users.c.id == params["uid"] if by == "id" else users.c.email == params["email"]
    row = conn.execute(select(users.c.id, users.c.email).where(cond)).first()
    if row is None:
        raise no_such_user(user)
    return row[0], row[1]


def team_row(conn: Connection, team: int | str) -> tuple[int, str]:
    """(id, name) of a team given by id or name."""
    ref = str(team).strip()
    by_id = ref.isascii() and ref.isdigit() and len(ref) < 10  # team ids are INTEGER; a longer number is a name
    cond = teams.c.id == int(ref) if by_id else func.lower(teams.c.name) == " ".join(ref.split()).lower()
    row = conn.execute(select(teams.c.id, teams.c.name).where(cond)).first()
    if row is None:
        raise UnknownTeamError(
            f"No team {team!r}: check the name (the Spend page's Team filter and `python -m core teams list` show "
            "the teams)."
        )
    return row[0], row[1]


class TeamDirectory:
    """Add teams, list them and move people between them."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.engine: Engine = session_factory.kw["bind"]
        self._budget_sql = BudgetSQL(self.engine.dialect.name)

    def add(
        self,
        name: str,
        owner: int | str | None = None,
        *,
        members: Iterable[int | str] = (),
        actor: str = "system",
    ) -> TeamView:
        """A new team with its owner and first members, in one transaction: an unknown member writes nothing."""
        clean = _team_name(name)
        with ledger_locked(self.engine, self._budget_sql) as conn:
            if conn.execute(select(teams.c.id).where(func.lower(teams.c.name) == clean.lower())).first():
                raise InvalidInputError(f"A team named {clean!r} already exists.")
            owner_id = user_row(conn, owner)[0] if owner is not None else None
            team_id = conn.execute(
                insert(teams).values(name=clean, owner_id=owner_id, created_at=utcnow()).returning(teams.c.id)
            ).scalar_one()
            write_audit(conn, actor=actor, action="teams.add", target=clean, details={"owner_id": owner_id})
            for member in members:
                self._add_member(conn, team_id, clean, member, actor)
        return self.get(team_id)

    def set_owner(self, team: int | str, owner: int | str, *, actor: str = "system") -> TeamView:
        with ledger_locked(self.engine, self._budget_sql) as conn:
            team_id, name = team_row(conn, team)
            owner_id, email = user_row(conn, owner)
            conn.execute(update(teams).where(teams.c.id == team_id).values(owner_id=owner_id))
            write_audit(conn, actor=actor, action="teams.owner", target=name, details={"owner": email})
        return self.get(team_id)

    def add_member(self, team: int | str, user: int | str, *, actor: str = "system") -> MemberView:
        """Put `user` in `team` (moving them out of their previous team, if any)."""
        with ledger_locked(self.engine, self._budget_sql) as conn:
            team_id, name = team_row(conn, team)
            return self._add_member(conn, team_id, name, user, actor)

    def _add_member(self, conn: Connection, team_id: int, name: str, user: int | str, actor: str) -> MemberView:
        user_id, email = user_row(conn, user)
        before = conn.execute(select(members.c.team_id).where(members.c.user_id == user_id)).scalar()
        if before == team_id:
            return self._member(conn, user_id)
        if before is None:
            conn.execute(insert(members).values(user_id=user_id, team_id=team_id, added_at=utcnow()))
        else:
            conn.execute(update(members).where(members.c.user_id == user_id).values(team_id=team_id, added_at=utcnow()))
        self._recount(conn, [t for t in (before, team_id) if t is not None])
        write_audit(conn, actor=actor, action="teams.member_add", target=email, details={"team": name})
        return self._member(conn, user_id)

    def remove_member(self, team: int | str, user: int | str, *, actor: str = "system") -> None:
        with ledger_locked(self.engine, self._budget_sql) as conn:
            team_id, name = team_row(conn, team)
            user_id, email = user_row(conn, user)
            done = conn.execute(delete(members).where(members.c.user_id == user_id, members.c.team_id == team_id))
            if not done.rowcount:
                raise InvalidInputError(f"{email} is not a member of team {name!r}.")
            self._recount(conn, [team_id])
            write_audit(conn, actor=actor, action="teams.member_remove", target=email, details={"team": name})

    def _recount(self, conn: Connection, team_ids: list[int]) -> None:
        rows = conn.execute(
            budgets.select().where(budgets.c.team_id.in_(team_ids), budgets.c.removed_at.is_(None))
        ).fetchall()
        self._budget_sql.rebase(conn, rows, utcnow())

    # ---- reads ---------------------------------------------------------------------------------------------------
    def get(self, team: int | str) -> TeamView:
        with read_transaction(self.engine) as conn:
            team_id = team_row(conn, team)[0]
            found = [t for t in self._views(conn) if t.id == team_id]
        return found[0]

    def list_teams(self) -> list[TeamView]:
        with read_transaction(self.engine) as conn:
            return self._views(conn)

    def members(self, team: int | str) -> list[MemberView]:
        with read_transaction(self.engine) as conn:
            team_id = team_row(conn, team)[0]
            ids = conn.execute(
                select(members.c.user_id)
                .join(users, users.c.id == members.c.user_id)
                .where(members.c.team_id == team_id)
                .order_by(users.c.email)
            ).scalars()
            return [self._member(conn, uid) for uid in ids]

    def team_of(self, user: int | str) -> TeamView | None:
        """The user's team, or None."""
        with read_transaction(self.engine) as conn:
            user_id = user_row(conn, user)[0]
            team_id = conn.execute(select(members.c.team_id).where(members.c.user_id == user_id)).scalar()
        return None if team_id is None else self.get(team_id)

    def owned_by(self, user: int | str) -> list[TeamView]:
        """The teams whose spend `user` sees as their owner."""
        with read_transaction(self.engine) as conn:
            user_id = user_row(conn, user)[0]
            return [t for t in self._views(conn) if t.owner_id == user_id]

    @staticmethod
    def _views(conn: Connection) -> list[TeamView]:
        counts = select(members.c.team_id, func.count().label("n")).group_by(members.c.team_id).subquery("counts")
        rows = conn.execute(
            select(teams, users.c.email, func.coalesce(counts.c.n, 0))
            .outerjoin(users, users.c.id == teams.c.owner_id)
            .outerjoin(counts, counts.c.team_id == teams.c.id)
            .order_by(teams.c.name)
        )
        return [
            TeamView(
                id=r.id,
                name=r.name,
                owner_id=r.owner_id,
                owner_email=r.email,
                members=int(r[-1]),
                created_at=r.created_at,
            )
            for r in rows
        ]

    @staticmethod
    def _member(conn: Connection, user_id: int) -> MemberView:
        r = conn.execute(
            select(users.c.id, users.c.email, users.c.name, users.c.role, members.c.team_id, members.c.added_at)
            .join(members, members.c.user_id == users.c.id)
            .where(users.c.id == user_id)
        ).one()
        return MemberView(user_id=r[0], email=r[1], name=r[2], role=r[3], team_id=r[4], added_at=r[5])
