"""Demo teams and budgets, so the Budgets & alerts page (and the Spend page's teams) show something true after
`make run`: two teams with owners and members, and four monthly budgets, hard and soft, on each team and on one
person of each.

Limits come from the demo's own spend (the last 30 days before `end`, a month's pace), so the budgets stand where a
real finance team would put them: the product team's hard budget at 1.5x its pace, research's soft one at 0.9x (its
forecast passes it: the burn-down shows when), and one person in each team at 1.2x (hard) and 1x (soft). Everything
is written through the engine's own `TeamDirectory` and `BudgetBook`, whose counters start from the ledger, so
`ledger check` stays clean; the same history gives the same teams and budgets. Run again (after `demo --replace`), it
changes the same teams and budgets rather than adding more (a person it no longer picks loses the demo's budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import func, select

from core.billing.budget_sql import BudgetSQL, ledger_locked
from core.budgets.budgets import BudgetBook
from core.budgets.teams import TeamDirectory
from core.db import Database
from core.db.models import Budget, CreditTransaction, User, utcnow

DEMO_DOMAIN = "@demo.example"
ACTOR = "demo"
PACE_DAYS = 30
MIN_LIMIT = 100  # credits: a budget on someone who spent nothing lately still reads as a budget


@dataclass(frozen=True)
class DemoTeam:
    name: str
    role: str  # its members are the first `size` demo users of this role (by id); the first of them owns it
    size: int
    enforcement: str  # of the team's monthly budget
    pace_factor: Decimal  # its limit: this x the team's spend in the last 30 days
    member_enforcement: str  # of the budget on its member who spent most lately
    member_factor: Decimal


TEAMS = (
    DemoTeam("product", "pm", 10, "hard", Decimal("1.5"), "hard", Decimal("1.2")),
    DemoTeam("research", "engineer", 7, "soft", Decimal("0.9"), "soft", Decimal(1)),
)


@dataclass(frozen=True)
class BudgetsReport:
    teams: int
    budgets: int


def round_up(credits: Decimal) -> int:
    """A limit a person would type: rounded up to two significant digits (12,345 -> 13,000), at least MIN_LIMIT."""
    whole = max(int(credits.to_integral_value(rounding=ROUND_CEILING)), MIN_LIMIT)
    step = 10 ** max(len(str(whole)) - 2, 0)
    return -(-whole // step) * step


def write_demo_budgets(rt: Database, *, end: datetime | None = None) -> BudgetsReport:
    """The demo's teams and budgets over the demo users of `rt` (written by `write_demo_history`)."""
    end = (end or datetime.now(UTC)).replace(tzinfo=None)
    directory = TeamDirectory(rt.session_factory)
    book = BudgetBook(rt.session_factory, rt.settings)
    existing = {t.name for t in directory.list_teams()}
    with rt.session() as s:
        demo_users = s.execute(
            select(User.id, User.email, User.role).where(User.email.like(f"%{DEMO_DOMAIN}")).order_by(User.id)
        ).all()
    # a re-run (after `demo --replace`) may pick other people: the demo's budgets on the previous ones go
    stale = {b.user_id: b.id for b in book.list_budgets() if b.created_by == ACTOR and b.scope == "user"}
    budgets = 0
    for team in TEAMS:
        members = [(uid, email) for uid, email, role in demo_users if role == team.role][: team.size]
        if not members:
            continue
        if team.name not in existing:
            directory.add(team.name, owner=members[0][0], actor=ACTOR)
        for uid, _email in members:
            directory.add_member(team.name, uid, actor=ACTOR)
        pace = _spend_since(rt, [uid for uid, _ in members], end - timedelta(days=PACE_DAYS), end)
        book.set(
            team=team.name,
            credits=round_up(sum(pace.values()) * team.pace_factor),
            enforcement=team.enforcement,
            name=f"{team.name} team, monthly",
            actor=ACTOR,
        )
        top_uid, top_email = max(members, key=lambda m: (pace.get(m[0], 0), -m[0]))
        book.set(
            user=top_uid,
            credits=round_up(pace.get(top_uid, 0) * team.member_factor),
            enforcement=team.member_enforcement,
            name=f"{top_email.split('@')[0]}, monthly",
            actor=ACTOR,
        )
        stale.pop(top_uid, None)
        budgets += 2
    for budget_id in stale.values():
        book.remove(budget_id, actor=ACTOR)
    return BudgetsReport(teams=len(TEAMS), budgets=budgets)


def _spend_since(rt: Database, user_ids: list[int], start: datetime, end: datetime) -> dict[int, int]:
    """Credits each user spent on calls in [start, end) (their usage debits: one index range per user)."""
    tx = CreditTransaction
    with rt.session() as s:
        rows = s.execute(
            select(tx.user_id, func.sum(-tx.amount))
            .where(
                tx.user_id.in_(user_ids),
                tx.created_at >= start,
                tx.created_at < end,
                tx.transaction_type == "usage",
            )
            .group_by(tx.user_id)
        ).all()
    return {int(uid): int(spent or 0) for uid, spent in rows}


def recount_budget_counters(rt: Database) -> int:
    """Make the counters of every budget in force from the ledger (after a history was replaced, the old counters
    having been wiped with the ledger they counted). Returns how many were made."""
    sql = BudgetSQL(rt.engine.dialect.name)
    with rt.session() as s:
        ids = list(s.scalars(select(Budget.id).where(Budget.removed_at.is_(None))))
    if not ids:
        return 0
    with ledger_locked(rt.engine, sql) as conn:
        return sql.ensure_periods(conn, ids, utcnow(), rt.settings.tz)
