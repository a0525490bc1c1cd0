"""Change a model's prices: new usage is priced at the new rates, and every change is kept with who, when and the
previous prices in `ai_model_price_history` (and the audit log).

Usage already logged keeps its `base_cost_usd`: a usage row stores the cost computed when the call was made, so a
price change can never reprice history. Sandbox twins that mirror the edited model follow it, with their own
history rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalog.lookup import UnknownModelError
from core.catalog.types import PRICE_FIELDS
from core.db.engine import WRITE_LOCK
from core.db.models import AIModel, AIModelPriceHistory, AuditLog, utcnow
from core.errors import InvalidInputError

EDITABLE = (*PRICE_FIELDS, "price_variants", "price_source")
VARIANT_SETTINGS = ("default_size", "default_quality", "threshold_tokens")
PRICE_LIMIT = Decimal(10) ** 9  # prices are Numeric(18, 9): below a billion dollars


@dataclass(frozen=True, kw_only=True)
class PriceChange:
    id: int
    model_key: str
    changed_at: datetime
    changed_by: str
    prices: dict[str, Any]
    previous: dict[str, Any] | None
    note: str | None

    def changed_fields(self) -> dict[str, tuple[Any, Any]]:
        """field -> (before, after) for the fields this change touched."""
        before = self.previous or {}
        return {k: (before.get(k), v) for k, v in self.prices.items() if before.get(k) != v}

    def made_free(self) -> list[str]:
        """The price fields this change sets to 0: usage billed by them costs nothing from then on."""
        return [
            k
            for k, (_, after) in self.changed_fields().items()
            if k in PRICE_FIELDS and after is not None and Decimal(after) == 0
        ]


def price_snapshot(row: AIModel) -> dict[str, Any]:
    """The full price set of a model as JSON-safe values (Decimals as exact strings)."""
    snap: dict[str, Any] = {f: _text(getattr(row, f)) for f in PRICE_FIELDS}
    snap["price_variants"] = row.price_variants or None
    snap["price_source"] = row.price_source
    snap["price_as_of"] = row.price_as_of
    return snap


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value).normalize(), "f")


def _price(field: str, value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float | bool):
        raise InvalidInputError(
            f"{field}: give the price as a decimal string such as '2.50', not a {type(value).__name__}."
        )
    typed = str(value).strip()
    try:
        d = Decimal(typed)
    except InvalidOperation:
        raise InvalidInputError(f"{field}: {value!r} is not a number.") from None
    if not d.is_finite() or d < 0:
        raise InvalidInputError(f"{field}: a price must be a finite, non-negative number, got {value!r}.")
    if isinstance(value, str) and "e" in typed.lower():  # "1e5" is $100,000 to Decimal: a slip from "15" is costly
        digits = f" ({format(d, 'f')})" if d < PRICE_LIMIT and d == d.quantize(Decimal("0.000000001")) else ""
        raise InvalidInputError(f"{field}: {typed!r} is in scientific notation; type the price in digits{digits}.")
    if d >= PRICE_LIMIT:  # the column holds 9 digits before the point; checked first, as quantize would overflow
        raise InvalidInputError(f"{field}: {value} is too large; a price must be below $1,000,000,000.")
    if d != d.quantize(Decimal("0.000000001")):
        raise InvalidInputError(f"{field}: {value} has more than 9 decimal places (the stored precision).")
    return d


def _variants(value: Any) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError("price_variants must be a mapping (JSON object).")

    def walk(obj: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(v, dict):
                out[str(k)] = walk(v, where)
            elif k in VARIANT_SETTINGS:
                out[str(k)] = v
            else:
                price = _price(f"price_variants.{where}", v)
                if price is None:
                    raise InvalidInputError(f"price_variants.{where} needs a price.")
                out[str(k)] = format(price.normalize(), "f")
        return out

    return walk(value, "")


def update_prices(
    session: Session, model_pk: int, changes: dict[str, Any], actor: str, note: str | None = None
) -> PriceChange:
    """Apply `changes` (price field -> new value; None clears a price) to one catalog model and record the change.

    Raises InvalidInputError for an unknown field, a bad price, no actual change, or a change that leaves the
    model's own cost unit without a price (it would then refuse every call).
    """
    session.connection(execution_options=WRITE_LOCK)  # SQLite: take the write lock before reading the prices
    row = session.get(AIModel, model_pk)
    if row is None:
        raise UnknownModelError(f"No catalog model with id {model_pk}; pick one from the catalog.")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInputError(f"Cannot edit {', '.join(unknown)}; editable fields: {', '.join(EDITABLE)}.")
    if not actor or not str(actor).strip():
        raise InvalidInputError("A price change needs the name of who made it.")
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field in PRICE_FIELDS:
            clean[field] = _price(field, value)
        elif field == "price_variants":
            clean[field] = _variants(value)
        else:
            source = str(value or "").strip()
            if not source:
                raise InvalidInputError("price_source cannot be empty: say where the new price comes from.")
            clean[field] = source[:500]
    before = price_snapshot(row)
    changed = {f: v for f, v in clean.items() if before[f] != (_text(v) if f in PRICE_FIELDS else v)}
    if not changed:
        raise InvalidInputError(f"{row.provider}/{row.model_id}: nothing changed; edit at least one price.")
    change = _apply(session, row, changed, actor.strip(), note)
    _check_priced(row)
    for twin in session.scalars(select(AIModel).where(AIModel.mirrors == f"{row.provider}/{row.model_id}")):
        _apply(
            session,
            twin,
            changed,
            actor.strip(),
            f"follows {row.provider}/{row.model_id}" + (f": {note}" if note else ""),
        )
    session.add(
        AuditLog(
            actor=actor.strip(),
            action="catalog.price_change",
            target=f"{row.provider}/{row.model_id}",
            details={"history_id": change.id, "changed": {k: list(v) for k, v in change.changed_fields().items()}},
        )
    )
    session.flush()
    return change


def _apply(session: Session, row: AIModel, changed: dict[str, Any], actor: str, note: str | None) -> PriceChange:
    previous = price_snapshot(row)
    for field, value in changed.items():
        setattr(row, field, value)
    if "price_source" not in changed:
        row.price_source = f"edited by {actor}"[:500]
    now = utcnow()
    row.price_as_of = now.date().isoformat()
    after = price_snapshot(row)
    hist = AIModelPriceHistory(
        ai_model_id=row.id, changed_at=now, changed_by=actor, prices=after, previous=previous, note=note
    )
    session.add(hist)
    session.flush()
    return PriceChange(
        id=hist.id,
        model_key=f"{row.provider}/{row.model_id}",
        changed_at=now,
        changed_by=actor,
        prices=after,
        previous=previous,
        note=note,
    )


def _check_priced(row: AIModel) -> None:
    needs = {
        "token": "input_per_1m_usd",
        "second": "per_second_usd",
        "character": "per_character_usd",
        "request": "per_request_usd",
    }.get(row.cost_unit)
    if needs and getattr(row, needs) is None:
        raise InvalidInputError(
            f"{row.provider}/{row.model_id} is billed per {row.cost_unit}: {needs} cannot be cleared, or every call "
            "to it would be refused."
        )
    if row.cost_unit == "image" and row.per_image_usd is None and not (row.price_variants or {}).get("images"):
        raise InvalidInputError(f"{row.provider}/{row.model_id} needs per_image_usd or image price variants.")


def price_history(session: Session, model_pk: int | None = None, limit: int = 500) -> list[PriceChange]:
    """Price changes, newest first (one model's, or all)."""
    stmt = (
        select(AIModelPriceHistory, AIModel.provider, AIModel.model_id)
        .join(AIModel, AIModel.id == AIModelPriceHistory.ai_model_id)
        .order_by(AIModelPriceHistory.id.desc())
        .limit(limit)
    )
    if model_pk is not None:
        stmt = stmt.where(AIModelPriceHistory.ai_model_id == model_pk)
    return [
        PriceChange(
            id=h.id,
            model_key=f"{provider}/{model_id}",
            changed_at=h.changed_at,
            changed_by=h.changed_by,
            prices=h.prices,
            previous=h.previous,
            note=h.note,
        )
        for h, provider, model_id in session.execute(stmt)
    ]
