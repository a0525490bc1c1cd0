"""Catalog queries: find a model or hardware and return a frozen price view."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalog.hardware_names import hardware_choices, match_hardware
from core.catalog.types import PRICE_FIELDS, HardwarePrice, ModelPrice
from core.db.models import AIModel, Hardware
from core.errors import NotFoundError


class UnknownModelError(NotFoundError):
    pass


class UnknownHardwareError(NotFoundError):
    pass


def to_model_price(row: AIModel, hardware_instance_type: str | None = None) -> ModelPrice:
    return ModelPrice(
        id=row.id,
        provider=row.provider,
        model_id=row.model_id,
        model_name=row.model_name,
        category=row.category,
        deployment_type=row.deployment_type,
        cost_unit=row.cost_unit,
        price_variants=dict(row.price_variants or {}),
        mirrors=row.mirrors,
        memory_gb=row.memory_gb,
        serverless_cold_start_s=row.serverless_cold_start_s,
        serverless_cold_start_share=row.serverless_cold_start_share,
        hardware_type=row.hardware_type,
        hardware_instance_type=hardware_instance_type,
        hf_endpoint_url=row.hf_endpoint_url,
        status=row.status,
        price_source=row.price_source,
        price_as_of=row.price_as_of,
        **{f: getattr(row, f) for f in PRICE_FIELDS},
    )


def get_model(session: Session, model_id: str, provider: str | None = None) -> ModelPrice:
    """The catalog entry for `model_id` (and `provider` when the same id is served by several)."""
    stmt = select(AIModel).where(AIModel.model_id == model_id)
    if provider:
        stmt = stmt.where(AIModel.provider == provider)
    rows = list(session.scalars(stmt.order_by(AIModel.id)))
    if not rows:
        where = f" from provider {provider!r}" if provider else ""
        raise UnknownModelError(
            f"Unknown model {model_id!r}{where}: it is not in the catalog. "
            "`python -m core models list` shows the choices."
        )
    if len(rows) > 1:
        # The same id is served serverless and dedicated: prefer the serverless/API entry unless told otherwise.
        rows.sort(key=lambda r: r.deployment_type == "dedicated")
    return to_model_price(rows[0])


def get_model_by_pk(session: Session, pk: int) -> ModelPrice:
    row = session.get(AIModel, pk)
    if row is None:
        raise UnknownModelError(f"No catalog model with id {pk}.")
    return to_model_price(row)


def list_models(
    session: Session, *, category: str | None = None, provider: str | None = None, include_inactive: bool = False
) -> list[ModelPrice]:
    stmt = (
        select(AIModel, Hardware.instance_type)
        .outerjoin(Hardware, Hardware.id == AIModel.hardware_type)
        .order_by(AIModel.provider, AIModel.model_id)
    )
    if category:
        stmt = stmt.where(AIModel.category == category)
    if provider:
        stmt = stmt.where(AIModel.provider == provider)
    if not include_inactive:
        stmt = stmt.where(AIModel.status == "active")
    return [to_model_price(row, instance_type) for row, instance_type in session.execute(stmt)]


def to_hardware_price(row: Hardware) -> HardwarePrice:
    return HardwarePrice(
        id=row.id,
        instance_type=row.instance_type,
        gpu_memory_gb=row.gpu_memory_gb,
        hourly_usd=row.hourly_usd,
        list_hourly_usd=row.list_hourly_usd,
        price_source=row.price_source,
        price_as_of=row.price_as_of,
    )


def list_hardware(session: Session) -> list[HardwarePrice]:
    rows = session.scalars(select(Hardware).order_by(Hardware.hourly_usd))
    return [to_hardware_price(r) for r in rows]


def get_hardware(session: Session, hardware: str) -> HardwarePrice:
    """The catalog's hardware named by its id (`T4`) or its Hugging Face instance type (`nvidia-t4`)."""
    row = session.get(Hardware, hardware) if isinstance(hardware, str) else None
    if row is not None:  # the stored id (every endpoint row names its hardware so): one primary-key read
        return to_hardware_price(row)
    catalog = list_hardware(session)
    found = match_hardware(hardware, catalog)
    if found is None:
        raise UnknownHardwareError(f"Unknown hardware {hardware!r}; choose one of: {hardware_choices(catalog)}.")
    return found
