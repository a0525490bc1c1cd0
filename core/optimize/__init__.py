"""Optimize: savings found in real history (`find_savings`) and the pricing lab's what-if (`what_if`).

The engine only: it reads the analytics store (`SpendQueries`) and the system of record (a `Session`) it is handed,
runs the break-even model (`core.breakeven`) and replays billing arithmetic; who may ask is the services layer's
business. Money is `Decimal`; monthly figures are the period's scaled to 730 hours.
"""

from core.optimize.opportunity import EndpointForm, Kind, Opportunity
from core.optimize.period import Period
from core.optimize.pricing import PricingScenario, WhatIf, what_if
from core.optimize.savings import SavingsReport, find_savings

__all__ = [
    "EndpointForm",
    "Kind",
    "Opportunity",
    "Period",
    "PricingScenario",
    "SavingsReport",
    "WhatIf",
    "find_savings",
    "what_if",
]
