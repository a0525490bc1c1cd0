"""Teams and budgets: who belongs together, and how much each user, team or API key may spend per month or in all.

A budget is enforced by `BillingService.reserve` in the same transaction as the credit hold
(core/billing/budget_sql.py); this package manages teams and budgets and reads where each budget stands. It takes its
database and settings explicitly and checks no access: the services layer decides who may do what.
"""

from core.billing.errors import BudgetExceededError
from core.budgets.budgets import DEFAULT_THRESHOLDS, BudgetBook, BudgetView, UnknownBudgetError, thresholds_of
from core.budgets.teams import MemberView, TeamDirectory, TeamView, UnknownTeamError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "BudgetBook",
    "BudgetExceededError",
    "BudgetView",
    "MemberView",
    "TeamDirectory",
    "TeamView",
    "UnknownBudgetError",
    "UnknownTeamError",
    "thresholds_of",
]
