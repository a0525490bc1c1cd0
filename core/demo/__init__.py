"""Demo data for the embedded default: a deterministic usage and ledger history, teams and budgets over it, and
dedicated-endpoint history on the offline stand-in. Written through the same rules as real traffic, so every figure
on every page is consistent."""

from core.demo.budgets import BudgetsReport, write_demo_budgets
from core.demo.endpoints import DemoReport as EndpointsDemoReport
from core.demo.endpoints import seed_endpoint_demo
from core.demo.history import DemoReport, write_demo_history

__all__ = [
    "BudgetsReport",
    "DemoReport",
    "EndpointsDemoReport",
    "seed_endpoint_demo",
    "write_demo_budgets",
    "write_demo_history",
]
