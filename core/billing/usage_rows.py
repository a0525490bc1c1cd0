"""The `ai_usage_log` row of one provider call, written inside the settle or release transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select

from core.billing.accounts_sql import Account
from core.billing.ledger_sql import INSERT_USAGE, json_safe
from core.billing.types import UsageRecord
from core.catalog.lookup import UnknownModelError
from core.db.models import AIModel
from core.errors import InvalidInputError
from core.redaction import redact_value

USAGE_STATUSES = ("success", "failed")


def check_record(record: UsageRecord) -> None:
    """Refuse a record that cannot be billed, before any write."""
    if not isinstance(record, UsageRecord):
        raise InvalidInputError(f"Expected a UsageRecord, got {type(record).__name__}.")
    if record.model is None or record.model.id is None:
        raise UnknownModelError("The usage record's model is not a catalog model; it cannot be billed.")
    if record.status not in USAGE_STATUSES:
        raise InvalidInputError(f"Usage status must be one of {', '.join(USAGE_STATUSES)}, got {record.status!r}.")


_MODEL_EXISTS = select(AIModel.id).where(AIModel.id == bindparam("model_id"))


def unknown_model(record: UsageRecord) -> UnknownModelError:
    return UnknownModelError(
        f"Model {record.model.key} (id {record.model.id}) is not in the catalog; run `python -m core init`."
    )


def check_model(conn: Connection, record: UsageRecord) -> None:
    if conn.execute(_MODEL_EXISTS, {"model_id": record.model.id}).first() is None:
        raise unknown_model(record)


def usage_metadata(record: UsageRecord) -> dict[str, Any]:
    """The row's metadata: the record's own (JSON-safe), image size and quality, and whether usage was estimated."""
    meta: dict[str, Any] = json_safe(dict(record.metadata or {}))
    u = record.usage
    if u.image_size:
        meta.setdefault("size", u.image_size)
    if u.image_quality:
        meta.setdefault("quality", u.image_quality)
    if u.estimated:
        meta.setdefault("usage_estimated", True)  # a reason given by the provider or the check is kept
    return meta


def usage_values(
    acct: Account,
    record: UsageRecord,
    *,
    base_cost: Decimal,
    credits: int,
    credit_usd: Decimal,
    key: str,
    status: str,
    now: datetime,
    meta: dict[str, Any],
    accrued_nano: int | None = None,
) -> dict[str, Any]:
    """Every column of the row (transaction_id None: the caller sets it once the debit exists). `accrued_nano`: the
    exact nano-credits the call consumed under accrual rounding (None when it was rounded per call).

    A response-cache hit reached no provider: its `base_cost_usd` (provider cost) is 0, and the cost it was priced
    at, its catalog cost, is kept in metadata `catalog_cost_usd` (set by the caller for a hit that is not charged,
    whose `base_cost` is 0), where spend analytics reads its cache saving from (core/analytics/schema.py)."""
    m, u = record.model, record.usage
    if record.cache_hit:
        meta = {**meta, "catalog_cost_usd": meta.get("catalog_cost_usd", str(base_cost))}
        base_cost = Decimal(0)
    return {
        "created_at": now,
        "user_id": acct.id,
        "ai_model_id": m.id,
        "provider": m.provider,
        "category": m.category,
        "deployment_type": m.deployment_type,
        "endpoint_id": record.endpoint_id,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "characters": u.characters,
        "duration_seconds": u.seconds,
        "images": u.images,
        "requests_count": u.requests,
        "base_cost_usd": base_cost,
        "markup_pct": acct.markup,
        "cost_credits": credits,
        "charged_usd": Decimal(credits) * credit_usd,
        "status": status,
        "error": redact_value(record.error),
        "latency_ms": record.latency_ms,
        "cache_hit": record.cache_hit,
        "sandbox": record.sandbox,
        "usage_disputed": bool(record.metadata.get("usage_disputed")),
        "request_id": redact_value(record.request_id),
        "idempotency_key": key,
        "transaction_id": None,
        "metadata": redact_value(meta) or None,
        "request_fingerprint": record.request_fingerprint,
        "accrued_nano": accrued_nano,
        "api_key_id": record.api_key_id,
        "source": record.source,
    }


def insert_usage(
    conn: Connection,
    acct: Account,
    record: UsageRecord,
    *,
    base_cost: Decimal,
    credits: int,
    credit_usd: Decimal,
    key: str,
    status: str,
    now: datetime,
    meta: dict[str, Any],
) -> int:
    """Insert the row (transaction_id is set by the caller once the debit exists) and return its id."""
    values = usage_values(
        acct,
        record,
        base_cost=base_cost,
        credits=credits,
        credit_usd=credit_usd,
        key=key,
        status=status,
        now=now,
        meta=meta,
    )
    return conn.execute(INSERT_USAGE, values).scalar_one()
