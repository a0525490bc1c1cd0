"""Storage: typed models, the engine and session factory, migrations."""

from core.db.database import Database
from core.db.engine import check_connection, is_sqlite, make_engine, make_session_factory
from core.db.migrate import upgrade
from core.db.models import (
    AIModel,
    AIModelPriceHistory,
    AIUsageLog,
    AuditLog,
    Base,
    CreditHold,
    CreditTransaction,
    EndpointEvent,
    Hardware,
    InferenceEndpoint,
    ResponseCache,
    User,
    utcnow,
)

__all__ = [
    "AIModel",
    "AIModelPriceHistory",
    "AIUsageLog",
    "AuditLog",
    "Base",
    "CreditHold",
    "CreditTransaction",
    "Database",
    "EndpointEvent",
    "Hardware",
    "InferenceEndpoint",
    "ResponseCache",
    "User",
    "check_connection",
    "is_sqlite",
    "make_engine",
    "make_session_factory",
    "upgrade",
    "utcnow",
]
