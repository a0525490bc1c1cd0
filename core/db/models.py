"""SQLAlchemy 2 typed models: the system of record. Table names are part of the product's contract."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.limits import check_row

USD = Numeric(18, 9)  # whole nano-dollars
PRICE = Numeric(18, 9)

ROLES = ("admin", "finance", "engineer", "pm")
CATEGORIES = ("chat", "tts", "speech_to_text", "music", "voice_clone", "image")
AUDIO_CATEGORIES = ("tts", "speech_to_text", "music", "voice_clone")  # audio_models, audio_model_usage (0004)
USAGE_SOURCES = ("playground", "cli", "api")  # where a call came from (ai_usage_log.source)
DEPLOYMENT_TYPES = ("api_proxy", "inference_api", "dedicated")
BUDGET_SCOPES = ("user", "team", "api_key")
BUDGET_PERIODS = ("monthly", "once")
BUDGET_ENFORCEMENTS = ("hard", "soft")
ALERT_KINDS = ("threshold", "hard_limit", "low_balance", "anomaly")


def utcnow() -> datetime:
    """Naive UTC timestamp: every stored time is UTC; reports convert to the reporting time zone."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    developer_markup_pct: Mapped[Decimal] = mapped_column(Numeric(9, 4), default=Decimal("100"))
    credit_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # Accrual rounding: nano-credits paid for but not yet consumed (0 <= r < 10^9); see migration 0007.
    credit_remainder_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AIModel(Base):
    __tablename__ = "ai_models"
    __table_args__ = (UniqueConstraint("provider", "model_id", name="uq_ai_models_provider_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    model_id: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(200))
    deployment_type: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    input_per_1m_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    output_per_1m_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    cached_input_per_1m_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    per_second_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    per_character_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    per_request_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    per_image_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    price_variants: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost_unit: Mapped[str] = mapped_column(String(20))
    mirrors: Mapped[str | None] = mapped_column(String(250))  # sandbox twin: "provider/model_id" it is priced like
    memory_gb: Mapped[Decimal | None] = mapped_column(Numeric(9, 2))  # GPU memory the model needs (break-even)
    # Serverless cold starts (break-even): how long one takes and what share of requests meets one; None = none
    serverless_cold_start_s: Mapped[Decimal | None] = mapped_column(Numeric(9, 3))
    serverless_cold_start_share: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    hf_endpoint_url: Mapped[str | None] = mapped_column(String(500))
    hardware_type: Mapped[str | None] = mapped_column(String(20))
    api_endpoint: Mapped[str | None] = mapped_column(String(500))
    api_method: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="active")
    price_source: Mapped[str] = mapped_column(String(500))
    price_as_of: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AIModelPriceHistory(Base):
    """Every price a model has had; a change applies to new usage only."""

    __tablename__ = "ai_model_price_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_model_id: Mapped[int] = mapped_column(ForeignKey("ai_models.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(320))
    prices: Mapped[dict[str, Any]] = mapped_column(JSON)  # the full price set after the change
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)


class Hardware(Base):
    __tablename__ = "hardware"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # T4, L4, A10G, A100, ...
    instance_type: Mapped[str] = mapped_column(String(40))
    gpu_memory_gb: Mapped[int] = mapped_column(Integer)
    hourly_usd: Mapped[Decimal] = mapped_column(PRICE)
    list_hourly_usd: Mapped[Decimal | None] = mapped_column(PRICE)
    price_source: Mapped[str] = mapped_column(String(500))
    price_as_of: Mapped[str] = mapped_column(String(10))


class CreditTransaction(Base):
    """The append-only ledger. Amount is in whole credits; negative is a debit."""

    __tablename__ = "credit_transactions"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_credit_transactions_user_key"),
        Index("ix_credit_transactions_user_created", "user_id", "created_at"),
        Index("ix_credit_transactions_user_id", "user_id", "id"),  # a history's pages, newest first (keyset)
        Index(  # a key's refunds this month (core/billing/key_limits.py)
            "ix_credit_transactions_refunds",
            "user_id",
            "created_at",
            sqlite_where=text("transaction_type = 'refund'"),
            postgresql_where=text("transaction_type = 'refund'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    transaction_type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class CreditHold(Base):
    __tablename__ = "credit_holds"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_credit_holds_user_key"),
        Index("ix_credit_holds_user_status", "user_id", "status"),
        Index(
            "ix_credit_holds_open_expiry",
            "expires_at",
            sqlite_where=text("status = 'held'"),
            postgresql_where=text("status = 'held'"),
        ),
        Index(
            "ix_credit_holds_key_status",
            "api_key_id",
            "status",
            sqlite_where=text("api_key_id IS NOT NULL"),
            postgresql_where=text("api_key_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    credits: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="held")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    # The API key the call came through: its monthly limit (and its budgets) count this hold while it is open.
    api_key_id: Mapped[int | None] = mapped_column(Integer)


# migration 0012 writes it on PostgreSQL
BASE_COST_COMMENT = (
    "provider cost of the call in USD (what the upstream bills us; for sandbox rows the would-be cost; 0 for a "
    "response-cache hit, which no provider billed: its catalog cost is in metadata catalog_cost_usd)"
)


class AIUsageLog(Base):
    """One row per provider call, successful or failed.

    Two money figures, never to be confused: `base_cost_usd` is the provider's cost (what the upstream bills us) and
    `charged_usd` is what the user was charged (`cost_credits` x the credit price: revenue, markup included).
    A response-cache hit (`cache_hit`) reached no provider: its `base_cost_usd` is 0, and its catalog cost (what the
    call would have cost, and what its charge was priced at when hits are charged) is metadata `catalog_cost_usd`,
    which spend analytics counts as the cache saving (core/analytics/schema.py; migration 0012 moved older hits'
    catalog cost there from `base_cost_usd`)."""

    __tablename__ = "ai_usage_log"
    __table_args__ = (
        Index("ix_ai_usage_log_user_created", "user_id", "created_at"),
        Index("ix_ai_usage_log_model_created", "ai_model_id", "created_at"),
        Index("ix_ai_usage_log_created", "created_at"),
        Index(
            "ix_ai_usage_log_disputed",
            "created_at",
            sqlite_where=text("usage_disputed = 1"),  # the form SQLite's planner matches
            postgresql_where=text("usage_disputed"),
        ),
        Index("ix_ai_usage_log_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ai_model_id: Mapped[int | None] = mapped_column(ForeignKey("ai_models.id"))
    provider: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20))
    deployment_type: Mapped[str] = mapped_column(String(20))
    endpoint_id: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, default=0)  # part of cache_write_tokens
    characters: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_seconds: Mapped[Decimal] = mapped_column(Numeric(18, 3), default=Decimal(0))
    images: Mapped[int] = mapped_column(Integer, default=0)
    requests_count: Mapped[int] = mapped_column(Integer, default=1)
    # The comments are the columns' documentation in the database too (migration 0008 writes them on PostgreSQL;
    # tests/core/test_migrations.py holds the two to each other).
    base_cost_usd: Mapped[Decimal] = mapped_column(
        USD,
        default=Decimal(0),
        comment=BASE_COST_COMMENT,
    )
    markup_pct: Mapped[Decimal] = mapped_column(
        Numeric(9, 4), default=Decimal(0), comment="the user's markup in percent when the call was billed"
    )
    cost_credits: Mapped[int] = mapped_column(
        BigInteger,
        default=0,
        comment="credits debited for the call (0 for failed, sandbox and dedicated-endpoint calls)",
    )
    charged_usd: Mapped[Decimal] = mapped_column(
        USD,
        default=Decimal(0),
        comment="what the user was charged in USD: cost_credits x the credit price (revenue, markup included)",
    )
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    usage_disputed: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        comment="the upstream reported more usage than the request allowed; billed usage was capped",
    )
    request_id: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))  # identical requests share it
    accrued_nano: Mapped[int | None] = mapped_column(BigInteger)  # accrual rounding: exact nano-credits consumed
    api_key_id: Mapped[int | None] = mapped_column(Integer)  # the API key a call came through (api_keys.id)
    source: Mapped[str | None] = mapped_column(String(20))  # playground | cli | api (None: written before 0006)


class ApiKey(Base):
    """A user's key for the HTTP gateway. The key itself is shown once at creation and never stored: only its
    SHA-256 (to find it) and a short prefix (to recognise it in a list)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # the owner, whose credits pay
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(20))  # the first characters of the key, shown in lists
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the whole key
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    monthly_credits: Mapped[int | None] = mapped_column(BigInteger)  # most credits per month (reporting time zone)
    rpm: Mapped[int | None] = mapped_column(Integer)  # most requests per minute
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)  # catalog model ids; None: every model


class IdempotentReply(Base):
    """What a call made with a caller's idempotency key answered, so that a retry with the same key gets the same
    answer (and the same charge) instead of a second upstream call."""

    __tablename__ = "idempotent_replies"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_idempotent_replies_user_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request: a reused key must match it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # the result's figures and text
    data: Mapped[bytes | None] = mapped_column(LargeBinary)  # audio or image bytes, if any


class InferenceEndpoint(Base):
    __tablename__ = "inference_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    model_repo: Mapped[str] = mapped_column(String(200))
    ai_model_id: Mapped[int | None] = mapped_column(ForeignKey("ai_models.id"))
    hardware_id: Mapped[str] = mapped_column(ForeignKey("hardware.id"))
    min_replicas: Mapped[int] = mapped_column(Integer, default=0)
    max_replicas: Mapped[int] = mapped_column(Integer, default=1)
    scale_to_zero_minutes: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    replicas: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str | None] = mapped_column(String(500))
    vendor: Mapped[str] = mapped_column(String(20), default="aws")
    region: Mapped[str] = mapped_column(String(40), default="us-east-1")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    metered_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Last time the management API was asked about this endpoint: the history is known up to here, so metering
    # never bills past it.
    observed_at: Mapped[datetime | None] = mapped_column(DateTime)


class EndpointEvent(Base):
    __tablename__ = "endpoint_events"
    __table_args__ = (Index("ix_endpoint_events_endpoint_at", "endpoint_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("inference_endpoints.id"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(20))
    replicas: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)


class EndpointUptimeBucket(Base):
    """One metered hour of one endpoint: its figures and the ledger debit that charged it (at most one per hour)."""

    __tablename__ = "endpoint_uptime_buckets"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "bucket_start", name="uq_endpoint_uptime_buckets_endpoint_start"),
        Index("ix_endpoint_uptime_buckets_start", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("inference_endpoints.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    bucket_start: Mapped[datetime] = mapped_column(DateTime)
    bucket_end: Mapped[datetime] = mapped_column(DateTime)
    billed_minutes: Mapped[int] = mapped_column(Integer)
    replica_minutes: Mapped[int] = mapped_column(Integer)
    max_replicas: Mapped[int] = mapped_column(Integer)
    hourly_usd: Mapped[Decimal] = mapped_column(PRICE)
    base_cost_usd: Mapped[Decimal] = mapped_column(USD)
    markup_pct: Mapped[Decimal] = mapped_column(Numeric(9, 4))
    credits: Mapped[int] = mapped_column(BigInteger)  # charged (positive); the debit's amount is -credits
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    metered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditLog(Base):
    """Who did what: grants, refunds, price edits, endpoint create/delete."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ResponseCache(Base):
    """Deterministic outputs (text-to-speech of the same text and voice, a transcription of the same audio)."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of provider, model and request
    provider: Mapped[str] = mapped_column(String(40))
    model_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_text: Mapped[str | None] = mapped_column(Text)
    output_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    output_mime: Mapped[str | None] = mapped_column(String(60))
    hits: Mapped[int] = mapped_column(Integer, default=0)


class Team(Base):
    """A group of users whose spend is reported, budgeted and alerted on together; its owner sees the team's spend."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TeamMember(Base):
    """A user's team: one row per user (the primary key), so a user belongs to at most one team."""

    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_team", "team_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Budget(Base):
    """A limit in credits on one user's, one team's or one API key's spend, per calendar month in the reporting time
    zone or once (from `starts_at` on). Exactly one of user_id, team_id, api_key_id is set, as `scope` says.
    A hard budget refuses a call that would pass it (inside `reserve`); a soft one only alerts."""

    __tablename__ = "budgets"
    __table_args__ = (
        Index("ix_budgets_user", "user_id"),
        Index("ix_budgets_team", "team_id"),
        Index("ix_budgets_api_key", "api_key_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(10))  # user | team | api_key
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    api_key_id: Mapped[int | None] = mapped_column(Integer)  # api_keys arrives with the gateway: no foreign key yet
    credits: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(10))  # monthly | once
    enforcement: Mapped[str] = mapped_column(String(10))  # hard | soft
    thresholds: Mapped[list[int]] = mapped_column(JSON)  # percent, ascending, e.g. [50, 80, 100]
    starts_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # a one-off budget counts spend from here
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)
    removed_by: Mapped[str | None] = mapped_column(String(320))


class BudgetPeriod(Base):
    """One budget's spend in one period (a month, or the whole of a one-off budget): the counter `reserve` checks.

    `spent` is kept by database triggers on `credit_transactions` (migration 0005): every usage or endpoint-uptime
    debit, and every refund of one, moves the counters of the budgets covering it, in the ledger row's own
    transaction. `alerted_pct` is the highest threshold already alerted on in this period."""

    __tablename__ = "budget_periods"
    __table_args__ = (
        UniqueConstraint("budget_id", "period_start", name="uq_budget_periods_budget_start"),
        Index("ix_budget_periods_budget_end", "budget_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"))
    period_start: Mapped[datetime] = mapped_column(DateTime)  # naive UTC, included
    period_end: Mapped[datetime] = mapped_column(DateTime)  # naive UTC, excluded
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    alerted_pct: Mapped[int] = mapped_column(Integer, default=0)


class Alert(Base):
    """Something finance or a person should hear about, recorded once: `key` says which budget, period and threshold
    (or user and day...) it is about, and a second attempt to record the same key does nothing."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_created", "user_id", "created_at"),
        Index("ix_alerts_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # threshold | hard_limit | low_balance | anomaly
    severity: Mapped[str] = mapped_column(String(10))  # info | warning | critical
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text)  # why, as a sentence
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the person concerned (their banner)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    budget_id: Mapped[int | None] = mapped_column(ForeignKey("budgets.id"))
    threshold_pct: Mapped[int | None] = mapped_column(Integer)
    period_start: Mapped[datetime | None] = mapped_column(DateTime)
    period_end: Mapped[datetime | None] = mapped_column(DateTime)  # the banner shows until then (or dismissal)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime)
    dismissed_by: Mapped[str | None] = mapped_column(String(320))


class AlertWebhook(Base):
    """Where alerts are POSTed, signed with the webhook's own secret (HMAC-SHA256 of the body)."""

    __tablename__ = "alert_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[list[str] | None] = mapped_column(JSON)  # alert kinds to send; None: every kind
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AlertNotification(Base):
    """One alert to one destination (a webhook or an email address): the outbox a delivery run works through."""

    __tablename__ = "alert_notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "target", name="uq_alert_notifications_alert_target"),
        Index("ix_alert_notifications_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(10))  # webhook | email
    target: Mapped[str] = mapped_column(String(400))  # "webhook:<id>" or "email:<address>"
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("alert_webhooks.id"))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)  # a delivery run is sending it until then
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class AlertDeliveryAttempt(Base):
    """Every attempt to deliver a notification, successful or not: the delivery log."""

    __tablename__ = "alert_delivery_attempts"
    __table_args__ = (Index("ix_alert_delivery_attempts_notification", "notification_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("alert_notifications.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)  # HTTP status, or the SMTP reply code
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


# Every text column of every table is checked against its own length before a row is written (core.db.limits).
event.listen(Base, "before_insert", check_row, propagate=True)
event.listen(Base, "before_update", check_row, propagate=True)
