"""The one door into the engine for pages, the command line and the HTTP gateway.

Build one `Services` per process; every call names its caller (a `Principal`, or `SYSTEM` for the system itself) and
returns frozen views. One module per product word: users, ledger, spend, overview, generation, playground, models,
endpoints, breakeven, optimize, budgets, demo, keys; `core.services.errors` names the typed errors interfaces map to
their answers. Access is enforced here, by each method's `@guarded` rule (`core.access`). `money_text`,
`decimal_text` and `price_text` (unit prices, per-request costs) print money the one way every interface shows it;
`dollars` totals and balances ("$1,234.50"), `hourly_text` rates ("$0.60/h"), `credits_text` credits ("1 credit",
"12,345 credits").
"""

from core.access import SYSTEM, Caller, Capability, Principal, Role, SystemCaller, roles_for_page
from core.money import credits_text, decimal_text, dollars, hourly_text, money_text, price_text
from core.services.container import Services

__all__ = [
    "SYSTEM",
    "Caller",
    "Capability",
    "Principal",
    "Role",
    "Services",
    "SystemCaller",
    "credits_text",
    "decimal_text",
    "dollars",
    "hourly_text",
    "money_text",
    "price_text",
    "roles_for_page",
]
