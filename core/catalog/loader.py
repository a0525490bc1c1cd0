"""Load the reviewed catalog files in data/ into the database, idempotently.

A malformed file is refused with its file, line and field, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalog.hardware_names import hardware_choices, match_hardware
from core.catalog.types import COST_UNITS, PRICE_FIELDS, HardwarePrice
from core.config import DATA_DIR
from core.db.models import CATEGORIES, DEPLOYMENT_TYPES, AIModel, Hardware
from core.errors import CoreError


class CatalogFileError(CoreError):
    def __init__(self, path: Path, line: int | None, field: str | None, problem: str) -> None:
        where = f"{path.name}" + (f", line {line}" if line else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}. Fix the catalog file and run `python -m core init` again.")


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping and of each key's value."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {str(k.value): v.start_mark.line + 1 for k, v in node.value}
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read(path: Path, top_key: str) -> list[dict[str, Any]]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError as exc:
        raise CatalogFileError(path, None, None, "file not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        raise CatalogFileError(
            path,
            mark.line + 1 if mark else None,
            None,
            f"not valid YAML ({exc.problem if hasattr(exc, 'problem') else exc})",
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get(top_key), list):
        raise CatalogFileError(path, 1, top_key, f"expected a top-level '{top_key}:' list")
    return doc[top_key]


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(d, dict):
        return d
    return {k: _strip(v) for k, v in d.items() if k not in ("__line__", "__lines__")}


@dataclass(frozen=True)
class _Ctx:
    path: Path
    entry: dict[str, Any]

    def fail(self, field: str | None, problem: str) -> CatalogFileError:
        line = (
            self.entry.get("__lines__", {}).get(field, self.entry.get("__line__"))
            if field
            else self.entry.get("__line__")
        )
        return CatalogFileError(self.path, line, field, problem)

    def text(self, field: str, required: bool = True, choices: tuple[str, ...] | None = None) -> str | None:
        value = self.entry.get(field)
        if value is None or value == "":
            if required:
                raise self.fail(field, "is required")
            return None
        value = str(value)
        if choices and value not in choices:
            raise self.fail(field, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def price(self, field: str) -> Decimal | None:
        value = self.entry.get(field)
        if value is None or value == "":
            return None
        if isinstance(value, float):
            raise self.fail(field, f'write prices as quoted strings ("{value}") so no digit is lost to binary floats')
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(field, f"{value!r} is not a number") from None
        if not d.is_finite() or d < 0:
            raise self.fail(field, f"{value!r} must be a non-negative number")
        return d

    def share(self, field: str) -> Decimal | None:
        """A fraction from 0 to 1 (a share of requests), written like a price."""
        value = self.price(field)
        if value is not None and value > 1:
            raise self.fail(field, f"{value} is a share of requests: write it as a fraction from 0 to 1 (0.05 = 5%)")
        return value


def _validate_variant_prices(ctx: _Ctx, variants: dict[str, Any]) -> None:
    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in ("__line__", "__lines__", "default_size", "default_quality", "threshold_tokens"):
                    continue
                if isinstance(v, dict):
                    walk(v)
                else:
                    try:
                        ok = Decimal(str(v)).is_finite() and Decimal(str(v)) >= 0 and not isinstance(v, float)
                    except InvalidOperation:
                        ok = False
                    if not ok:
                        line = obj.get("__lines__", {}).get(k)
                        raise CatalogFileError(
                            ctx.path, line, f"price_variants.{k}", f"{v!r} must be a quoted non-negative number"
                        )

    walk(variants)


def parse_models(path: Path, hardware: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Validate the model catalog and return rows ready for the database (sandbox rows take their mirror's prices).

    With `hardware` (the parsed hardware catalog), a model's `hardware_type` must name one of its entries, by id (T4)
    or by Hugging Face's instance type (nvidia-t4), and is stored as the id."""
    known = [HardwarePrice(**h) for h in hardware] if hardware is not None else None
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for entry in _read(path, "models"):
        if not isinstance(entry, dict):
            raise CatalogFileError(path, None, None, "every entry under 'models:' must be a mapping")
        ctx = _Ctx(path, entry)
        row: dict[str, Any] = {
            "provider": ctx.text("provider"),
            "model_id": ctx.text("model_id"),
            "model_name": ctx.text("model_name"),
            "deployment_type": ctx.text("deployment_type", choices=DEPLOYMENT_TYPES),
            "category": ctx.text("category", choices=CATEGORIES),
            "mirrors": ctx.text("mirrors", required=False),
            "cost_unit": ctx.text("cost_unit", required=entry.get("mirrors") is None, choices=COST_UNITS),
            "price_source": ctx.text("price_source"),
            "price_as_of": ctx.text("price_as_of"),
            "hf_endpoint_url": ctx.text("hf_endpoint_url", required=False),
            "hardware_type": ctx.text("hardware_type", required=False),
            "api_endpoint": ctx.text("api_endpoint", required=False),
            "api_method": ctx.text("api_method", required=False) or "POST",
            "status": ctx.text("status", required=False) or "active",
            "memory_gb": ctx.price("memory_gb"),
            "serverless_cold_start_s": ctx.price("serverless_cold_start_s"),
            "serverless_cold_start_share": ctx.share("serverless_cold_start_share"),
        }
        if known is not None and row["hardware_type"]:
            found = match_hardware(row["hardware_type"], known)
            if found is None:
                raise ctx.fail(
                    "hardware_type",
                    f"{row['hardware_type']!r} is not in hardware.yaml; choose one of {hardware_choices(known)}",
                )
            row["hardware_type"] = found.id
        for f in PRICE_FIELDS:
            row[f] = ctx.price(f)
        variants = entry.get("price_variants")
        if variants is not None and not isinstance(variants, dict):
            raise ctx.fail("price_variants", "must be a mapping")
        if variants:
            _validate_variant_prices(ctx, variants)
        row["price_variants"] = _strip(variants) if variants else None
        key = (row["provider"], row["model_id"])
        if key in seen:
            raise ctx.fail("model_id", f"{key[0]}/{key[1]} is listed twice (first on line {seen[key]})")
        seen[key] = entry["__line__"]
        row["__line__"] = entry["__line__"]
        rows.append(row)

    by_key = {(r["provider"], r["model_id"]): r for r in rows}
    for row in rows:
        if row["mirrors"]:
            target = by_key.get(tuple(row["mirrors"].split("/", 1)))  # type: ignore[arg-type]
            if target is None or target["mirrors"]:
                raise CatalogFileError(
                    path, row["__line__"], "mirrors", f"{row['mirrors']!r} is not a priced model in this file"
                )
            row["cost_unit"] = target["cost_unit"]
            for f in (*PRICE_FIELDS, "price_variants"):
                row[f] = target[f]
    rows += _sandbox_twins(rows)
    for row in rows:
        row.pop("__line__", None)
    return rows


SANDBOX_TWIN_PREFIX = "sandbox:"  # a colon never appears in a provider's model id or a Hub repository name


def sandbox_twin_id(provider: str, model_id: str) -> str:
    """The model id of the generated sandbox twin of `provider/model_id`: `sandbox:openai/gpt-4o`."""
    return f"{SANDBOX_TWIN_PREFIX}{provider}/{model_id}"


def _sandbox_twins(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A sandbox twin for every model billed per use that the file gives none, so every model can be tried (and
    compared) offline: simulated output, the real model's prices, never charged. Dedicated models are billed by
    uptime, so a simulated request of theirs would cost nothing and show nothing."""
    mirrored = {r["mirrors"] for r in rows if r["mirrors"]}
    twins = []
    for r in rows:
        key = f"{r['provider']}/{r['model_id']}"
        if r["provider"] == "sandbox" or r["cost_unit"] == "uptime" or key in mirrored:
            continue
        twin = {field: None for field in r}
        twin.update(
            {
                "provider": "sandbox",
                "model_id": sandbox_twin_id(r["provider"], r["model_id"]),
                "model_name": f"{r['model_name']} (simulated)",
                "deployment_type": "api_proxy",
                "category": r["category"],
                "mirrors": key,
                "cost_unit": r["cost_unit"],
                "price_source": f"mirrors {key}",
                "price_as_of": r["price_as_of"],
                "api_method": "POST",
                "status": r["status"],
                "price_variants": r["price_variants"],
                **{f: r[f] for f in PRICE_FIELDS},
            }
        )
        twins.append(twin)
    return twins


def parse_hardware(path: Path) -> list[dict[str, Any]]:
    rows = []
    for entry in _read(path, "hardware"):
        ctx = _Ctx(path, entry)
        hourly = ctx.price("hourly_usd")
        if hourly is None:
            raise ctx.fail("hourly_usd", "is required")
        memory = entry.get("gpu_memory_gb")
        if not isinstance(memory, int) or memory <= 0:
            raise ctx.fail("gpu_memory_gb", f"{memory!r} must be a positive whole number of GB")
        rows.append(
            {
                "id": ctx.text("id"),
                "instance_type": ctx.text("instance_type"),
                "gpu_memory_gb": memory,
                "hourly_usd": hourly,
                "list_hourly_usd": ctx.price("list_hourly_usd"),
                "price_source": ctx.text("price_source"),
                "price_as_of": ctx.text("price_as_of"),
            }
        )
    return rows


@dataclass(frozen=True)
class LoadReport:
    models_added: int
    models_updated: int
    hardware_added: int
    hardware_updated: int

    @property
    def changed(self) -> bool:
        return any((self.models_added, self.models_updated, self.hardware_added, self.hardware_updated))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return (a is None and b is None) or (a is not None and b is not None and Decimal(a) == Decimal(b))
    return a == b


def load_catalogs(session: Session, data_dir: Path = DATA_DIR) -> LoadReport:
    """Upsert models.yaml and hardware.yaml. Running it twice changes nothing the second time.

    A new model takes its prices from the file. For a model already in the database only the descriptive fields are
    refreshed: its prices are owned by the price history (edited on the Models & pricing page), so a reload never
    silently reprices it.
    """
    hardware = parse_hardware(data_dir / "hardware.yaml")
    models = parse_models(data_dir / "models.yaml", hardware)
    existing = {(m.provider, m.model_id): m for m in session.scalars(select(AIModel))}
    added = updated = 0
    for row in models:
        current = existing.get((row["provider"], row["model_id"]))
        if current is None:
            target = existing.get(tuple(row["mirrors"].split("/", 1))) if row["mirrors"] else None  # type: ignore[arg-type]
            if target is not None:  # a new twin of a model already loaded: priced as it is now, not as first filed
                row = {**row, **{f: getattr(target, f) for f in (*PRICE_FIELDS, "price_variants")}}
            session.add(AIModel(**row))
            added += 1
            continue
        # Only descriptive fields are refreshed from the file; prices belong to the price history once loaded.
        changed = False
        for field, value in row.items():
            if field in (*PRICE_FIELDS, "price_variants", "price_source", "price_as_of"):
                continue
            if not _same(getattr(current, field), value):
                setattr(current, field, value)
                changed = True
        updated += changed
    hw_existing = {h.id: h for h in session.scalars(select(Hardware))}
    hw_added = hw_updated = 0
    for row in hardware:
        current_hw = hw_existing.get(row["id"])
        if current_hw is None:
            session.add(Hardware(**row))
            hw_added += 1
            continue
        changed = False
        for field, value in row.items():
            if not _same(getattr(current_hw, field), value):
                setattr(current_hw, field, value)
                changed = True
        hw_updated += changed
    session.flush()
    return LoadReport(added, updated, hw_added, hw_updated)
